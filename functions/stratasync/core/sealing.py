"""The archive rules: when a segment is sealed, and the crash-safe order of sealing it.

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

from collections.abc import Callable
from dataclasses import dataclass

from stratasync.core.service import utc_now_iso
from stratasync.storage.base import (
    HotTierStorage,
    SegmentCorruptError,
    SegmentInfo,
    StoredBatch,
)
from stratasync.storage.segments import (
    SegmentStorage,
    decode_segment,
    encode_segment,
    segment_metadata,
)

#: Defaults: big enough that S3 requests stay cheap, small enough for a quick fetch and cache.
DEFAULT_SEGMENT_EVENTS = 10_000
DEFAULT_SEGMENT_BYTES = 4_000_000

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
        store: HotTierStorage,
        segment_store: SegmentStorage,
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
