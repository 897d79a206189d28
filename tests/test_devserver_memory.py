"""``stratasync dev --memory``: the memory eventlog's commit hook, the commit feed that stands in
for the stream, the options it refuses, and what an in-process server with memory tables gives
back at stop. Its end-to-end tiers are the ``memory`` variants of the dev server's own (the
8-writer race, the archive, two live Python stores, the real LiveStore scenarios)."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import pytest

from stratasync.devserver import DevServer, DevServerConfig
from stratasync.devserver.streams import CommitFeed
from stratasync.handlers import fanout, wiring
from stratasync.storage.base import AppendOutcome, EventBatch, HeadMismatchError
from stratasync.storage.memory import InMemoryStorage


def batch(parent: int, count: int = 1, tag: str = "a") -> EventBatch:
    events = [(parent + i + 1, f'{{"name":"e","args":{{"t":"{tag}"}}}}') for i in range(count)]
    return EventBatch(parent_seq_num=parent, events=events, created_at="2026-12-02T00:00:00.000Z")


def done(value: Any = None) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


def wait_for(condition: Any, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_on_commit_is_called_once_per_committed_batch_and_never_otherwise() -> None:
    seen: list[tuple[str, int]] = []
    storage = InMemoryStorage(on_commit=lambda store_id, parent: seen.append((store_id, parent)))
    assert storage.append("s", batch(0, 2)) is AppendOutcome.COMMITTED
    assert storage.append("s", batch(0, 2)) is AppendOutcome.ALREADY_COMMITTED  # a retry
    with pytest.raises(HeadMismatchError):
        storage.append("s", batch(0, 1, tag="other"))  # another batch on a taken parent
    with pytest.raises(HeadMismatchError):
        storage.append("s", batch(5))  # a parent ahead of the head
    assert storage.append("s", batch(2)) is AppendOutcome.COMMITTED
    assert storage.append("t", batch(0)) is AppendOutcome.COMMITTED
    assert seen == [("s", 0), ("s", 2), ("t", 0)]


def test_on_commit_runs_before_the_commit_can_be_read() -> None:
    """Under the storage's lock: a reader on another thread cannot see the commit before the hook
    has run (the feed can never be behind what a pull has served)."""
    storage = InMemoryStorage()
    heads_seen_in_hook: list[int] = []
    entered, release = threading.Event(), threading.Event()

    def hook(store_id: str, parent: int) -> None:
        entered.set()
        release.wait(5)
        heads_seen_in_hook.append(parent)

    storage.on_commit = hook
    writer = threading.Thread(target=storage.append, args=("s", batch(0)))
    writer.start()
    assert entered.wait(5)
    read: list[int] = []
    reader = threading.Thread(target=lambda: read.append(storage.log_head("s").seq_num))
    reader.start()
    reader.join(0.2)
    assert reader.is_alive()
    assert not read
    release.set()
    writer.join(5)
    reader.join(5)
    assert read == [1]
    assert heads_seen_in_hook == [0]


def test_the_feed_hands_every_commit_to_the_function_in_order_as_stream_records() -> None:
    events: list[dict[str, Any]] = []

    def invoke(event: dict[str, Any]) -> Future[Any]:
        events.append(event)
        return done()

    feed = CommitFeed(invoke, table_name="t", read_delay=0.01).start()
    try:
        storage = InMemoryStorage(on_commit=feed.record)
        parents = {"a": 0, "b": 0}
        for round_number in range(30):
            for store_id in ("a", "b"):
                storage.append(store_id, batch(parents[store_id], 1 + round_number % 3))
                parents[store_id] += 1 + round_number % 3
        wait_for(lambda: feed.records_delivered == 60, "60 records")
    finally:
        feed.stop()
    records = [record for event in events for record in event["Records"]]
    assert len(records) == 60
    assert feed.pending == 0
    sequence = [int(record["dynamodb"]["SequenceNumber"]) for record in records]
    assert sequence == sorted(sequence) == list(range(1, 61))
    for record in records:
        assert record["eventName"] == "INSERT"
        assert record["eventSourceARN"] == feed.stream_arn
        assert record["dynamodb"]["StreamViewType"] == "KEYS_ONLY"
        assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    # The fanout function reads them as it reads DynamoDB's (its own filter included).
    for store_id in ("a", "b"):
        mine = [r for r in records if r["dynamodb"]["Keys"]["pk"]["S"] == store_id]
        commits = fanout.stores_with_commits(mine)[store_id]
        assert (commits.first_parent, commits.last_parent) == (0, _parents(mine)[-1])
        assert _parents(mine) == sorted(_parents(mine))


def _parents(records: list[dict[str, Any]]) -> list[int]:
    return [int(record["dynamodb"]["Keys"]["sk"]["S"][2:]) for record in records]


def test_a_failed_invocation_is_retried_with_the_same_batch_and_later_commits_wait() -> None:
    calls: list[list[str]] = []
    failures = 2

    def invoke(event: dict[str, Any]) -> Future[Any]:
        nonlocal failures
        calls.append([record["eventID"] for record in event["Records"]])
        if failures:
            failures -= 1
            future: Future[Any] = Future()
            future.set_exception(RuntimeError("the function failed"))
            return future
        return done()

    feed = CommitFeed(invoke, table_name="t", read_delay=0.05, batch_size=2).start()
    try:
        for parent in range(3):
            feed.record("s", parent)
        wait_for(lambda: feed.records_delivered == 3, "3 records", timeout=15)
    finally:
        feed.stop()
    assert calls[0] == calls[1] == calls[2] == ["memory-1", "memory-2"]  # failed twice, then done
    assert calls[3:] == [["memory-3"]]
    assert feed.invocations == 2


def test_stop_ends_the_feed_while_its_function_keeps_failing() -> None:
    def invoke(event: dict[str, Any]) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_exception(RuntimeError("down"))
        return future

    feed = CommitFeed(invoke, table_name="t", read_delay=0.0).start()
    feed.record("s", 0)
    time.sleep(0.2)
    started = time.monotonic()
    feed.stop()
    assert time.monotonic() - started < 5
    assert feed.pending == 1
    assert feed.records_delivered == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dynamodb_endpoint": "http://127.0.0.1:8000"}, "--dynamodb-endpoint"),
        ({"s3_endpoint": "http://127.0.0.1:8333"}, "--s3-endpoint"),
    ],
)
def test_memory_refuses_endpoints_it_would_not_use_or_would_outlive(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        DevServerConfig(memory=True, **options)
    assert DevServerConfig(memory=True).in_process  # memory implies in-process


def test_the_cli_refuses_memory_with_a_dynamodb_endpoint_by_name() -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "stratasync"),
            "dev",
            "--memory",
            "--dynamodb-endpoint",
            "http://x",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "stratasync: --memory" in result.stderr
    assert "--dynamodb-endpoint" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_memory_server_serves_from_its_tables_and_gives_the_process_back() -> None:
    with DevServer(
        DevServerConfig(port=0, memory=True, table_name="memory-unit"), out=io.StringIO()
    ) as server:
        tables = server.memory_tables
        assert tables is not None
        events = [
            {"name": "e", "args": {}, "seqNum": 1, "parentSeqNum": 0, "clientId": "c", "sessionId": "s"}
        ]
        request = {
            "_tag": "Request",
            "id": "1",
            "tag": "SyncHttpRpc.Push",
            "headers": [],
            "payload": {"storeId": "m1", "batch": events, "backendId": {"_tag": "None"}},
        }
        answer = httpx.post(f"{server.url}?storeId=m1&transport=http", json=request, timeout=30).json()
        assert answer[-1]["exit"]["_tag"] == "Success", answer
        assert tables.eventlog.log_head("m1").seq_num == 1  # in memory, not in moto
        assert wiring.get_backend().hot is tables.eventlog
        feed = server._feed
        assert feed is not None
        wait_for(lambda: feed.records_delivered >= 1, "the commit fanned out")
    assert wiring._memory_tables is None
    assert wiring.get_backend.cache_info().currsize == 0
