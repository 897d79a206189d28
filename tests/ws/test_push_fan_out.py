"""The push path's fan-out (``LiveSync.publish``) beside the stream's (``LiveSync.fan_out``), on
every adapter pair: delivery without the stream or a read, what it leaves to the stream, both
senders racing, a crash at every step of the push's sender, and the admission rule when it fails.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from stratasync.client.wsprotocol import WS_PUSH, ws_request
from stratasync.core.live import SenderBusyError
from stratasync.core.ws_endpoint import handle_message
from stratasync.protocol.errors import InvalidRequestError
from stratasync.protocol.messages import PushPayload
from stratasync.storage.base import StorageUnavailableError
from stratasync.storage.subscriptions import SubscriptionKey
from tests.ws.conftest import MakeHarness
from tests.ws.harness import (
    Harness,
    assert_each_pull_whole_or_closed,
    assert_exactly_once_in_order,
    crashing,
    dead_by_now,
    event,
    subscription_of,
)


def count_event_reads(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every read of the eventlog's events from now on (the method's name, once per call)."""
    reads: list[str] = []
    store = harness.live.service.store
    for name in ("read", "hot_batches"):
        method = getattr(store, name, None)
        if method is None:
            continue

        def counted(
            *args: Any, _name: str = name, _method: Callable[..., Any] = method, **kwargs: Any
        ) -> Any:
            reads.append(_name)
            return _method(*args, **kwargs)

        monkeypatch.setattr(store, name, counted)
    return reads


