"""The one conformance suite of :class:`~stratasync.storage.EventLogStorage`.

Every adapter's test module subclasses :class:`EventLogStorageConformance` and implements
:meth:`create_store` (in the manner of eventsourcing's ``tests/persistence.py``).
"""

from __future__ import annotations

import json
import os
import random
import threading
import uuid
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor

import pytest

from stratasync.storage import (
    EMPTY_LOG,
    AppendOutcome,
    EventBatch,
    EventLogStorage,
    HeadMismatchError,
    LogHead,
)


def make_batch(
    parent: int, count: int, *, client: str = "c1", text_bytes: int = 20, step: int = 1
) -> EventBatch:
    """A batch of ``count`` events after ``parent``; ``text_bytes`` of incompressible text each."""
    events = []
    seq = parent
    for _ in range(count):
        seq_parent, seq = seq, seq + step
        text = os.urandom(text_bytes // 2).hex()
        event = {
            "name": "v1.TodoCreated",
            "args": {"id": uuid.uuid4().hex, "text": text},
            "seqNum": seq,
            "parentSeqNum": seq_parent,
            "clientId": client,
            "sessionId": "s",
        }
        events.append((seq, json.dumps(event, separators=(",", ":"))))
    return EventBatch(parent_seq_num=parent, events=events, created_at="2026-11-23T00:00:00.000Z")


class EventLogStorageConformance(ABC):
    """Behaviour every EventLogStorage adapter must show."""

    @abstractmethod
    def create_store(self) -> EventLogStorage:
        """A fresh adapter instance (stores in it may be shared with other tests: use new ids)."""

    @pytest.fixture
    def store(self) -> EventLogStorage:
        return self.create_store()

    @pytest.fixture
    def store_id(self) -> str:
        return f"store-{uuid.uuid4().hex[:10]}"

    # -- backend id --------------------------------------------------------------------------

    def test_backend_id_is_created_once_and_stable(self, store: EventLogStorage, store_id: str) -> None:
        first = store.backend_id(store_id)
        assert isinstance(first, str)
        assert first
        assert store.backend_id(store_id) == first
        assert self.create_store().backend_id(store_id) == first
        assert store.backend_id(store_id + "-other") != first

    def test_concurrent_first_requests_agree_on_one_backend_id(self, store_id: str) -> None:
        stores = [self.create_store() for _ in range(8)]
        barrier = threading.Barrier(len(stores))

        def first_use(adapter: EventLogStorage) -> str:
            barrier.wait()
            return adapter.backend_id(store_id)

        with ThreadPoolExecutor(len(stores)) as pool:
            ids = set(pool.map(first_use, stores))
        assert len(ids) == 1

    # -- append and read --------------------------------------------------------------------

    def test_empty_store(self, store: EventLogStorage, store_id: str) -> None:
        assert store.head(store_id) == 0
        assert list(store.read(store_id, 0)) == []
        assert list(store.read(store_id, 5)) == []

    def test_append_and_read_back_in_order(self, store: EventLogStorage, store_id: str) -> None:
        first, second = make_batch(0, 3), make_batch(3, 2)
        assert store.append(store_id, first) is AppendOutcome.COMMITTED
        assert store.append(store_id, second) is AppendOutcome.COMMITTED
        assert store.head(store_id) == 5
        expected = list(first.events) + list(second.events)
        read = list(store.read(store_id, 0))
        assert [(event.seq_num, event.event_json) for event in read] == expected
        assert {event.created_at for event in read} == {first.created_at}

    @pytest.mark.parametrize("after", [0, 1, 2, 3, 4, 5, 6])
    def test_read_from_any_cursor_including_inside_a_batch(
        self, store: EventLogStorage, store_id: str, after: int
    ) -> None:
        store.append(store_id, make_batch(0, 3))
        store.append(store_id, make_batch(3, 2))
        assert [event.seq_num for event in store.read(store_id, after)] == list(range(after + 1, 6))

    def test_log_head_and_positions_count_events_whatever_the_seqnums(
        self, store: EventLogStorage, store_id: str
    ) -> None:
        assert store.log_head(store_id) == EMPTY_LOG
        store.append(store_id, make_batch(0, 3, step=10))
        store.append(store_id, make_batch(30, 2))
        assert store.log_head(store_id) == LogHead(32, 5)
        assert [event.position for event in store.read(store_id, 0)] == [1, 2, 3, 4, 5]
        assert [(event.seq_num, event.position) for event in store.read(store_id, 15)] == [
            (20, 2),
            (30, 3),
            (31, 4),
            (32, 5),
        ]

    def test_sequence_numbers_may_jump(self, store: EventLogStorage, store_id: str) -> None:
        store.append(store_id, make_batch(0, 2, step=50))
        assert store.head(store_id) == 100
        assert [event.seq_num for event in store.read(store_id, 0)] == [50, 100]
        assert [event.seq_num for event in store.read(store_id, 70)] == [100]
        store.append(store_id, make_batch(100, 1))
        assert [event.seq_num for event in store.read(store_id, 99)] == [100, 101]

    def test_stale_parent_is_refused_with_the_head(self, store: EventLogStorage, store_id: str) -> None:
        store.append(store_id, make_batch(0, 3))
        for parent in (0, 1, 2, 4, 17):
            with pytest.raises(HeadMismatchError) as refused:
                store.append(store_id, make_batch(parent, 1, client="other"))
            assert refused.value.head == 3
            assert refused.value.parent == parent
        assert [event.seq_num for event in store.read(store_id, 0)] == [1, 2, 3]

    def test_retry_of_a_committed_batch_is_recognised_not_duplicated(
        self, store: EventLogStorage, store_id: str
    ) -> None:
        batch = make_batch(0, 2)
        store.append(store_id, batch)
        assert store.append(store_id, batch) is AppendOutcome.ALREADY_COMMITTED
        store.append(store_id, make_batch(2, 1))
        assert store.append(store_id, batch) is AppendOutcome.ALREADY_COMMITTED
        assert [event.seq_num for event in store.read(store_id, 0)] == [1, 2, 3]
        changed = EventBatch(
            0, [(1, batch.events[0][1].replace("v1.", "v2.")), batch.events[1]], batch.created_at
        )
        with pytest.raises(HeadMismatchError):
            store.append(store_id, changed)

    def test_stores_are_isolated(self, store: EventLogStorage, store_id: str) -> None:
        store.append(store_id, make_batch(0, 2))
        other = store_id + "-b"
        assert store.head(other) == 0
        store.append(other, make_batch(0, 1))
        assert [event.seq_num for event in store.read(other, 0)] == [1]
        assert store.head(store_id) == 2

    def test_many_batches_read_across_pages(self, store: EventLogStorage, store_id: str) -> None:
        head = 0
        for _ in range(120):
            count = random.randint(1, 3)
            store.append(store_id, make_batch(head, count))
            head += count
        seqs = [event.seq_num for event in store.read(store_id, 0)]
        assert seqs == list(range(1, head + 1))
        assert [event.seq_num for event in store.read(store_id, head - 7)] == list(range(head - 6, head + 1))

    def test_batch_larger_than_one_item_round_trips(self, store: EventLogStorage, store_id: str) -> None:
        # 100 events of ~8.8 KB incompressible text: about 880 KB, above DynamoDB's 400 KB item limit.
        batch = make_batch(0, 100, text_bytes=8_800)
        assert store.append(store_id, batch) is AppendOutcome.COMMITTED
        assert [(e.seq_num, e.event_json) for e in store.read(store_id, 0)] == list(batch.events)
        assert [e.seq_num for e in store.read(store_id, 42)] == list(range(43, 101))
        assert store.append(store_id, batch) is AppendOutcome.ALREADY_COMMITTED

    def test_one_event_larger_than_one_item_round_trips(self, store: EventLogStorage, store_id: str) -> None:
        batch = make_batch(0, 1, text_bytes=850_000)
        store.append(store_id, batch)
        assert [(e.seq_num, e.event_json) for e in store.read(store_id, 0)] == list(batch.events)

    # -- concurrency -----------------------------------------------------------------------

    def test_racing_writers_exactly_one_wins_each_round(self, store_id: str) -> None:
        writers = 8
        rounds = 6
        adapters = [self.create_store() for _ in range(writers)]
        barrier = threading.Barrier(writers)
        heads_seen_by_losers: list[tuple[int, int]] = []
        lock = threading.Lock()
        wins: dict[int, list[int]] = {}

        def write(index: int) -> None:
            adapter = adapters[index]
            for round_number in range(rounds):
                barrier.wait()
                head = adapter.head(store_id)
                batch = make_batch(head, 1 + index % 3, client=f"w{index}")
                barrier.wait()  # everybody has read the same head: now race
                try:
                    adapter.append(store_id, batch)
                except HeadMismatchError as refused:
                    heads_seen_by_losers.append((head, refused.head))
                else:
                    with lock:
                        wins.setdefault(round_number, []).append(index)

        with ThreadPoolExecutor(writers) as pool:
            for future in [pool.submit(write, index) for index in range(writers)]:
                future.result()
        assert all(reported > seen for seen, reported in heads_seen_by_losers)
        winners_per_round = [len(wins.get(round_number, [])) for round_number in range(rounds)]
        assert winners_per_round == [1] * rounds
        events = list(adapters[0].read(store_id, 0))
        seqs = [event.seq_num for event in events]
        assert seqs == list(range(1, len(seqs) + 1))
        parsed = [json.loads(event.event_json) for event in events]
        assert [event["parentSeqNum"] for event in parsed] == list(range(len(seqs)))
        assert len({event["args"]["id"] for event in parsed}) == len(parsed)
