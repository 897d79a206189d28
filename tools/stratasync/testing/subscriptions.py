"""The one conformance suite of :class:`~stratasync.storage.subscriptions.SubscriptionStorage`.

Subclass :class:`SubscriptionStorageConformance` and implement :meth:`create`, which returns the
adapter and the eventlog storage its :meth:`go_live` checks (they must be one deployment).
"""

from __future__ import annotations

import threading
import time
import uuid
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor

import pytest

from stratasync.storage import EventLogStorage
from stratasync.storage.subscriptions import (
    Connection,
    Handoff,
    SubscriptionKey,
    SubscriptionStatus,
    SubscriptionStorage,
)
from stratasync.testing.event_log import make_batch


def _later() -> int:
    return int(time.time()) + 3600


def _claim_until() -> int:
    """A claim's time (epoch ms) a minute from now."""
    return int(time.time() * 1000) + 60_000


class SubscriptionStorageConformance(ABC):
    """Behaviour every SubscriptionStorage adapter must show."""

    @abstractmethod
    def create(self) -> tuple[SubscriptionStorage, EventLogStorage]:
        """A fresh adapter and the eventlog its go_live checks (shared state is fine: new ids are used)."""

    @pytest.fixture
    def pair(self) -> tuple[SubscriptionStorage, EventLogStorage]:
        return self.create()

    @pytest.fixture
    def subs(self, pair: tuple[SubscriptionStorage, EventLogStorage]) -> SubscriptionStorage:
        return pair[0]

    @pytest.fixture
    def eventlog(self, pair: tuple[SubscriptionStorage, EventLogStorage]) -> EventLogStorage:
        return pair[1]

    @pytest.fixture
    def store_id(self) -> str:
        return f"store-{uuid.uuid4().hex[:10]}"

    def connect(
        self, subs: SubscriptionStorage, store_id: str, *, expires_at: int | None = None
    ) -> Connection:
        connection = Connection(
            f"c{uuid.uuid4().hex[:12]}=", store_id, int(time.time() * 1000), expires_at or _later()
        )
        subs.put_connection(connection)
        return connection

    def key(self, connection: Connection, request_id: str = "1") -> SubscriptionKey:
        return SubscriptionKey(connection.store_id, connection.connection_id, request_id)

    def live_at(self, subs: SubscriptionStorage, key: SubscriptionKey, sent_seq: int) -> None:
        assert subs.open_subscription(key, sent_seq, int(time.time() * 1000) + 60_000, _later())
        assert subs.go_live(key, sent_seq) is Handoff.LIVE

    # -- connections -------------------------------------------------------------------------

    def test_a_connection_round_trips(self, subs: SubscriptionStorage, store_id: str) -> None:
        connection = self.connect(subs, store_id)
        assert subs.connection(connection.connection_id) == connection
        assert subs.connection("never-connected=") is None
        assert subs.listeners(store_id).connections == [connection]

    def test_an_expired_connection_is_gone(self, subs: SubscriptionStorage, store_id: str) -> None:
        connection = self.connect(subs, store_id, expires_at=int(time.time()) - 5)
        assert subs.connection(connection.connection_id) is None
        assert subs.listeners(store_id).connections == []

    def test_removing_a_connection_removes_its_subscriptions_only(
        self, subs: SubscriptionStorage, store_id: str
    ) -> None:
        first, second = self.connect(subs, store_id), self.connect(subs, store_id)
        for connection in (first, second):
            for request_id in ("1", "2"):
                self.live_at(subs, self.key(connection, request_id), 0)
        subs.remove_connection(first.connection_id, store_id)
        subs.remove_connection(first.connection_id, store_id)  # idempotent
        listeners = subs.listeners(store_id)
        assert subs.connection(first.connection_id) is None
        assert [connection.connection_id for connection in listeners.connections] == [second.connection_id]
        assert sorted(sub.key for sub in listeners.subscriptions) == [
            self.key(second, "1"),
            self.key(second, "2"),
        ]

    def test_listeners_are_per_store(self, subs: SubscriptionStorage, store_id: str) -> None:
        mine, other = self.connect(subs, store_id), self.connect(subs, store_id + "-other")
        self.live_at(subs, self.key(mine), 0)
        self.live_at(subs, self.key(other), 0)
        listeners = subs.listeners(store_id)
        assert [connection.connection_id for connection in listeners.connections] == [mine.connection_id]
        assert [sub.key for sub in listeners.subscriptions] == [self.key(mine)]

    # -- catch-up and handoff ---------------------------------------------------------------------

    def test_a_subscription_opens_once(self, subs: SubscriptionStorage, store_id: str) -> None:
        key = self.key(self.connect(subs, store_id))
        assert subs.open_subscription(key, 5, 123_000, _later())
        assert not subs.open_subscription(key, 9, 456_000, _later())
        [sub] = subs.listeners(store_id).subscriptions
        assert (sub.status, sub.sent_seq, sub.lease_until_ms, sub.sending) == (
            SubscriptionStatus.CATCHUP,
            5,
            123_000,
            None,
        )

    def test_an_interrupt_that_came_first_keeps_the_pull_from_subscribing(
        self, subs: SubscriptionStorage, store_id: str
    ) -> None:
        key = self.key(self.connect(subs, store_id))
        subs.interrupt(key, _later())
        assert not subs.open_subscription(key, 0, 1, _later())
        [sub] = subs.listeners(store_id).subscriptions
        assert sub.status is SubscriptionStatus.INTERRUPTED

    def test_an_expired_subscription_can_be_opened_again(
        self, subs: SubscriptionStorage, store_id: str
    ) -> None:
        key = self.key(self.connect(subs, store_id))
        assert subs.open_subscription(key, 0, 1, int(time.time()) - 5)
        assert subs.listeners(store_id).subscriptions == []
        assert subs.open_subscription(key, 3, 1, _later())

    def test_go_live_at_the_head(
        self, subs: SubscriptionStorage, eventlog: EventLogStorage, store_id: str
    ) -> None:
        key = self.key(self.connect(subs, store_id))
        assert subs.open_subscription(key, 0, 1, _later())
        assert subs.go_live(key, 0) is Handoff.LIVE
        [sub] = subs.listeners(store_id).subscriptions
        assert (sub.status, sub.sent_seq, sub.lease_until_ms) == (SubscriptionStatus.LIVE, 0, None)
        assert subs.go_live(key, 0) is Handoff.GONE  # no longer in catch-up

    def test_go_live_reports_a_moved_head(
        self, subs: SubscriptionStorage, eventlog: EventLogStorage, store_id: str
    ) -> None:
        eventlog.append(store_id, make_batch(0, 3))
        key = self.key(self.connect(subs, store_id))
        assert subs.open_subscription(key, 0, 1, _later())
        assert subs.go_live(key, 0) is Handoff.HEAD_MOVED
        [sub] = subs.listeners(store_id).subscriptions
        assert sub.status is SubscriptionStatus.CATCHUP  # nothing written
        assert subs.go_live(key, 3) is Handoff.LIVE
        assert subs.listeners(store_id).subscriptions[0].sent_seq == 3

    def test_go_live_of_a_gone_subscription(self, subs: SubscriptionStorage, store_id: str) -> None:
        connection = self.connect(subs, store_id)
        interrupted, removed, never = (self.key(connection, request) for request in ("1", "2", "3"))
        for key in (interrupted, removed):
            assert subs.open_subscription(key, 0, 1, _later())
        subs.interrupt(interrupted, _later())
        subs.remove_subscription(removed)
        for key in (interrupted, removed, never):
            assert subs.go_live(key, 0) is Handoff.GONE

    def test_go_live_racing_appends_is_never_live_behind_the_head(
        self, subs: SubscriptionStorage, eventlog: EventLogStorage, store_id: str
    ) -> None:
        """Whenever go_live says LIVE at X, no batch had been committed on X before it; when it
        says HEAD_MOVED, one has."""
        connection = self.connect(subs, store_id)
        for trial in range(8):
            key = self.key(connection, str(trial))
            head = eventlog.head(store_id)
            assert subs.open_subscription(key, head, 1, _later())
            barrier = threading.Barrier(2)

            def append(head: int = head, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                eventlog.append(store_id, make_batch(head, 1))

            def handoff(
                key: SubscriptionKey = key, head: int = head, barrier: threading.Barrier = barrier
            ) -> Handoff:
                barrier.wait()
                return subs.go_live(key, head)

            with ThreadPoolExecutor(2) as pool:
                appended = pool.submit(append)
                result = pool.submit(handoff).result()
                appended.result()
            if result is Handoff.HEAD_MOVED:
                assert subs.listeners(store_id).subscriptions[-1].status is SubscriptionStatus.CATCHUP
            else:
                assert result is Handoff.LIVE
            assert eventlog.head(store_id) == head + 1

    # -- claims -------------------------------------------------------------------------------

    def test_claim_then_release(self, subs: SubscriptionStorage, store_id: str) -> None:
        key = self.key(self.connect(subs, store_id))
        self.live_at(subs, key, 2)
        until = _claim_until()
        assert not subs.claim(key, 1, 5, until)  # not at that sent_seq
        assert subs.claim(key, 2, 5, until)
        assert not subs.claim(key, 2, 5, until + 1)  # claimed already
        [sub] = subs.listeners(store_id).subscriptions
        assert (sub.sent_seq, sub.sending, sub.sending_until_ms) == (2, 5, until)
        assert not sub.claim_expired(until)
        assert sub.claim_expired(until + 1)
        assert not subs.release(key, 4)  # not that claim
        assert subs.release(key, 5)
        assert not subs.release(key, 5)
        [sub] = subs.listeners(store_id).subscriptions
        assert (sub.status, sub.sent_seq, sub.sending, sub.sending_until_ms) == (
            SubscriptionStatus.LIVE,
            5,
            None,
            None,
        )
        assert not sub.claim_expired(2**62)
        assert subs.claim(key, 5, 9, until)

    def test_an_expired_claim_still_blocks_other_claims(
        self, subs: SubscriptionStorage, store_id: str
    ) -> None:
        """Only the fan-out decides what an expired claim means (it closes the connection): a
        second claim on it would send a range the dead sender may have sent in part."""
        key = self.key(self.connect(subs, store_id))
        self.live_at(subs, key, 0)
        assert subs.claim(key, 0, 3, int(time.time() * 1000) - 1)
        assert not subs.claim(key, 0, 3, _claim_until())
        [sub] = subs.listeners(store_id).subscriptions
        assert sub.claim_expired(int(time.time() * 1000))

    def test_no_claim_on_a_catch_up_or_interrupted_subscription(
        self, subs: SubscriptionStorage, store_id: str
    ) -> None:
        connection = self.connect(subs, store_id)
        catchup, interrupted = self.key(connection, "1"), self.key(connection, "2")
        assert subs.open_subscription(catchup, 0, 1, _later())
        self.live_at(subs, interrupted, 0)
        subs.interrupt(interrupted, _later())
        assert not subs.claim(catchup, 0, 3, _claim_until())
        assert not subs.claim(interrupted, 0, 3, _claim_until())

    def test_release_after_the_subscription_went_away(self, subs: SubscriptionStorage, store_id: str) -> None:
        connection = self.connect(subs, store_id)
        interrupted, removed = self.key(connection, "1"), self.key(connection, "2")
        for key in (interrupted, removed):
            self.live_at(subs, key, 0)
            assert subs.claim(key, 0, 4, _claim_until())
        subs.interrupt(interrupted, _later())
        subs.remove_subscription(removed)
        assert not subs.release(interrupted, 4)
        assert not subs.release(removed, 4)
        assert [sub.status for sub in subs.listeners(store_id).subscriptions] == [
            SubscriptionStatus.INTERRUPTED
        ]

    def test_of_racing_claims_exactly_one_wins(self, store_id: str) -> None:
        adapters = [self.create()[0] for _ in range(8)]
        key = self.key(self.connect(adapters[0], store_id))
        self.live_at(adapters[0], key, 0)
        barrier = threading.Barrier(len(adapters))

        def claim(adapter: SubscriptionStorage) -> bool:
            barrier.wait()
            return adapter.claim(key, 0, 10, _claim_until())

        with ThreadPoolExecutor(len(adapters)) as pool:
            results = list(pool.map(claim, adapters))
        assert results.count(True) == 1
