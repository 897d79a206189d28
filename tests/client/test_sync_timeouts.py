"""``sync(timeout=...)`` returns in time, and neither it nor the background loop spins hot when the
backend keeps answering ServerAheadError (issue 9)."""

from __future__ import annotations

import threading
import time
from typing import Any

from stratasync.client import RetryPolicy, Store
from stratasync.client.todos import schema, todo_created
from stratasync.protocol.errors import ServerAheadError
from tests.client.fakes import ScriptedTransport, always_ahead, wire_event

SLACK = 1.5  # one request in flight, and a noisy machine


def timed_sync(store: Store, transport: ScriptedTransport, timeout: float) -> tuple[float, BaseException]:
    """Run ``store.sync(timeout)`` in a thread; (elapsed seconds, what it raised).

    A sync that overruns by far is stopped through the transport, so the test fails instead of hanging.
    """
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            store.sync(timeout=timeout)
        except BaseException as error:
            outcome.append(error)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout + 10)
    transport.stopped.set()
    thread.join(10)
    elapsed = time.monotonic() - started
    assert outcome, "sync returned although it cannot have caught up"
    return elapsed, outcome[0]


def test_sync_timeout_holds_when_the_backend_is_always_ahead() -> None:
    transport = ScriptedTransport(on_push=always_ahead)
    with Store(schema, "s", transport=transport) as store:
        store.commit(todo_created(id="a", text="milk"))
        elapsed, error = timed_sync(store, transport, timeout=1.0)
        print(f"sync(timeout=1), backend always ahead: {elapsed:.2f} s, {len(transport.pushes)} pushes")
        assert isinstance(error, TimeoutError), error
        assert elapsed < 1.0 + SLACK
        # Backoff after the first refusals: a handful of rounds, not thousands.
        assert len(transport.pushes) < 40
        assert store.last_sync_error is error


def test_sync_timeout_holds_with_a_slow_backend_and_a_busy_peer() -> None:
    def peer_pushes(transport: ScriptedTransport, after: int) -> None:  # one new event per pull
        head = transport.upstream[-1]["seqNum"] if transport.upstream else 0
        event = wire_event(head + 1, head, "v1.TodoCreated", {"id": f"p{head}", "text": "p"})
        transport.upstream.append(event)

    transport = ScriptedTransport(on_push=always_ahead, pull_hook=peer_pushes, delay=0.3)
    with Store(schema, "s", transport=transport) as store:
        store.commit(todo_created(id="a", text="milk"))
        elapsed, error = timed_sync(store, transport, timeout=1.0)
        print(f"sync(timeout=1) with 0.3 s requests and a busy peer: {elapsed:.2f} s")
        assert isinstance(error, TimeoutError), error
        assert elapsed < 1.0 + SLACK
        assert store.upstream_head > 0  # it did pull what it could meanwhile


def test_background_sync_backs_off_when_the_backend_is_always_ahead() -> None:
    transport = ScriptedTransport(on_push=always_ahead)
    with Store(schema, "s", transport=transport) as store:
        store.commit(todo_created(id="a", text="milk"))
        store.start_sync()
        time.sleep(2.0)
        store.stop_sync()
        transport.stopped.set()
        print(f"background sync, 2 s against a backend always ahead: {len(transport.pushes)} pushes")
        assert 2 <= len(transport.pushes) < 60


def test_refused_rounds_that_bring_new_events_are_retried_at_once() -> None:
    # Real contention: a peer's push lands between each of this client's pulls and pushes.
    # Every refused round brings new events, so backing off would only let the peer win again.
    races = {"left": 10}

    def peer_wins(batch: list[dict[str, Any]]) -> None:
        if races["left"]:
            races["left"] -= 1
            head = transport.upstream[-1]["seqNum"] if transport.upstream else 0
            transport.upstream.append(
                wire_event(head + 1, head, "v1.TodoCreated", {"id": f"p{head}", "text": "p"})
            )
            raise ServerAheadError(head + 1, batch[0]["parentSeqNum"])

    transport = ScriptedTransport(on_push=peer_wins)
    with Store(schema, "s", transport=transport) as store:
        store.commit(todo_created(id="a", text="milk"))
        started = time.monotonic()
        store.sync(timeout=10)
        elapsed = time.monotonic() - started
        print(f"caught up through 10 lost races in {elapsed:.3f} s")
        assert store.pending_events() == []
        assert store.upstream_head == 11
        assert len(transport.pushes) == 11
        assert elapsed < 1.5  # backing off after each refusal would take about 4 s


def test_contention_delay_is_jittered_and_bounded() -> None:
    policy = RetryPolicy(initial_seconds=0.1, max_seconds=10.0, contention_max_seconds=1.0)
    assert policy.contention_delay(1) == 0.0  # the first refusal retries at once
    delays = [policy.contention_delay(refusals) for refusals in range(2, 200)]
    assert all(0.0 <= delay <= 1.0 for delay in delays)
    assert len(set(delays)) > 100


def test_a_sync_that_can_catch_up_does() -> None:
    transport = ScriptedTransport(delay=0.05)
    with Store(schema, "s", transport=transport) as store:
        store.commit(todo_created(id="a", text="milk"))
        store.sync(timeout=5)
        assert store.pending_events() == []
        assert [event["seqNum"] for event in transport.upstream] == [1]
