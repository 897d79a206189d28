"""Sealed segments of an eventlog in an object store: the contract, the layout and the format.

A *segment* is a contiguous run of whole committed batches of one store, sealed into one
immutable object. Layout (every key of a store under one prefix, so lifecycle rules, bucket
policies and deletion can target a store, or all stores, by prefix)::

    stores/<store id, encoded>/segments/<first seqNum, 16 digits>-<last, 16 digits>-<sha256, 16 hex>.gz

The store id is encoded so a key is safe and bounded: ``A-Z a-z 0-9 _ -`` stay, every other
UTF-8 byte becomes ``%XX`` (so ``/`` and ``.`` never appear raw, and no id's prefix is another's);
an id whose encoding would exceed 200 bytes becomes ``=<sha256 of the id>`` instead (``=`` never
appears in the other form).

Format ``stratasync-segment-1``: gzip (``mtime`` 0, so the same events always give the same bytes
and the same key) of ``"<seqNum> <createdAt> <event JSON>"`` lines joined by ``\\n``, ascending.
The SHA-256 of the stored bytes is in the key, in the object's metadata (``sha256``), in S3's own
``ChecksumSHA256`` (S3 refuses an upload whose bytes do not match), and in the segment index.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

from stratasync.protocol.segment_format import (
    SEGMENT_FORMAT,
    SegmentFormatError,
    decode_segment_body,
    encode_segment_body,
)
from stratasync.storage.base import (
    SegmentCorruptError,
    SegmentInfo,
    StorageError,
    StoredBatch,
    StoredEvent,
)

STORES_PREFIX = "stores/"
_SAFE = re.compile(rb"[A-Za-z0-9_-]")
_MAX_ENCODED_ID = 200


class PresignedUrlRefusedError(StorageError):
    """A presigned URL was tampered with or has expired (raised by test doubles that check them)."""


class SegmentStorage(ABC):
    """Immutable segment objects by key. Every method is safe to call from many threads."""

    @abstractmethod
    def put(self, key: str, body: bytes, *, sha256: str, metadata: Mapping[str, str]) -> None:
        """Store ``body`` under ``key``; the store checks ``sha256`` (hex) on arrival. Idempotent."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The stored bytes; :class:`~stratasync.storage.SegmentNotFoundError` if there is none."""

    @abstractmethod
    def presign_get(self, key: str, expires_in: int) -> str:
        """A URL that lets anyone holding it GET the object for ``expires_in`` seconds."""


def encode_store_id(store_id: str) -> str:
    """The store id as one safe, bounded key segment (see the module docstring)."""
    encoded = "".join(
        chr(byte) if _SAFE.fullmatch(bytes([byte])) else f"%{byte:02X}" for byte in store_id.encode()
    )
    if len(encoded) > _MAX_ENCODED_ID:
        return "=" + hashlib.sha256(store_id.encode()).hexdigest()
    return encoded


def store_prefix(store_id: str) -> str:
    """Every object of a store lives under this prefix."""
    return f"{STORES_PREFIX}{encode_store_id(store_id)}/"


def segment_key(store_id: str, first: int, last: int, sha256: str) -> str:
    return f"{store_prefix(store_id)}segments/{first:016d}-{last:016d}-{sha256[:16]}.gz"


def encode_segment(
    store_id: str, batches: Sequence[StoredBatch], sealed_at: str
) -> tuple[bytes, SegmentInfo]:
    """Seal whole, contiguous batches into one object; returns its bytes and its index entry."""
    if not batches:
        raise ValueError("a segment holds at least one batch")
    lines: list[tuple[int, str, str]] = []
    for previous, batch in zip([None, *batches[:-1]], batches, strict=True):
        if previous is not None and batch.parent_seq_num != previous.last_seq_num:
            raise ValueError(f"batches are not contiguous at {previous.last_seq_num}")
        if not batch.created_at or any(char.isspace() for char in batch.created_at):
            raise ValueError(f"createdAt {batch.created_at!r} cannot be stored in a segment line")
        lines.extend((event.seq_num, batch.created_at, event.event_json) for event in batch.events)
    body, _ = encode_segment_body(lines)
    digest = hashlib.sha256(body).hexdigest()
    first = batches[0].events[0].seq_num
    last = batches[-1].last_seq_num
    info = SegmentInfo(
        parent_seq_num=batches[0].parent_seq_num,
        first_seq_num=first,
        last_seq_num=last,
        events=len(lines),
        raw_bytes=sum(batch.raw_bytes for batch in batches),
        size=len(body),
        sha256=digest,
        key=segment_key(store_id, first, last, digest),
        sealed_at=sealed_at,
        last_position=batches[-1].last_position,
    )
    return body, info


def segment_metadata(info: SegmentInfo) -> dict[str, str]:
    """The object metadata written with a segment (S3 ``x-amz-meta-*``)."""
    return {
        "format": SEGMENT_FORMAT,
        "sha256": info.sha256,
        "parent": str(info.parent_seq_num),
        "first": str(info.first_seq_num),
        "last": str(info.last_seq_num),
        "events": str(info.events),
        "position": str(info.last_position),
    }


def decode_segment(body: bytes, info: SegmentInfo) -> list[StoredEvent]:
    """The events of a segment, after checking its checksum and that it holds what the index says."""
    if hashlib.sha256(body).hexdigest() != info.sha256:
        raise SegmentCorruptError(f"segment {info.key!r}: SHA-256 does not match the index")
    try:
        events = [
            StoredEvent(seq_num, event_json, created_at, info.position_of(index))
            for index, (seq_num, created_at, event_json) in enumerate(decode_segment_body(body))
        ]
    except SegmentFormatError as error:
        raise SegmentCorruptError(f"segment {info.key!r} does not decode: {error}") from error
    seqs = [event.seq_num for event in events]
    if (
        len(events) != info.events
        or seqs[0] != info.first_seq_num
        or seqs[-1] != info.last_seq_num
        or seqs[0] <= info.parent_seq_num
        or any(b <= a for a, b in itertools.pairwise(seqs))
    ):
        raise SegmentCorruptError(f"segment {info.key!r} does not hold the range its index names")
    return events
