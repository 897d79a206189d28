"""The one conformance suite of the archive: a :class:`HotTierStorage` adapter (hot tier and segment
index) with a :class:`SegmentStorage` adapter, joined by ``TieredEventLog`` and sealed by the
``Archiver``. Every pair of adapters subclasses :class:`ArchiveConformance`.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from stratasync.core.endpoint import encode_pull_response
from stratasync.core.sealing import STEPS, ArchivePolicy, Archiver
from stratasync.core.service import SyncService
from stratasync.protocol.messages import Cursor
from stratasync.storage import (
    AppendOutcome,
    EventLogStorage,
    HeadMismatchError,
    HotTierStorage,
    LogHead,
    SegmentCorruptError,
    SegmentInfo,
    StoredEvent,
)
from stratasync.storage.memory import InMemoryStorage
from stratasync.storage.segments import SegmentStorage, store_prefix
from stratasync.storage.tiered import SegmentCache, TieredEventLog
from stratasync.testing.event_log import make_batch


class Crash(BaseException):
    """The process dies here: nothing after this line runs (not an Exception: no handler catches it)."""


class CountingSegments(SegmentStorage):
    """A segment store that counts the GETs that reach it."""

    def __init__(self, inner: SegmentStorage) -> None:
        self.inner = inner
        self.gets = 0

    def put(self, key: str, body: bytes, *, sha256: str, metadata: Any) -> None:
        self.inner.put(key, body, sha256=sha256, metadata=metadata)

    def get(self, key: str) -> bytes:
        self.gets += 1
        return self.inner.get(key)

    def presign_get(self, key: str, expires_in: int) -> str:
        return self.inner.presign_get(key, expires_in)


Log = list[tuple[int, str]]


def fill(store: EventLogStorage, store_id: str, batches: int, *, seed: int = 1, jumps: bool = True) -> Log:
    """Append ``batches`` batches of 1-4 events (some with seqNum jumps); returns the whole log."""
    rng = random.Random(seed)
    head = store.head(store_id)
    log: Log = []
    for _ in range(batches):
        batch = make_batch(head, rng.randint(1, 4), step=rng.choice([1, 1, 1, 3]) if jumps else 1)
        store.append(store_id, batch)
        log.extend(batch.events)
        head = batch.last_seq_num
    return log


def after(log: Log, cursor: int) -> Log:
    return [(seq, event) for seq, event in log if seq > cursor]


def pairs(events: Iterator[StoredEvent]) -> Log:
    return [(event.seq_num, event.event_json) for event in events]


class ArchiveConformance(ABC):
    """Behaviour every (HotTierStorage, SegmentStorage) pair must show under the archive."""

    @abstractmethod
    def create_hot_store(self) -> HotTierStorage:
        """A fresh HotTierStorage adapter instance (sharing state with earlier ones, like a table)."""

    @abstractmethod
    def create_segment_store(self) -> SegmentStorage:
        """A fresh SegmentStorage adapter instance (sharing objects with earlier ones, like a bucket)."""

    @abstractmethod
    def object_keys(self, prefix: str) -> list[str]:
        """Every object key under ``prefix`` in the segment store."""

    @pytest.fixture
    def store_id(self) -> str:
        return f"arch-{uuid.uuid4().hex[:10]}"

    def archived_store(self) -> TieredEventLog:
        return TieredEventLog(self.create_hot_store(), self.create_segment_store())

    def archiver(self, events: int = 7, raw_bytes: int = 10_000_000, **kwargs: Any) -> Archiver:
        return Archiver(
            self.create_hot_store(), self.create_segment_store(), ArchivePolicy(events, raw_bytes), **kwargs
        )

    def assert_every_cursor_reads(self, store: EventLogStorage, store_id: str, log: Log) -> None:
        head = log[-1][0]
        for cursor in range(head + 2):
            assert pairs(store.read(store_id, cursor)) == after(log, cursor), f"cursor {cursor}"

    def assert_chain(self, store_id: str, log: Log) -> list[SegmentInfo]:
        """Segments chain from 0 without overlap; one object per segment, no duplicates."""
        segments = list(self.create_hot_store().segments(store_id, 0))
        reached = 0
        for segment in segments:
            assert segment.parent_seq_num == reached
            reached = segment.last_seq_num
        assert reached < log[-1][0]  # the head batch stays hot
        assert sorted(self.object_keys(store_prefix(store_id))) == sorted(s.key for s in segments)
        return segments

    # -- reads across the boundary ---------------------------------------------------------------

    def test_pull_at_every_cursor_across_the_boundary(self, store_id: str) -> None:
        log = fill(self.create_hot_store(), store_id, 30)
        run = self.archiver(events=7).archive(store_id)
        assert len(run.sealed) >= 3
        store = self.archived_store()
        self.assert_every_cursor_reads(store, store_id, log)
        self.assert_chain(store_id, log)
        assert store.head(store_id) == log[-1][0]
        with pytest.raises(Exception, match="archived"):
            list(self.create_hot_store().read(store_id, 0))  # the hot tier alone knows it lacks them

    def test_pull_responses_are_the_same_as_without_the_archive(self, store_id: str) -> None:
        hot = self.create_hot_store()
        reference = InMemoryStorage()
        for parent in range(0, 300, 3):
            batch = make_batch(parent, 3, text_bytes=3_000)
            hot.append(store_id, batch)
            reference.append(store_id, batch)
        self.archiver(events=40).archive(store_id)
        archived = SyncService(self.archived_store())
        plain = SyncService(reference)
        for cursor in (0, 1, 39, 40, 41, 150, 250, 298, 299, 300):
            got = archived.pull(store_id, self._cursor(archived, store_id, cursor))
            want = plain.pull(store_id, self._cursor(plain, store_id, cursor))
            assert list(got.pages) == list(want.pages)
            responses = []
            for service, stream in (
                (archived, archived.pull(store_id, self._cursor(archived, store_id, cursor))),
                (plain, plain.pull(store_id, self._cursor(plain, store_id, cursor))),
            ):
                body, _, summary = encode_pull_response("1", stream, gzip=False, max_wire_bytes=400_000)
                responses.append((body.replace(service.store.backend_id(store_id).encode(), b"id"), summary))
            assert responses[0] == responses[1]

    @staticmethod
    def _cursor(service: SyncService, store_id: str, seq: int) -> Cursor | None:
        if seq == 0:
            return None
        return Cursor(backendId=service.store.backend_id(store_id), eventSequenceNumber=seq)

    def test_newest_batch_is_never_archived_and_appends_go_on(self, store_id: str) -> None:
        hot = self.create_hot_store()
        log: Log = []
        for parent in (0, 10, 20):
            batch = make_batch(parent, 10)
            hot.append(store_id, batch)
            log.extend(batch.events)
        run = self.archiver(events=1).archive(store_id)
        assert [(s.parent_seq_num, s.last_seq_num) for s in run.sealed] == [(0, 10), (10, 20)]
        assert hot.head(store_id) == 30
        assert self.archiver(events=1).archive(store_id).sealed == []
        batch = make_batch(30, 2)
        hot.append(store_id, batch)
        log.extend(batch.events)
        self.assert_every_cursor_reads(self.archived_store(), store_id, log)

    def test_segments_seal_at_the_event_count_or_the_byte_size(self, store_id: str) -> None:
        hot = self.create_hot_store()
        for parent in range(0, 12):
            hot.append(store_id, make_batch(parent, 1, text_bytes=1_000))
        by_count = self.archiver(events=4).archive(store_id, max_segments=1).sealed
        assert [(s.first_seq_num, s.last_seq_num, s.events) for s in by_count] == [(1, 4, 4)]
        by_bytes = self.archiver(events=100, raw_bytes=2_500).archive(store_id, max_segments=1).sealed
        assert [(s.first_seq_num, s.last_seq_num) for s in by_bytes] == [(5, 7)]
        assert by_bytes[0].raw_bytes >= 2_500
        assert self.archiver(events=100, raw_bytes=100_000).archive(store_id).sealed == []

    def test_archiving_twice_is_harmless(self, store_id: str) -> None:
        log = fill(self.create_hot_store(), store_id, 20)
        first = self.archiver().archive(store_id)
        segments = self.assert_chain(store_id, log)
        second = self.archiver().archive(store_id)
        assert second.sealed == []
        assert second.retired_batches == 0
        assert self.assert_chain(store_id, log) == segments == first.sealed
        self.assert_every_cursor_reads(self.archived_store(), store_id, log)

    # -- the commit invariant survives archiving ---------------------------------------------------

    def test_a_retried_push_of_an_archived_batch_is_acknowledged(self, store_id: str) -> None:
        hot = self.create_hot_store()
        first = make_batch(0, 3)
        hot.append(store_id, first)
        log = list(first.events) + fill(hot, store_id, 20, seed=2)
        self.archiver(events=5).archive(store_id)
        assert hot.last_segment(store_id) is not None
        assert not any(batch.parent_seq_num == 0 for batch in hot.hot_batches(store_id, 0))
        assert hot.append(store_id, first) is AppendOutcome.ALREADY_COMMITTED
        changed = make_batch(0, 3, client="someone-else")
        with pytest.raises(HeadMismatchError) as refused:
            hot.append(store_id, changed)
        assert refused.value.head == log[-1][0]
        self.assert_every_cursor_reads(self.archived_store(), store_id, log)

    def test_positions_count_the_events_across_both_tiers(self, store_id: str) -> None:
        log = fill(self.create_hot_store(), store_id, 25, seed=9)  # seqNums jump: positions do not
        self.archiver(events=6).archive(store_id)
        store = self.archived_store()
        assert store.log_head(store_id) == LogHead(log[-1][0], len(log))
        for cursor in (0, 1, log[7][0], log[-2][0]):
            events = list(store.read(store_id, cursor))
            skipped = len(log) - len(events)
            assert [event.position for event in events] == list(range(skipped + 1, len(log) + 1))

    # -- crash safety ---------------------------------------------------------------------------

    @pytest.mark.parametrize("step", STEPS)
    def test_a_crash_at_any_step_loses_and_duplicates_nothing(self, store_id: str, step: str) -> None:
        log = fill(self.create_hot_store(), store_id, 25, seed=7)

        def crash(at: str, segment: SegmentInfo) -> None:
            if at == step and segment.parent_seq_num > 0:  # the second segment: one is done already
                raise Crash(f"killed after {at}")

        with pytest.raises(Crash):
            self.archiver(checkpoint=crash).archive(store_id)
        self.assert_every_cursor_reads(self.archived_store(), store_id, log)
        rerun = self.archiver().archive(store_id)
        assert rerun.sealed or step == "retired"
        segments = self.assert_chain(store_id, log)
        assert len(segments) >= 3
        self.assert_every_cursor_reads(self.archived_store(), store_id, log)
        hot_first = next(iter(self.create_hot_store().hot_batches(store_id, 0)))
        assert hot_first.parent_seq_num == segments[-1].last_seq_num  # nothing archived stays hot

    def test_pulls_interleaved_with_every_archive_step(self, store_id: str) -> None:
        log = fill(self.create_hot_store(), store_id, 30, seed=3)
        store = self.archived_store()
        cursors = [0, 1, 5, 17, 30, log[len(log) // 2][0], log[-2][0]]
        readers = {cursor: store.read(store_id, cursor) for cursor in cursors}
        got: dict[int, Log] = {cursor: [] for cursor in cursors}

        def advance(step: str, segment: SegmentInfo) -> None:
            for cursor, reader in readers.items():
                for _ in range(3):
                    event = next(reader, None)
                    if event is not None:
                        got[cursor].append((event.seq_num, event.event_json))

        self.archiver(events=5, checkpoint=advance).archive(store_id)
        for cursor, reader in readers.items():
            got[cursor].extend(pairs(reader))
            assert got[cursor] == after(log, cursor), f"cursor {cursor}"

    def test_concurrent_archivers_with_different_policies_agree(self, store_id: str) -> None:
        log = fill(self.create_hot_store(), store_id, 40, seed=5)
        barrier = threading.Barrier(3)

        def run(events: int) -> int:
            barrier.wait()
            return len(self.archiver(events=events).archive(store_id).sealed)

        with ThreadPoolExecutor(3) as pool:
            sealed = list(pool.map(run, [5, 8, 13]))
        assert sum(sealed) >= 1
        segments = list(self.create_hot_store().segments(store_id, 0))
        reached = 0
        for segment in segments:
            assert segment.parent_seq_num == reached
            reached = segment.last_seq_num
        self.assert_every_cursor_reads(self.archived_store(), store_id, log)

    # -- segments as read -------------------------------------------------------------------------

    def test_a_warm_reader_serves_segments_from_its_cache(self, store_id: str) -> None:
        log = fill(self.create_hot_store(), store_id, 20)
        sealed = self.archiver().archive(store_id).sealed
        counting = CountingSegments(self.create_segment_store())
        store = TieredEventLog(self.create_hot_store(), counting, SegmentCache(10_000_000))
        assert pairs(store.read(store_id, 0)) == log
        assert counting.gets == len(sealed)
        assert pairs(store.read(store_id, 3)) == after(log, 3)
        assert counting.gets == len(sealed)
        tiny = CountingSegments(self.create_segment_store())
        uncached = TieredEventLog(self.create_hot_store(), tiny, SegmentCache(1))
        assert pairs(uncached.read(store_id, 0)) == log
        assert pairs(uncached.read(store_id, 0)) == log
        assert tiny.gets == 2 * len(sealed)

    def test_a_corrupted_segment_is_an_error_not_a_silent_gap(self, store_id: str) -> None:
        fill(self.create_hot_store(), store_id, 20)
        segment = self.archiver().archive(store_id).sealed[0]
        other = json.dumps({"not": "a segment"}).encode()
        self.create_segment_store().put(
            segment.key, other, sha256=hashlib.sha256(other).hexdigest(), metadata={}
        )
        with pytest.raises(SegmentCorruptError):
            list(self.archived_store().read(store_id, 0))