def test_a_push_reaches_the_live_pulls_without_the_stream_or_a_read(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    connections = [harness.connect() for _ in range(3)]
    for connection in connections:
        harness.live_pull(connection)
    reads = count_event_reads(harness, monkeypatch)
    report = harness.publish(harness.push(1, 3))
    assert report is not None
    assert not report.skipped
    assert (report.delivered, report.events_sent, report.head) == (3, 9, 3)
    assert reads == []  # the batch's events were in hand
    for connection in connections:
        assert_exactly_once_in_order(harness.gateway.seqs(connection.connection_id, "1"), 0, 3)
        sub = subscription_of(harness, connection.connection_id)
        assert (sub.sent_seq, sub.sending, sub.sending_until_ms) == (3, None, None)
    # The stream's record of the same commit arrives later: everyone is past its parent already,
    # so it reads nothing either (only the subscriptions).
    after = harness.live.fan_out(harness.store_id, after=0, last_parent=0)
    assert (after.delivered, after.messages_sent, after.closed) == (0, 0, set())
    assert reads == []
    for connection in connections:
        assert_exactly_once_in_order(harness.gateway.seqs(connection.connection_id, "1"), 0, 3)


def test_the_push_sends_what_a_read_would(harness: Harness) -> None:
    """The chunk the push path builds from the batch in hand is the one a read would make."""
    pushed_on = harness.connect()
    harness.live_pull(pushed_on)
    harness.publish(harness.push(1, 2, text='a \u2028 \U0001f600 \\ " é'))
    read_by = harness.connect()
    harness.live_pull(read_by, cursor=0)  # the same events, read back from storage
    sent = harness.gateway.chunks(pushed_on.connection_id, "1")
    read = harness.gateway.chunks(read_by.connection_id, "1")
    assert [chunk["batch"] for chunk in sent if chunk["batch"]] == [chunk["batch"] for chunk in read]
    assert (
        harness.gateway.messages[pushed_on.connection_id][-1]
        == harness.gateway.messages[read_by.connection_id][-1]
    )


def _push_args(harness: Harness, args: dict[str, Any]) -> Any:
    """Push one event with these ``args`` at the head (1)."""
    payload = PushPayload.model_validate(
        {"storeId": harness.store_id, "batch": [{**event(1), "args": args}], "backendId": {"_tag": "None"}}
    )
    return harness.service.push(harness.store_id, payload)


@pytest.mark.parametrize(
    "args",
    [
        {"id": "t1", "text": "a lone \ud800 surrogate and its mate \udc00"},
        {"id": "t1", "huge": 1e308, "tiny": 5e-324, "big": 2**63 + 1, "negative": -(2**80), "zero": -0.0},
        {"id": "t1", "text": '\u2028"\\' * 10_000},  # 70 KB of JSON (7 bytes each): one message
    ],
    ids=["lone-surrogates", "extreme-numbers", "near-the-message-limit"],
)
def test_hostile_values_reach_the_live_pulls_as_a_read_sends_them(
    harness: Harness, args: dict[str, Any]
) -> None:
    pushed_on = harness.connect()
    harness.live_pull(pushed_on)
    harness.publish(_push_args(harness, args))
    read_by = harness.connect()
    harness.live_pull(read_by, cursor=0)
    assert (
        harness.gateway.messages[pushed_on.connection_id][-1]
        == harness.gateway.messages[read_by.connection_id][-1]
    )
    assert harness.gateway.seqs(pushed_on.connection_id, "1") == [1]


def test_a_push_refused_for_nan_publishes_nothing(harness: Harness) -> None:
    connection = harness.connect()
    harness.live_pull(connection)
    with pytest.raises(InvalidRequestError):
        _push_args(harness, {"id": "t1", "n": float("nan")})
    assert harness.gateway.seqs(connection.connection_id, "1") == []
    assert harness.eventlog.log_head(harness.store_id).seq_num == 0


def test_a_pull_behind_the_batch_gets_the_events_before_it_too(harness: Harness) -> None:
    behind, current = harness.connect(), harness.connect()
    harness.live_pull(behind)
    harness.push(1, 2)  # its fan-out never ran (the stream's is still to come)
    harness.live_pull(current)  # catches up to 2
    harness.publish(harness.push(3, 2))
    assert_exactly_once_in_order(harness.gateway.seqs(behind.connection_id, "1"), 0, 4)
    assert_exactly_once_in_order(harness.gateway.seqs(current.connection_id, "1"), 0, 4)


def test_a_large_room_is_left_to_the_stream(make_harness: MakeHarness) -> None:
    harness = make_harness(push_fan_out_max_subscriptions=2)
    connections = [harness.connect() for _ in range(3)]
    for connection in connections:
        harness.live_pull(connection)
    report = harness.publish(harness.push(1, 1))
    assert report is not None
    assert report.skipped
    assert report.messages_sent == 0
    assert all(harness.gateway.seqs(connection.connection_id, "1") == [] for connection in connections)
    harness.live.fan_out(harness.store_id, after=0)
    for connection in connections:
        assert_exactly_once_in_order(harness.gateway.seqs(connection.connection_id, "1"), 0, 1)


def test_a_retried_push_or_a_switched_off_push_path_publishes_nothing(make_harness: MakeHarness) -> None:
    harness = make_harness()
    connection = harness.connect()
    harness.live_pull(connection)
    first = harness.push(1, 1)
    retry = harness.push(1, 1)  # its answer was lost; the client sends it again
    assert retry.already_committed
    assert harness.publish(retry) is None
    assert harness.gateway.seqs(connection.connection_id, "1") == []
    assert harness.publish(first) is not None
    off = make_harness(push_fan_out=False)
    other = off.connect()
    off.live_pull(other)
    assert off.publish(off.push(1, 1)) is None
    assert off.gateway.seqs(other.connection_id, "1") == []


def test_a_failing_push_path_leaves_every_connection_to_the_stream(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The admission rule holds when the push's fan-out fails: the push is still accepted, and
    after the stream's fan-out every connection is at the commit or closed."""
    connections = [harness.connect() for _ in range(3)]
    for connection in connections:
        harness.live_pull(connection)
    real = harness.subscriptions.listeners

    def unavailable(store_id: str) -> Any:
        raise StorageUnavailableError("DynamoDB is throttling")

    monkeypatch.setattr(harness.subscriptions, "listeners", unavailable)
    report = harness.publish(harness.push(1, 2))  # does not raise
    assert report is not None
    assert report.skipped
    assert report.messages_sent == 0
    monkeypatch.setattr(harness.subscriptions, "listeners", real)
    harness.push(3, 1)  # the next pusher is admitted on the new head
    harness.live.fan_out(harness.store_id, after=0)
    for connection in connections:
        seqs = harness.gateway.seqs(connection.connection_id, "1")
        assert seqs == [1, 2, 3] or connection.connection_id in harness.gateway.closed, json.dumps(seqs)


def test_the_stream_waits_for_a_live_claim_instead_of_closing(harness: Harness) -> None:
    connection = harness.connect()
    harness.live_pull(connection)
    key = SubscriptionKey(harness.store_id, connection.connection_id, "1")
    until = int(time.time() * 1000) + 60_000
    assert harness.subscriptions.claim(key, 0, 1, until)  # a push's sender, at work
    harness.push(1, 1)

    def the_sender_finishes() -> None:
        time.sleep(0.15)
        assert harness.subscriptions.release(key, 1)

    finisher = threading.Thread(target=the_sender_finishes)
    finisher.start()
    report = harness.live.fan_out(harness.store_id, after=0)
    finisher.join()
    assert report.waits >= 1
    assert report.closed == set()
    assert harness.gateway.closed == []
    assert report.messages_sent == 0  # the sender brought it to the head
    assert subscription_of(harness, connection.connection_id).sent_seq == 1


def test_a_claim_that_outlasts_the_stream_s_invocation_is_retried_later(harness: Harness) -> None:
    connection = harness.connect()
    harness.live_pull(connection)
    key = SubscriptionKey(harness.store_id, connection.connection_id, "1")
    assert harness.subscriptions.claim(key, 0, 1, int(time.time() * 1000) + 60_000)
    harness.push(1, 1)
    started = time.monotonic()
    deadline_ms = int(time.time() * 1000) + harness.settings.deadline_margin_ms + 300
    with pytest.raises(SenderBusyError):
        harness.live.fan_out(harness.store_id, after=0, deadline_ms=deadline_ms)
    assert time.monotonic() - started < 5  # it stopped at its margin, not at the claim's end
    assert harness.gateway.closed == []
    assert harness.gateway.seqs(connection.connection_id, "1") == []


def test_the_push_path_gives_up_on_a_claim_quickly(make_harness: MakeHarness) -> None:
    """A push waits for another sender's claim a few short rounds at most, then leaves it."""
    harness = make_harness(max_fan_out_rounds=3)
    held, free = harness.connect(), harness.connect()
    harness.live_pull(held)
    harness.live_pull(free)
    key = SubscriptionKey(harness.store_id, held.connection_id, "1")
    assert harness.subscriptions.claim(key, 0, 0, int(time.time() * 1000) + 60_000)  # stuck below the batch
    report = harness.publish(harness.push(1, 1))
    assert report is not None
    assert report.rounds == 3
    assert_exactly_once_in_order(harness.gateway.seqs(free.connection_id, "1"), 0, 1)
    assert harness.gateway.seqs(held.connection_id, "1") == []
    assert harness.gateway.closed == []


def _push_path_crash_scenario(harness: Harness) -> tuple[Any, list[tuple[str, str, int]]]:
    """Three live pulls on two connections: one behind the batch's parent (3), two at it (4);
    then the batch 5..6, returned with the pulls."""
    first, second = harness.connect(), harness.connect()
    harness.push(1, 3)
    harness.live_pull(first, "1", cursor=3)
    harness.push(4, 1)  # fanned out by nobody yet
    harness.live_pull(second, "2", cursor=0)
    harness.live_pull(first, "3", cursor=2)
    return harness.push(5, 2), [
        (first.connection_id, "1", 3),
        (second.connection_id, "2", 0),
        (first.connection_id, "3", 2),
    ]


def test_exactly_once_under_a_crash_at_every_step_of_the_push_path(make_harness: MakeHarness) -> None:
    """The push's sender dies at each of its side effects in turn (its claims' time then runs
    out); the stream's fan-out, delivered twice, then finishes. Every pull has each event once in
    order; the ones whose connection stayed open have all of them."""
    probe = make_harness(send_concurrency=1)
    pushed, _ = _push_path_crash_scenario(probe)
    total = crashing(probe, -1, lambda: probe.publish(pushed, deadline_ms=dead_by_now(probe)))
    assert total >= 12  # claim, post, release for each of 3 pulls, before and after each
    for crash_at in range(1, total + 1):
        harness = make_harness(send_concurrency=1)
        pushed, pulls = _push_path_crash_scenario(harness)
        crashing(
            harness, crash_at, functools.partial(harness.publish, pushed, deadline_ms=dead_by_now(harness))
        )
        harness.live.fan_out(harness.store_id, after=3)  # the stream's records of 4 and 5..6
        harness.live.fan_out(harness.store_id, after=3)  # ... redelivered once more
        assert_each_pull_whole_or_closed(harness, pulls, 6)


def test_both_senders_racing_deliver_each_event_once_in_order(harness: Harness) -> None:
    """Each push's own fan-out and the stream's (of it and of the ones before) run at once, and
    the next push does not wait for them: every pull gets every event once, in order, and no
    connection is closed (a claim found is waited for)."""
    connections = [harness.connect() for _ in range(4)]
    for connection in connections:
        harness.live_pull(connection)

    def slow_post(connection_id: str, data: str) -> None:
        time.sleep(0.001)  # widen the windows between claim, send and release

    harness.gateway.after_post = slow_post
    senders: list[threading.Thread] = []
    errors: list[BaseException] = []

    def run(task: Callable[[], object]) -> None:
        try:
            task()
        except BaseException as error:
            errors.append(error)

    pushes = 12
    for seq in range(1, pushes + 1):
        pushed = harness.push(seq, 1)
        barrier = threading.Barrier(2)

        def publish(pushed: Any = pushed, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            harness.publish(pushed)

        def stream(parent: int = seq - 1, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            harness.live.fan_out(harness.store_id, after=parent)

        for task in (publish, stream):
            senders.append(threading.Thread(target=run, args=(task,)))
            senders[-1].start()
    for sender in senders:
        sender.join()
    assert errors == []
    harness.live.fan_out(harness.store_id)  # the stream's last word
    assert harness.gateway.closed == []
    for connection in connections:
        assert_exactly_once_in_order(harness.gateway.seqs(connection.connection_id, "1"), 0, pushes)


def test_a_push_over_websocket_fans_out_before_its_exit(harness: Harness) -> None:
    """The WebSocket push: the pusher's own live pull gets the echo and another connection the
    event, before the push's Exit and with no stream fan-out."""
    pusher, other = harness.connect(), harness.connect()
    harness.live_pull(pusher)
    harness.live_pull(other)
    frame = ws_request(
        "7", WS_PUSH, harness.store_id, None, {"batch": [event(1)], "backendId": {"_tag": "None"}}
    )
    outcome = handle_message(
        harness.live, pusher.connection_id, frame, deadline_ms=int(time.time() * 1000) + 60_000
    )
    assert outcome.error is None
    assert outcome.push is not None
    # After the live pull's first (empty) page: the echo, then the Exit.
    messages = harness.gateway.decoded(pusher.connection_id)[1:]
    assert [(message["_tag"], message["requestId"]) for message in messages] == [
        ("Chunk", "1"),
        ("Exit", "7"),
    ]
    assert harness.gateway.seqs(pusher.connection_id, "1") == [1]
    assert harness.gateway.seqs(other.connection_id, "1") == [1]


def test_one_send_at_a_time_serves_the_others_before_the_pusher_s_echo(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``send_concurrency=1`` (the in-process dev server's): the sends go one after another in
    the pushing invocation's own thread, everyone else's chunk before the pusher's echo."""
    harness = make_harness(send_concurrency=1)
    connections = [harness.connect() for _ in range(4)]
    for connection in connections:
        harness.live_pull(connection)
    pusher = connections[1]
    order: list[tuple[str, str]] = []
    post = harness.gateway.post

    def recorded(connection_id: str, data: str) -> None:
        order.append((connection_id, threading.current_thread().name))
        post(connection_id, data)

    monkeypatch.setattr(harness.gateway, "post", recorded)
    frame = ws_request(
        "9", WS_PUSH, harness.store_id, None, {"batch": [event(1), event(2)], "backendId": {"_tag": "None"}}
    )
    outcome = handle_message(
        harness.live, pusher.connection_id, frame, deadline_ms=int(time.time() * 1000) + 60_000
    )
    assert outcome.error is None
    assert outcome.published is not None
    assert outcome.published.delivered == 4
    chunks = order[:-1]  # the last post is the push's Exit
    assert [connection_id for connection_id, _ in chunks][-1] == pusher.connection_id
    assert {connection_id for connection_id, _ in chunks[:-1]} == {
        connection.connection_id for connection in connections if connection is not pusher
    }
    assert {thread for _, thread in order} == {threading.current_thread().name}
    assert order[-1][0] == pusher.connection_id
    for connection in connections:
        assert_exactly_once_in_order(harness.gateway.seqs(connection.connection_id, "1"), 0, 2)


def test_the_stream_reads_only_when_a_pull_is_not_past_its_records(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``last_parent``: a pull past the records' highest parent has their commits; one that is
    not (its push's fan-out failed) gets them read and sent."""
    connection = harness.connect()
    harness.live_pull(connection)
    harness.push(1, 2)  # nobody fanned it out
    reads = count_event_reads(harness, monkeypatch)
    report = harness.live.fan_out(harness.store_id, after=0, last_parent=0)
    assert reads != []
    assert report.delivered == 1
    assert_exactly_once_in_order(harness.gateway.seqs(connection.connection_id, "1"), 0, 2)


@pytest.mark.parametrize("send_concurrency", [8, 1])
@pytest.mark.parametrize("step", ["claim", "release"])
def test_a_storage_error_around_a_send_closes_that_connection(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch, step: str, send_concurrency: int
) -> None:
    """A claim whose answer was lost (it was written) or a release that failed would leave a
    claim nobody releases, holding that pull until its time is up: the sender closes the
    connection instead (the client re-pulls from its cursor), and the others are served; with
    the sends at once and one after another."""
    harness = make_harness(send_concurrency=send_concurrency)
    failing, other = harness.connect(), harness.connect()
    harness.live_pull(failing)
    harness.live_pull(other)
    real = getattr(harness.subscriptions, step)

    def lost_answer(key: SubscriptionKey, *args: Any) -> bool:
        result: bool = real(key, *args)
        if key.connection_id == failing.connection_id:
            raise StorageUnavailableError("the answer was lost")
        return result

    monkeypatch.setattr(harness.subscriptions, step, lost_answer)
    report = harness.publish(harness.push(1, 1))
    monkeypatch.setattr(harness.subscriptions, step, real)
    assert report is not None
    assert report.closed == {failing.connection_id}
    assert harness.gateway.closed == [failing.connection_id]
    assert harness.subscriptions.connection(failing.connection_id) is None
    assert_exactly_once_in_order(harness.gateway.seqs(other.connection_id, "1"), 0, 1)
    started = time.monotonic()
    harness.live.fan_out(harness.store_id, after=0, last_parent=0)  # nothing left to wait for
    assert time.monotonic() - started < 5
