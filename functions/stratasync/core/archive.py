"""The archive rules: when a segment is sealed, the crash-safe order of sealing it, and the
manifest of presigned segment URLs for clients far behind (fast bootstrap).

Sealing one segment of a store, in this order (each step is safe to crash after):

1. ``last_segment`` tells how far the store is archived (``through``); live hot batches up to
   there are the remains of a clean-up that crashed, and are retired first.
2. The oldest hot batches from ``through`` on are collected until the segment has
   ``segment_events`` events or ``segment_bytes`` bytes. Never the newest batch (the head stays
   in DynamoDB): if the threshold is reached only by including it, nothing is sealable yet.
3. The object is written (its key holds its checksum, and the same events always encode to the
   same bytes, so a re-run writes the same object again), then
4. read back and verified (checksum, and that it decodes to the batches' range), then
5. indexed by a conditional put keyed by its parent: at most one segment per parent, ever. If
   another run indexed a segment there first, that one is kept (ours stays an unreferenced object),
6. and only then are its hot batches retired, oldest first: their events leave the hot tier and
   their commit records stay as tombstones (see :mod:`stratasync.storage.base`, the commit
   invariant), so no delayed push can ever land on a parent that an archived batch took.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from stratasync.auth import Action
from stratasync.core.service import SyncService, utc_now_iso
from stratasync.protocol.errors import ForbiddenError, InvalidRequestError, ProtocolError, UnauthorizedError
from stratasync.storage.base import (
    EventStore,
    SegmentCorruptError,
    SegmentInfo,
    StorageError,
    StoredBatch,
)
from stratasync.storage.segments import (
    SEGMENT_FORMAT,
    SegmentStore,
    decode_segment,
    encode_segment,
    segment_metadata,
)

logger = logging.getLogger(__name__)

#: A seqNum in a query string: ASCII digits only (``str.isdigit`` also admits "²", which int() refuses).
_SEQ_NUM_TEXT = re.compile(r"[0-9]{1,16}")


#: Defaults: big enough that S3 requests stay cheap, small enough for a quick fetch and cache.
DEFAULT_SEGMENT_EVENTS = 10_000
DEFAULT_SEGMENT_BYTES = 4_000_000
#: Segments listed by one manifest response at most.
MANIFEST_SEGMENTS = 100

#: The steps a checkpoint hook is called after (tests inject crashes there).
STEPS = ("written", "verified", "indexed", "retired")


@dataclass(frozen=True)
class ArchivePolicy:
    """When a segment is sealed: at ``segment_events`` events or ``segment_bytes`` bytes of event
    JSON, whichever comes first (batches stay whole, so a segment may pass either by one batch)."""

    segment_events: int = DEFAULT_SEGMENT_EVENTS
    segment_bytes: int = DEFAULT_SEGMENT_BYTES

    def __post_init__(self) -> None:
        if self.segment_events < 1 or self.segment_bytes < 1:
            raise ValueError("segment_events and segment_bytes must be at least 1")

    def full(self, events: int, raw_bytes: int) -> bool:
        return events >= self.segment_events or raw_bytes >= self.segment_bytes

    def worth_triggering(self, parent: int, last: int, batch_bytes: int, batch_events: int) -> bool:
        """Whether a push from ``parent`` to ``last`` probably completed a sealable segment.

        Cheap and stateless, for the push path: true when the head crosses a multiple of the
        segment's expected number of events (``segment_events``, fewer if events are so large
        that ``segment_bytes`` comes first). The archiver decides exactly; a missed trigger
        only delays archiving to the next crossing.
        """
        per_event = max(1, batch_bytes // max(1, batch_events))
        stride = max(1, min(self.segment_events, self.segment_bytes // per_event))
        return last // stride > parent // stride


@dataclass(frozen=True)
class ArchiveRun:
    """What one archiver run did for a store."""

    store_id: str
    sealed: list[SegmentInfo]
    #: Hot batches retired (including the remains of an earlier run that crashed).
    retired_batches: int


class Archiver:
    """Seals a store's oldest hot batches into segments, crash-safely (see the module docstring)."""

    def __init__(
        self,
        store: EventStore,
        segment_store: SegmentStore,
        policy: ArchivePolicy | None = None,
        *,
        clock: Callable[[], str] = utc_now_iso,
        checkpoint: Callable[[str, SegmentInfo], None] | None = None,
    ) -> None:
        self.store = store
        self.segment_store = segment_store
        self.policy = policy if policy is not None else ArchivePolicy()
        self._clock = clock
        self._checkpoint = checkpoint or (lambda step, segment: None)

    def archive(
        self, store_id: str, max_segments: int = 1_000, keep_going: Callable[[], bool] | None = None
    ) -> ArchiveRun:
        """Seal every segment that is sealable now (up to ``max_segments``, while ``keep_going``)."""
        sealed: list[SegmentInfo] = []
        retired = 0
        while len(sealed) < max_segments and (keep_going is None or keep_going()):
            segment, removed = self.seal_next(store_id)
            retired += removed
            if segment is None:
                break
            sealed.append(segment)
        return ArchiveRun(store_id, sealed, retired)

    def seal_next(self, store_id: str) -> tuple[SegmentInfo | None, int]:
        """Seal the next segment if one is sealable; returns it and how many hot batches went.

        When a concurrent archiver moves the archive on meanwhile, look again (a few times).
        """
        retired = 0
        for _ in range(5):
            try:
                segment, removed = self._seal_next_once(store_id)
            except _SupersededError:
                continue
            return segment, retired + removed
        return None, retired

    def _seal_next_once(self, store_id: str) -> tuple[SegmentInfo | None, int]:
        last = self.store.last_segment(store_id)
        through = last.last_seq_num if last is not None else 0
        retired = self.store.retire_archived(store_id, last) if last is not None else 0
        batches = self._sealable(store_id, through)
        if batches is None:
            return None, retired
        body, segment = encode_segment(store_id, batches, self._clock())
        self.segment_store.put(segment.key, body, sha256=segment.sha256, metadata=segment_metadata(segment))
        self._checkpoint("written", segment)
        stored = self.segment_store.get(segment.key)
        if stored != body:
            raise SegmentCorruptError(f"segment {segment.key!r} reads back different bytes")
        decode_segment(stored, segment)
        self._checkpoint("verified", segment)
        indexed = self.store.put_segment(store_id, segment)
        self._checkpoint("indexed", indexed)
        retired += self.store.retire_archived(store_id, indexed)
        self._checkpoint("retired", indexed)
        return indexed, retired

    def _sealable(self, store_id: str, through: int) -> list[StoredBatch] | None:
        batches: list[StoredBatch] = []
        events = raw_bytes = 0
        for batch in self.store.hot_batches(store_id, through):
            if batches and self.policy.full(events, raw_bytes):
                return batches  # full, and a newer batch exists: the head is not in it
            if not batches and batch.parent_seq_num != through:
                newest = self.store.last_segment(store_id)
                if newest is not None and newest.last_seq_num >= batch.parent_seq_num:
                    # A concurrent archiver indexed and retired these batches since we looked.
                    raise _SupersededError
                raise SegmentCorruptError(
                    f"store {store_id!r}: archived through {through} but the oldest hot batch "
                    f"starts at {batch.parent_seq_num}"
                )
            batches.append(batch)
            events += len(batch.events)
            raw_bytes += batch.raw_bytes
        return None


