"""The live-sync rules (stratasync.core.live) on every adapter pair: catch-up and handoff, the
fan-out, exactly-once delivery under crashes at every step, stream redelivery, racing pushes."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

import pytest

from stratasync.storage.subscriptions import (
    SendFailedError,
    SendThrottledError,
    SubscriptionKey,
    SubscriptionStatus,
)
from tests.ws.conftest import MakeHarness
from tests.ws.harness import (
    Harness,
    assert_each_pull_whole_or_closed,
    assert_exactly_once_in_order,
    crashing,
    dead_by_now,
    subscription_of,
)


def page_infos(harness: Harness, connection_id: str, request_id: str = "1") -> list[Any]:
    return [chunk["pageInfo"] for chunk in harness.gateway.chunks(connection_id, request_id)]


# -- catch-up and handoff ----------------------------------------------------------------------


def test_a_live_pull_of_an_empty_store_sends_one_empty_no_more_chunk(harness: Harness) -> None:
    connection = harness.connect()
    harness.live_pull(connection)
    [chunk] = harness.gateway.chunks(connection.connection_id, "1")
    assert chunk["batch"] == []
    assert chunk["pageInfo"] == {"_tag": "NoMore"}
    assert chunk["backendId"] == harness.eventlog.backend_id(harness.store_id)
    assert not any(m["_tag"] == "Exit" for m in harness.gateway.decoded(connection.connection_id))
    sub = subscription_of(harness, connection.connection_id)
    assert (sub.status, sub.sent_seq) == (SubscriptionStatus.LIVE, 0)


def test_a_live_pull_pages_the_stored_events_then_goes_live(harness: Harness) -> None:
    for first in range(1, 251, 50):
        harness.push(first, 50)
    connection = harness.connect()
    harness.live_pull(connection)
    chunks = harness.gateway.chunks(connection.connection_id, "1")
    assert [len(chunk["batch"]) for chunk in chunks] == [100, 100, 50]
    assert page_infos(harness, connection.connection_id) == [
        {"_tag": "MoreKnown", "remaining": 150},
        {"_tag": "MoreKnown", "remaining": 50},
        {"_tag": "NoMore"},
    ]
    assert_exactly_once_in_order(harness.gateway.seqs(connection.connection_id, "1"), 0, 250)
    assert subscription_of(harness, connection.connection_id).sent_seq == 250
    # from a cursor
    other = harness.connect()
    harness.live_pull(other, "7", cursor=240)
    assert_exactly_once_in_order(harness.gateway.seqs(other.connection_id, "7"), 240, 250)


def test_a_pull_interrupted_before_it_began_sends_nothing(harness: Harness) -> None:
    connection = harness.connect()
    harness.live.interrupt(connection, "1")
    harness.live_pull(connection)
    assert harness.gateway.decoded(connection.connection_id) == []


def test_a_catch_up_racing_pushes_delivers_each_event_once(harness: Harness) -> None:
    """Pushers commit while live pulls catch up; the stream consumer fans out after every commit.
    Every subscriber ends with every event exactly once, in order."""
    harness.push(1, 100)
    commits: queue.Queue[int | None] = queue.Queue()

    def stream_consumer() -> None:  # one at a time per store, like ParallelizationFactor 1
        while (seq := commits.get()) is not None:
            harness.live.fan_out(harness.store_id, after=seq - 1)  # the record's parent, as the handler

    def pusher() -> None:
        for seq in range(101, 161):
            harness.push(seq, 1)
            commits.put(seq)

    consumer = threading.Thread(target=stream_consumer)
    consumer.start()
    connections = [harness.connect() for _ in range(4)]
    pushing = threading.Thread(target=pusher)
    pushing.start()
    pullers = [
        threading.Thread(target=harness.live_pull, args=(connection, "3", cursor))
        for connection, cursor in zip(connections, [None, 10, 99, None], strict=True)
    ]
    for thread in pullers:
        thread.start()
        time.sleep(0.01)
    for thread in [pushing, *pullers]:
        thread.join()
    commits.put(None)
    consumer.join()
    harness.live.fan_out(harness.store_id)  # the last commit's record, if the pulls outran it
    for connection, cursor in zip(connections, [0, 10, 99, 0], strict=True):
        assert_exactly_once_in_order(harness.gateway.seqs(connection.connection_id, "3"), cursor, 160)
    assert harness.gateway.closed == []


def test_a_catch_up_that_runs_out_of_time_closes_the_connection(harness: Harness) -> None:
    harness.push(1, 5)
    connection = harness.connect()
    harness.live.pull_live(connection, "1", None, deadline_ms=int(time.time() * 1000) + 1_000)
    assert harness.gateway.closed == [connection.connection_id]
    assert subscription_of(harness, connection.connection_id) is None


# -- fan-out ---------------------------------------------------------------------------------


def test_a_push_reaches_every_live_pull_once_its_pushers_own_included(harness: Harness) -> None:
    pusher, other = harness.connect(), harness.connect()
    harness.live_pull(pusher, "1")
    harness.live_pull(other, "4")
    harness.live_pull(other, "5")  # a second live pull on one connection
    harness.push(1, 3)
    report = harness.live.fan_out(harness.store_id)
    assert (report.delivered, report.head) == (3, 3)
    for connection_id, request_id in (
        (pusher.connection_id, "1"),
        (other.connection_id, "4"),
        (other.connection_id, "5"),
    ):
        assert_exactly_once_in_order(harness.gateway.seqs(connection_id, request_id), 0, 3)
        live_chunk = harness.gateway.chunks(connection_id, request_id)[-1]
        assert live_chunk["pageInfo"] == {"_tag": "NoMore"}
        assert live_chunk["batch"][0]["metadata"]["value"]["createdAt"]
    # a redelivered stream record (or the next one) sends nothing twice
    again = harness.live.fan_out(harness.store_id)
    assert again.delivered == 0
    harness.push(4, 1)
    harness.live.fan_out(harness.store_id)
    for connection_id, request_id in ((pusher.connection_id, "1"), (other.connection_id, "4")):
        assert_exactly_once_in_order(harness.gateway.seqs(connection_id, request_id), 0, 4)


def _reads(harness: Harness) -> list[int]:
    """Record where each event read of the fan-out starts (where pushes do not fan out
    themselves, the stream's fan-out reads the events after its hint beside the subscriptions)."""
    starts: list[int] = []
    read = harness.live._events_after

    def recording(store_id: str, after: int) -> Any:
        starts.append(after)
        return read(store_id, after)

    harness.live._events_after = recording  # type: ignore[method-assign]
    return starts


def test_the_streams_hint_is_read_beside_the_subscriptions(make_harness: MakeHarness) -> None:
    harness = make_harness(push_fan_out=False)  # the stream's fan-out reads beside the subscriptions
    first, second = harness.connect(), harness.connect()
    harness.live_pull(first)
    harness.live_pull(second, "2")
    harness.push(1, 3)
    starts = _reads(harness)
    report = harness.live.fan_out(harness.store_id, after=0)
    assert (report.delivered, report.head) == (2, 3)
    assert starts == [0]  # one read, started with the subscriptions' (none after it)
    assert_exactly_once_in_order(harness.gateway.seqs(first.connection_id, "1"), 0, 3)
    assert_exactly_once_in_order(harness.gateway.seqs(second.connection_id, "2"), 0, 3)


def test_a_subscription_behind_the_hint_gets_the_general_read(make_harness: MakeHarness) -> None:
    harness = make_harness(push_fan_out=False)  # the stream's fan-out reads beside the subscriptions
    connection = harness.connect()
    harness.live_pull(connection)
    harness.push(1, 2)  # its stream record's fan-out did not run (a crash, say)
    harness.push(3, 2)
    starts = _reads(harness)
    harness.live.fan_out(harness.store_id, after=2)
    assert starts == [2, 0]
    assert_exactly_once_in_order(harness.gateway.seqs(connection.connection_id, "1"), 0, 4)


def test_a_hint_below_every_subscription_sends_only_what_is_new(make_harness: MakeHarness) -> None:
    harness = make_harness(push_fan_out=False)  # the stream's fan-out reads beside the subscriptions
    connection = harness.connect()
    harness.live_pull(connection)
    harness.push(1, 2)
    harness.live.fan_out(harness.store_id, after=0)
    harness.push(3, 2)
    harness.live.fan_out(harness.store_id, after=0)  # a stale hint (a redelivered batch, say)
    assert_exactly_once_in_order(harness.gateway.seqs(connection.connection_id, "1"), 0, 4)


def test_a_subscription_live_since_the_hinted_read_is_skipped(make_harness: MakeHarness) -> None:
    harness = make_harness(push_fan_out=False)  # the stream's fan-out reads beside the subscriptions
    early, late = harness.connect(), harness.connect()
    harness.live_pull(early)
    harness.push(1, 1)
    read = harness.live._read_backlog

    def read_then_commit(store_id: str, after: int) -> Any:
        items = read(store_id, after)
        harness.push(2, 1)  # a commit lands, and a catch-up goes live at it, after the read
        harness.live_pull(late, "9")
        return items

    harness.live._read_backlog = read_then_commit  # type: ignore[method-assign]
    harness.live.fan_out(harness.store_id, after=0)
    harness.live._read_backlog = read  # type: ignore[method-assign]
    harness.live.fan_out(harness.store_id, after=1)  # the second commit's record
    assert_exactly_once_in_order(harness.gateway.seqs(early.connection_id, "1"), 0, 2)
    assert_exactly_once_in_order(harness.gateway.seqs(late.connection_id, "9"), 0, 2)


def test_live_messages_stay_within_api_gateways_limits(harness: Harness) -> None:
    connection = harness.connect()
    harness.live_pull(connection)
    for first in range(1, 31, 10):
        harness.push(first, 10, text="x" * 20_000)  # 30 events of about 20 KB
    harness.live.fan_out(harness.store_id)
    messages = harness.gateway.messages[connection.connection_id]
    assert max(len(message.encode()) for message in messages) <= 120_000
    chunks = harness.gateway.chunks(connection.connection_id, "1")
    assert [chunk["pageInfo"]["_tag"] for chunk in chunks[1:]] == ["MoreKnown"] * (len(chunks) - 2) + [
        "NoMore"
    ]
    assert_exactly_once_in_order(harness.gateway.seqs(connection.connection_id, "1"), 0, 30)


def test_an_interrupted_pull_gets_nothing_more(harness: Harness) -> None:
    connection = harness.connect()
    harness.live_pull(connection)
    harness.live.interrupt(connection, "1")
    harness.live.interrupt(connection, "99")  # unknown: harmless
    harness.push(1, 2)
    harness.live.fan_out(harness.store_id)
    assert harness.gateway.seqs(connection.connection_id, "1") == []
    assert harness.gateway.closed == []  # a fresh connection with an interrupted pull is left open


def test_a_gone_connection_is_forgotten(harness: Harness) -> None:
    gone, alive = harness.connect(), harness.connect()
    harness.live_pull(gone)
    harness.live_pull(alive)
    harness.gateway.gone.add(gone.connection_id)
    harness.push(1, 1)
    report = harness.live.fan_out(harness.store_id)
    assert report.gone == {gone.connection_id}
    assert harness.subscriptions.connection(gone.connection_id) is None
    assert subscription_of(harness, gone.connection_id) is None
    assert_exactly_once_in_order(harness.gateway.seqs(alive.connection_id, "1"), 0, 1)


def test_a_throttled_send_is_retried(harness: Harness) -> None:
    connection = harness.connect()
    harness.live_pull(connection)
    refusals = [SendThrottledError("slow down"), SendThrottledError("slow down")]

    def throttle(connection_id: str, data: str) -> None:
        if refusals:
            raise refusals.pop()

    harness.gateway.before_post = throttle
    harness.push(1, 1)
    harness.live.fan_out(harness.store_id)
    assert_exactly_once_in_order(harness.gateway.seqs(connection.connection_id, "1"), 0, 1)
    assert harness.gateway.closed == []


def test_a_send_of_unknown_outcome_closes_the_connection(harness: Harness) -> None:
    connection = harness.connect()
    harness.live_pull(connection)

    def fail(connection_id: str, data: str) -> None:
        raise SendFailedError("read timeout")

    harness.gateway.before_post = fail
    harness.push(1, 1)
    report = harness.live.fan_out(harness.store_id)
    assert report.closed == {connection.connection_id}
    assert harness.gateway.closed == [connection.connection_id]
    assert harness.subscriptions.connection(connection.connection_id) is None


def test_an_expired_claim_found_on_a_subscription_closes_it(harness: Harness) -> None:
    connection = harness.connect()
    harness.live_pull(connection)
    key = SubscriptionKey(harness.store_id, connection.connection_id, "1")
    assert harness.subscriptions.claim(key, 0, 1, int(time.time() * 1000) - 1)  # died mid-send
    harness.push(1, 1)
    report = harness.live.fan_out(harness.store_id)
    assert report.closed == {connection.connection_id}
    assert harness.gateway.seqs(connection.connection_id, "1") == []


def test_a_catch_up_whose_owner_died_is_closed_and_a_running_one_is_left_alone(harness: Harness) -> None:
    dead, running = harness.connect(), harness.connect()
    now_ms = int(time.time() * 1000)
    for connection, lease in ((dead, now_ms - 1), (running, now_ms + 60_000)):
        key = SubscriptionKey(harness.store_id, connection.connection_id, "1")
        assert harness.subscriptions.open_subscription(key, 0, lease, connection.expires_at)
    harness.push(1, 1)
    report = harness.live.fan_out(harness.store_id)
    assert report.closed == {dead.connection_id}
    assert harness.gateway.decoded(running.connection_id) == []  # its owner sends it


def test_a_connection_that_never_pulled_is_closed_after_the_grace(make_harness: MakeHarness) -> None:
    harness = make_harness(orphan_grace_seconds=30)
    old, young, pulling = harness.connect(age_seconds=60), harness.connect(), harness.connect(age_seconds=60)
    harness.live_pull(pulling)
    harness.push(1, 1)
    report = harness.live.fan_out(harness.store_id)
    assert report.closed == {old.connection_id}
    assert young.connection_id not in harness.gateway.closed
    assert_exactly_once_in_order(harness.gateway.seqs(pulling.connection_id, "1"), 0, 1)


def test_a_subscription_too_far_behind_is_closed(make_harness: MakeHarness) -> None:
    harness = make_harness(max_backlog_events=5)
    behind, current = harness.connect(), harness.connect()
    harness.live_pull(behind)
    harness.push(1, 10)
    harness.live_pull(current)  # catches up to 10
    harness.push(11, 2)
    report = harness.live.fan_out(harness.store_id)
    assert report.closed == {behind.connection_id}
    assert_exactly_once_in_order(harness.gateway.seqs(current.connection_id, "1"), 0, 12)


def test_a_pusher_without_a_live_pull_is_closed(make_harness: MakeHarness) -> None:
    harness = make_harness(pull_wait_seconds=0.3)
    pulling, idle = harness.connect(), harness.connect()
    harness.live_pull(pulling)
    assert harness.live.ensure_pulling(pulling.connection_id)
    assert not harness.live.ensure_pulling(idle.connection_id)
    assert harness.gateway.closed == [idle.connection_id]


def test_disconnect_forgets_the_connection(harness: Harness) -> None:
    connection = harness.connect()
    harness.live_pull(connection)
    harness.live.disconnect(connection.connection_id)
    harness.live.disconnect(connection.connection_id)
    assert harness.subscriptions.listeners(harness.store_id).subscriptions == []
    assert harness.subscriptions.connection(connection.connection_id) is None


# -- crashes at every step ---------------------------------------------------------------------


def _crashing_fan_out(harness: Harness, crash_at: int, hints: dict[str, int] | None = None) -> int:
    """Run a stream's fan-out (given ``hints``: ``after``, ``last_parent``) that dies at its
    ``crash_at``-th side effect (before or after each claim, send, release, close, forget);
    returns how many side effects it saw."""
    return crashing(
        harness,
        crash_at,
        lambda: harness.live.fan_out(harness.store_id, **(hints or {}), deadline_ms=dead_by_now(harness)),
    )


def _crash_scenario(harness: Harness) -> list[tuple[str, str, int]]:
    """Three live pulls (two connections), at 5, 5 and 3; then 4 events in two batches."""
    first, second = harness.connect(), harness.connect()
    harness.push(1, 3)
    harness.live_pull(first, "1", cursor=3)
    harness.live_pull(second, "2", cursor=0)
    harness.push(4, 2)
    harness.live.fan_out(harness.store_id)
    harness.live_pull(second, "3", cursor=5)
    harness.push(6, 2)
    harness.push(8, 2)
    return [(first.connection_id, "1", 3), (second.connection_id, "2", 0), (second.connection_id, "3", 5)]


@pytest.mark.parametrize(
    ("hints", "push_fan_out"),
    [({}, True), ({"after": 5}, False), ({"after": 5, "last_parent": 7}, True)],
    ids=["no-hint", "stream-hint-read-beside", "stream-hints"],
)
def test_exactly_once_under_a_crash_at_every_step_of_a_fan_out(
    make_harness: MakeHarness, hints: dict[str, int], push_fan_out: bool
) -> None:
    """A fan-out dies at each of its side effects in turn; the stream consumer's retry (twice)
    runs it again. Every pull then has each event once in order, and the ones whose connection
    stayed open have all of them. With hints the fan-out is given what the handler gives it from
    the records of the two unpublished commits: their lowest parent (5; where pushes do not fan
    out themselves, the events are then read beside the subscriptions) and their highest (7)."""
    probe = make_harness(send_concurrency=1, push_fan_out=push_fan_out)
    _crash_scenario(probe)
    total = _crashing_fan_out(probe, -1, hints)
    assert total >= 12  # claim, post, release for each of 3 pulls, before and after each
    for crash_at in range(1, total + 1):
        harness = make_harness(send_concurrency=1, push_fan_out=push_fan_out)
        pulls = _crash_scenario(harness)
        _crashing_fan_out(harness, crash_at, hints)
        harness.live.fan_out(harness.store_id, **hints)  # the batch is retried
        harness.live.fan_out(harness.store_id, **hints)  # ... and redelivered once more
        assert_each_pull_whole_or_closed(harness, pulls, 9)


def test_no_commit_is_left_unpublished(harness: Harness) -> None:
    """The admission rule's guarantee: after a fan-out has run for a commit, every connection of
    the store is at that commit or closed (so a pusher on ServerAheadError always gets the events
    that put the server ahead, or reconnects and pulls them)."""
    connections = [harness.connect(age_seconds=60) for _ in range(4)]
    harness.live_pull(connections[0])
    harness.live_pull(connections[1])
    harness.live.interrupt(connections[1], "1")
    key = SubscriptionKey(harness.store_id, connections[2].connection_id, "1")
    harness.subscriptions.open_subscription(key, 0, int(time.time() * 1000) - 1, connections[2].expires_at)
    harness.push(1, 2)
    harness.live.fan_out(harness.store_id)
    for connection in connections:
        seqs = harness.gateway.seqs(connection.connection_id, "1")
        assert seqs == [1, 2] or connection.connection_id in harness.gateway.closed, json.dumps(seqs)
