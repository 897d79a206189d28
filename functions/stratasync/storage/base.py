"""The storage contract of a sync backend: per store, a backend id, a head and an eventlog.

An adapter keeps each store's eventlog as a chain of batches. A batch is appended only if its
parent is the current head (optimistic concurrency: of several appends on the same parent
exactly one wins), and becomes visible to readers whole or not at all. A reader sees every
batch that was acknowledged before its read began, in order, and never a gap that a slower
writer fills in later.

**The commit invariant.** Every batch ever committed keeps a commit record under its parent
seqNum, for good: the head only moves past ``p`` by writing the record at ``p``, and nothing ever
removes it. So a writer that saw ``p`` as the head and then wins the write at ``p`` was right, however
long it took between the two (a retried, delayed or throttled write cannot land on a parent that
another batch already took, even after that batch was archived).

Older batches may move to an archive (sealed segments in an object store, see
:mod:`stratasync.storage.segments`): the adapter keeps the *hot* tail and a small segment index,
and :class:`~stratasync.storage.tiered.TieredEventLog` joins both into one seamless log. A
batch that moves to the archive is *retired*: its events leave the hot tier, but its commit record
stays as a small tombstone (its parent, last seqNum, position and digest), which keeps the
invariant above and lets a retried push of it be recognised. The live hot batches always form a
suffix of the chain (the archiver retires the oldest first, one after the other, and never the
newest), and a segment is indexed before its batches are retired, so a reader that meets a
tombstone finds the events in the index.

Every event has a *position*: its 1-based index in the store's log (the number of events up to and
including it). Positions let a pull say exactly how many events remain after a page, whatever the
seqNums (which may jump).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum

from stratasync.protocol.errors import StratasyncError


class StorageError(StratasyncError):
    """Base class of the storage layer's own errors (callers never see a driver's exception).

    ``request_id``: the AWS request id of the call that failed, when there was one (for support
    cases and for finding the call in CloudTrail and the service's logs).
    """

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(f"{message} (request id {request_id})" if request_id else message)
        self.request_id = request_id


class HeadMismatchError(StorageError):
    """The batch's parent is not the store's head; ``head`` is the newest head storage knows of."""

    def __init__(self, head: int, parent: int) -> None:
        super().__init__(f"head is {head}, batch parent is {parent}")
        self.head = head
        self.parent = parent


class StorageUnavailableError(StorageError):
    """Storage kept failing with throttling or transient errors until the time budget ran out."""


class SegmentNotFoundError(StorageError):
    """The object store has no segment under that key."""


class SegmentCorruptError(StorageError):
    """A segment's bytes do not match its checksum, or do not decode to the range its index names."""


class AppendOutcome(Enum):
    """What :meth:`EventLogStorage.append` did."""

    #: The batch is now the head of the eventlog.
    COMMITTED = "committed"
    #: The very same batch was committed before (a retried push whose ack was lost); nothing written.
    ALREADY_COMMITTED = "already_committed"


@dataclass(frozen=True)
class StoredEvent:
    """One event as storage returns it: its sequence number, its encoded JSON, its commit time, and
    its position (1-based index in the store's log)."""

    seq_num: int
    event_json: str
    created_at: str
    position: int


@dataclass(frozen=True)
class LogHead:
    """The newest event of a store: its seqNum and its position (the number of events in the log)."""

    seq_num: int
    events: int


EMPTY_LOG = LogHead(0, 0)


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


@dataclass(frozen=True)
class StoredBatch:
    """One committed batch as the hot tier holds it (its events ascending, all of them)."""

    parent_seq_num: int
    last_seq_num: int
    created_at: str
    events: Sequence[StoredEvent]

    @property
    def last_position(self) -> int:
        """The position of the batch's last event."""
        return self.events[-1].position

    @property
    def raw_bytes(self) -> int:
        """Size of the events' encoded JSON (what the segment size limit counts)."""
        return sum(len(event.event_json.encode()) for event in self.events)


@dataclass(frozen=True)
class ArchiveGap:
    """The hot chain goes on only after ``until``: events in (cursor, ``until``] were archived."""

    until: int


@dataclass(frozen=True)
class SegmentInfo:
    """The index entry of one sealed segment: whole batches with seqNums in (``parent``, ``last``]."""

    parent_seq_num: int
    first_seq_num: int
    last_seq_num: int
    events: int
    #: Size of the events' encoded JSON, uncompressed.
    raw_bytes: int
    #: Size of the stored (compressed) object.
    size: int
    #: SHA-256 of the stored object, hex.
    sha256: str
    #: Object key in the segment store.
    key: str
    sealed_at: str
    #: The position of the segment's last event (events in the store up to ``last_seq_num``).
    last_position: int

    def position_of(self, index: int) -> int:
        """The position of the segment's ``index``-th event (0-based)."""
        return self.last_position - (self.events - 1 - index)


def decode_lines(data: bytes, created_at: str, last_position: int) -> list[StoredEvent]:
    """The inverse of :meth:`EventBatch.encode_lines`; ``last_position``: the last event's position."""
    lines = data.decode().split("\n")
    first = last_position - len(lines) + 1
    events = []
    for offset, line in enumerate(lines):
        seq_text, _, event_json = line.partition(" ")
        events.append(StoredEvent(int(seq_text), event_json, created_at, first + offset))
    return events


class EventLogStorage(ABC):
    """The sync contract: per store a backend id, a head and an eventlog that grows by conditional
    appends. Every method is safe to call from many threads."""

    @abstractmethod
    def backend_id(self, store_id: str) -> str:
        """The store's backend id, created on first use; concurrent first calls agree on one."""

    @abstractmethod
    def log_head(self, store_id: str) -> LogHead:
        """The store's newest event: its seqNum and position (:data:`EMPTY_LOG` for an empty store)."""

    def head(self, store_id: str) -> int:
        """The seqNum of the store's newest event (0 for an empty store)."""
        return self.log_head(store_id).seq_num

    @abstractmethod
    def append(self, store_id: str, batch: EventBatch) -> AppendOutcome:
        """Append ``batch`` iff its parent is the head, atomically.

        Raises :class:`HeadMismatchError` otherwise, unless the identical batch already sits at
        that parent, archived or not (then :attr:`AppendOutcome.ALREADY_COMMITTED` and nothing is
        written). A write whose answer was lost and that is retried counts as this call's own
        (:attr:`AppendOutcome.COMMITTED`).
        """

    @abstractmethod
    def read(self, store_id: str, after: int) -> Iterator[StoredEvent]:
        """Events with ``seqNum > after``, ascending, fetched lazily as the caller iterates."""


class HotTierStorage(EventLogStorage):
    """An :class:`EventLogStorage` whose older batches can move to an archive: it adds the hot tier
    and the segment index that :class:`~stratasync.core.sealing.Archiver` maintains and
    :class:`~stratasync.storage.tiered.TieredEventLog` reads across."""

    def read(self, store_id: str, after: int) -> Iterator[StoredEvent]:
        """The hot tier's events after ``after``; meeting archived events is an error (read them
        through :class:`~stratasync.storage.tiered.TieredEventLog`)."""
        for item in self.read_hot(store_id, after):
            if isinstance(item, ArchiveGap):
                raise StorageError(
                    f"store {store_id!r}: events after {after} up to {item.until} are archived, "
                    "and no segment store is configured to read them"
                )
            for event in item.events:
                if event.seq_num > after:
                    yield event

    @abstractmethod
    def read_hot(self, store_id: str, after: int) -> Iterator[StoredBatch | ArchiveGap]:
        """Hot batches holding the events after ``after``, ascending and contiguous, lazily.

        The first batch may start before ``after`` (a cursor can sit inside a batch). If the events
        after the cursor (or after the batches read so far) were retired to the archive, before or
        during this read, the iteration ends with :class:`ArchiveGap` naming a seqNum up to which
        the segment index holds them and after which the hot chain goes on.
        """

    @abstractmethod
    def hot_batches(self, store_id: str, from_parent: int) -> Iterator[StoredBatch]:
        """Live hot batches whose parent is ``from_parent`` or later, ascending (for the archiver).

        Ends early where a concurrent archiver retired batches during the iteration."""

    @abstractmethod
    def retire_archived(self, store_id: str, segment: SegmentInfo) -> int:
        """Retire the hot batches that ``segment`` holds, oldest first, one after the other (so the
        live hot batches stay a suffix of the chain): their events leave the hot tier, their commit
        records stay as tombstones. Idempotent; returns how many were retired by this call.

        Only call this once ``segment`` is indexed (:meth:`put_segment`), and with the newest
        indexed segment or one whose predecessors are retired already; never for the head batch.
        """

    @abstractmethod
    def put_segment(self, store_id: str, segment: SegmentInfo) -> SegmentInfo:
        """Index a sealed segment, unless one is indexed at the same parent already.

        Returns the segment now indexed at that parent: ``segment`` itself, or the one that was
        there first (an earlier run, or a concurrent archiver): at most one per parent, ever.
        """

    @abstractmethod
    def segments(self, store_id: str, after: int) -> Iterator[SegmentInfo]:
        """Indexed segments holding events after ``after``, ascending, lazily."""

    @abstractmethod
    def last_segment(self, store_id: str) -> SegmentInfo | None:
        """The newest indexed segment (None when nothing is archived)."""