class _SupersededError(Exception):
    """Another archiver sealed the batches this one was about to read."""


def manifest(
    store: EventStore,
    segment_store: SegmentStore,
    store_id: str,
    after: int,
    *,
    expires_in: int,
    limit: int = MANIFEST_SEGMENTS,
) -> dict[str, Any]:
    """The archived segments holding events after ``after``, with presigned GET URLs.

    A client far behind downloads these straight from S3 (checking each SHA-256), then pulls
    the rest through the sync protocol from ``pullFrom``. ``more`` is true when ``limit`` cut
    the list: ask again with ``after = pullFrom``.
    """
    expires_at = (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat(timespec="seconds")
    listed: list[dict[str, Any]] = []
    more = False
    pull_from = after
    for segment in store.segments(store_id, after):
        if len(listed) == limit:
            more = True
            break
        listed.append(
            {
                "parentSeqNum": segment.parent_seq_num,
                "firstSeqNum": segment.first_seq_num,
                "lastSeqNum": segment.last_seq_num,
                "events": segment.events,
                "size": segment.size,
                "sha256": segment.sha256,
                "url": segment_store.presign_get(segment.key, expires_in),
            }
        )
        pull_from = segment.last_seq_num
    return {
        "storeId": store_id,
        "backendId": store.backend_id(store_id),
        "after": after,
        "format": SEGMENT_FORMAT,
        "expiresAt": expires_at.replace("+00:00", "Z"),
        "segments": listed,
        "pullFrom": pull_from,
        "more": more,
    }


def handle_manifest(
    service: SyncService,
    segment_store: SegmentStore | None,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    *,
    expires_in: int,
) -> tuple[int, dict[str, Any]]:
    """``GET /archive?storeId=<id>&after=<seqNum>``: HTTP status and JSON body.

    The same authentication and read authorization as a pull; 404 when no archive is configured.
    """
    if segment_store is None:
        return 404, {"message": "this backend has no eventlog archive"}
    store_id = query.get("storeId") or headers.get("x-livestore-store-id") or ""
    try:
        service.limits.check_store_id(store_id)
    except InvalidRequestError as error:
        return 400, {"message": str(error)}
    after_text = query.get("after", "0")
    if not _SEQ_NUM_TEXT.fullmatch(after_text):
        return 400, {"message": "after must be a seqNum (a non-negative integer of at most 16 digits)"}
    try:
        claims = service.access.claims_for(None, headers, store_id, Action.READ)
        if service.access.hooks.on_pull is not None:
            service.access.hooks.on_pull(claims, store_id, None)
        body = manifest(service.store, segment_store, store_id, int(after_text), expires_in=expires_in)
    except UnauthorizedError as error:
        return 401, {"message": str(error)}
    except ForbiddenError as error:
        return 403, {"message": str(error)}
    except ProtocolError as error:
        return 400, {"message": str(error)}
    except StorageError as error:
        logger.exception("archive manifest failed")
        return 503, {"message": f"storage error: {type(error).__name__}"}
    return 200, body
