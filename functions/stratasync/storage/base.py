"""The storage contract of a sync backend: per store, a backend id, a head and an eventlog.

An adapter keeps each store's eventlog as a chain of batches. A batch is appended only if its
parent is the current head (optimistic concurrency: of several appends on the same parent
exactly one wins), and becomes visible to readers whole or not at all. A reader sees every
batch that was acknowledged before its read began, in order, and never a gap that a slower
writer fills in later.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum


class StorageError(Exception):
    """Base class of the storage layer's own errors (callers never see a driver's exception)."""


class HeadMismatchError(StorageError):
    """The batch's parent is not the store's head; ``head`` is the newest head storage knows of."""

    def __init__(self, head: int, parent: int) -> None:
        super().__init__(f"head is {head}, batch parent is {parent}")
        self.head = head
        self.parent = parent


class StorageUnavailableError(StorageError):
    """Storage kept failing with throttling or transient errors until the time budget ran out."""


class AppendOutcome(Enum):
    """What :meth:`EventStore.append` did."""

    #: The batch is now the head of the eventlog.
    COMMITTED = "committed"
    #: The very same batch was committed before (a retried push whose ack was lost); nothing written.
    ALREADY_COMMITTED = "already_committed"


@dataclass(frozen=True)
class StoredEvent:
    """One event as storage returns it: its sequence number, its encoded JSON, its commit time."""

    seq_num: int
    event_json: str
    created_at: str


@dataclass(frozen=True)
class EventBatch:
    """A batch to append: events of one parent chain, each as ``(seqNum, encoded JSON)``."""

    parent_seq_num: int
    events: Sequence[tuple[int, str]]
    created_at: str
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        if not self.events:
            raise ValueError("a batch holds at least one event")
        hasher = hashlib.sha256()
        hasher.update(str(self.parent_seq_num).encode())
        for seq_num, event_json in self.events:
            hasher.update(b"\n%d " % seq_num)
            hasher.update(event_json.encode())
        object.__setattr__(self, "digest", hasher.hexdigest())

    @property
    def last_seq_num(self) -> int:
        return self.events[-1][0]

    def encode_lines(self) -> bytes:
        """The events as ``"<seqNum> <json>"`` lines (compact JSON never holds a raw newline)."""
        return "\n".join(f"{seq_num} {event_json}" for seq_num, event_json in self.events).encode()


def decode_lines(data: bytes, created_at: str) -> Iterator[StoredEvent]:
    """The inverse of :meth:`EventBatch.encode_lines`."""
    for line in data.decode().split("\n"):
        seq_text, _, event_json = line.partition(" ")
        yield StoredEvent(int(seq_text), event_json, created_at)


class EventStore(ABC):
    """Per-store backend id, head and eventlog. Every method is safe to call from many threads."""

    @abstractmethod
    def backend_id(self, store_id: str) -> str:
        """The store's backend id, created on first use; concurrent first calls agree on one."""

    @abstractmethod
    def head(self, store_id: str) -> int:
        """The seqNum of the store's newest event (0 for an empty store)."""

    @abstractmethod
    def append(self, store_id: str, batch: EventBatch) -> AppendOutcome:
        """Append ``batch`` iff its parent is the head, atomically.

        Raises :class:`HeadMismatchError` otherwise, unless the identical batch already sits at
        that parent (then :attr:`AppendOutcome.ALREADY_COMMITTED` and nothing is written).
        """

    @abstractmethod
    def read(self, store_id: str, after: int) -> Iterator[StoredEvent]:
        """Events with ``seqNum > after``, ascending, fetched lazily as the caller iterates."""
