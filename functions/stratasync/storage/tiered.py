"""One seamless eventlog over the hot tier (a :class:`HotTierStorage`) and sealed segments.

:class:`TieredEventLog` serves any cursor, whether its events are hot, archived, or on both
sides of the boundary, with the same order and no repeats. It reads the hot tier first (an idle
poll at the head stays one read); where the hot tier meets retired batches (the cursor's batch
was archived, or the archiver retired batches while we read), it says so with
:class:`ArchiveGap`, and the missing range comes from the segment index, which the archiver
writes before it retires anything. Decoded segments are kept in a byte-bounded LRU
(:class:`SegmentCache`), so a warm Lambda serves a segment many clients need from memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence

from stratasync.storage.base import (
    AppendOutcome,
    ArchiveGap,
    EventBatch,
    EventLogStorage,
    HotTierStorage,
    LogHead,
    SegmentInfo,
    StorageError,
    StoredEvent,
)
from stratasync.storage.segments import SegmentStorage, decode_segment

DEFAULT_CACHE_BYTES = 64_000_000


class SegmentCache:
    """Decoded segments by object key (immutable: the key holds the checksum), LRU, bounded by
    the events' size in bytes. A segment larger than the whole budget is not cached."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[Sequence[StoredEvent], int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def size(self) -> int:
        return self._bytes

    def get(self, key: str) -> Sequence[StoredEvent] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: str, events: Sequence[StoredEvent], size: int) -> None:
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = (events, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted


class TieredEventLog(EventLogStorage):
    """One eventlog over ``hot`` (appends, the head, recent reads) and the segments it indexed."""

    def __init__(
        self, hot: HotTierStorage, segment_store: SegmentStorage, cache: SegmentCache | None = None
    ) -> None:
        self.hot = hot
        self.segment_store = segment_store
        self.cache = cache if cache is not None else SegmentCache()

    def backend_id(self, store_id: str) -> str:
        return self.hot.backend_id(store_id)

    def log_head(self, store_id: str) -> LogHead:
        return self.hot.log_head(store_id)

    def append(self, store_id: str, batch: EventBatch) -> AppendOutcome:
        return self.hot.append(store_id, batch)

    def read(self, store_id: str, after: int) -> Iterator[StoredEvent]:
        expected = after
        while True:
            gap: int | None = None
            for item in self.hot.read_hot(store_id, expected):
                if isinstance(item, ArchiveGap):
                    gap = item.until
                    break
                for event in item.events:
                    if event.seq_num > expected:
                        yield event
                expected = max(expected, item.last_seq_num)
            if gap is None:
                return
            for event in self._archived(store_id, expected, gap):
                yield event
            expected = gap

    def _archived(self, store_id: str, after: int, until: int) -> Iterator[StoredEvent]:
        """Events in (``after``, ``until``] from the segment index; they must all be there."""
        reached = after
        for segment in self.hot.segments(store_id, after):
            if segment.parent_seq_num > reached:
                break
            for event in self.segment_events(segment):
                if reached < event.seq_num <= until:
                    yield event
            reached = segment.last_seq_num
            if reached >= until:
                return
        raise StorageError(
            f"store {store_id!r}: events after {reached} up to {until} are neither hot nor archived"
        )

    def segment_events(self, segment: SegmentInfo) -> Sequence[StoredEvent]:
        """A segment's events, from the cache or fetched, checked and cached."""
        events = self.cache.get(segment.key)
        if events is None:
            events = decode_segment(self.segment_store.get(segment.key), segment)
            self.cache.put(segment.key, events, segment.raw_bytes)
        return events
