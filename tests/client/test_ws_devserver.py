"""End to end: Python stores syncing live over WebSocket through ``stratasync dev`` (its emulated
API Gateway WebSocket API and the real ws/fanout functions), beside the real LiveStore client."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from stratasync.client import RetryPolicy, Store, SyncWsTransport, TransportError
from stratasync.client.todos import schema, todo_created, todos
from stratasync.devserver import DevServer, DevServerConfig
from tests.client.wsfake import wait_until
from tests.devserver_process import running_dev_server
from tests.emulators import missing

INTEROP = Path(__file__).parents[1] / "interop"
WS_DRIVER = INTEROP / "livestore_ws_driver.mjs"
RETRY = RetryPolicy(initial_seconds=0.01, max_seconds=0.5)

pytestmark = pytest.mark.slow


@pytest.fixture
def url(request: pytest.FixtureRequest) -> str:
    """The dev server's URL (or ``STRATASYNC_WS_TEST_URL``, a running one), once it accepts
    WebSocket upgrades (the server side of issue 10)."""
    url = os.environ.get("STRATASYNC_WS_TEST_URL") or request.getfixturevalue("dev_server").url
    try:
        SyncWsTransport(url, "probe").ping()
    except TransportError as error:
        pytest.skip(f"stratasync dev accepts no WebSocket here: {error}")
    return str(url)


@pytest.fixture(params=["worker-processes", "in-process", "memory"])
def any_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """:func:`url`, or a ``stratasync dev --in-process`` (functions in threads of its process) or
    ``--memory`` (its tables in memory too)."""
    if request.param == "worker-processes":
        yield request.getfixturevalue("url")
        return
    with running_dev_server(f"--{request.param}") as (in_process_url, _):
        yield in_process_url


def store_id() -> str:
    return f"ws-e2e-{uuid.uuid4().hex[:8]}"


def log(store: Store) -> list[dict[str, object]]:
    return [event.encoded() for event in store.events()]


def test_two_live_python_stores_see_each_other_without_polling(any_url: str, tmp_path: Path) -> None:
    sid = store_id()
    options: dict[str, Any] = {"backend_url": any_url, "transport": "ws", "retry": RETRY}
    with (
        Store(schema, sid, str(tmp_path / "a.db"), **options) as a,
        Store(schema, sid, str(tmp_path / "b.db"), **options, poll_interval=600) as b,
    ):
        a.start_sync()
        b.start_sync()
        wait_until(lambda: a.live and b.live, 30, "both stores live")
        arrived = threading.Event()
        b.subscribe(todos.count(), lambda count: arrived.set())
        latencies = []
        for number in range(20):
            arrived.clear()
            started = time.monotonic()
            a.commit(todo_created(id=f"a-{number}", text="from a"))
            assert arrived.wait(10), f"commit {number} never reached b"
            latencies.append(time.monotonic() - started)
        median = statistics.median(latencies)
        print(f"commit-to-callback through stratasync dev: median {median * 1000:.0f} ms")
        assert median < 1.0  # polling is off (600 s)
        for number in range(10):  # both write at once: rebases, ServerAhead, echoes
            a.commit(todo_created(id=f"a2-{number}", text="a"))
            b.commit(todo_created(id=f"b-{number}", text="b"))

        def converged() -> bool:
            settled = not a.pending_events() and not b.pending_events()
            return settled and log(a) == log(b) and len(log(a)) == 40

        wait_until(converged, 60, "both stores converged")
        assert [event["seqNum"] for event in log(a)] == list(range(1, 41))


def test_a_push_too_large_for_a_websocket_frame_goes_over_http(url: str) -> None:
    sid = store_id()
    transport = SyncWsTransport(url, sid, push="ws")
    with (
        Store(schema, sid, transport=transport, retry=RETRY) as writer,
        Store(schema, sid, backend_url=url, transport="ws", retry=RETRY, poll_interval=600) as reader,
    ):
        writer.start_sync()
        reader.start_sync()
        wait_until(lambda: writer.live and reader.live, 30, "both stores live")
        writer.commit(todo_created(id="small", text="x"))
        wait_until(lambda: reader.upstream_head == 1, 30, "the small event, pushed over WebSocket")
        writer.commit(todo_created(id="large", text="x" * 40_000))  # > API Gateway's 32 KB frame
        wait_until(lambda: reader.upstream_head == 2, 30, "the large event, pushed over HTTP")
        assert (transport.pushes_over_ws, transport.pushes_over_http) == (1, 1)
        assert reader.query(todos.where(id="large").first()).text == "x" * 40_000
        assert writer.live  # the socket was never closed with 1009


def test_a_push_reaches_live_pulls_without_the_stream() -> None:
    """Each push (over HTTP: the sync function; over WebSocket: the ws function) sends its batch
    to the live pulls itself: with the stream's fan-out held back for minutes, the reader still
    sees every commit, exactly once and in order."""
    config = DevServerConfig(port=0, workers=2, stream_read_delay=600)
    with DevServer(config, out=open(os.devnull, "w")) as server:
        url = server.url
        sid = store_id()
        transport = SyncWsTransport(url, sid, push="ws")
        with (
            Store(
                schema, sid, backend_url=url, transport="ws", retry=RETRY, poll_interval=600
            ) as http_writer,
            Store(schema, sid, transport=transport, retry=RETRY, poll_interval=600) as ws_writer,
            Store(schema, sid, backend_url=url, transport="ws", retry=RETRY, poll_interval=600) as reader,
        ):
            for store in (http_writer, ws_writer, reader):
                store.start_sync()
            wait_until(lambda: http_writer.live and ws_writer.live and reader.live, 30, "all live")
            for number in range(1, 7):
                writer = http_writer if number % 2 else ws_writer
                writer.commit(todo_created(id=f"t{number}", text="x"))
                head = number
                wait_until(lambda: reader.upstream_head == head, 10, f"commit {head}")  # noqa: B023
            # The reader has each event before its pusher has the push's Exit (the push fans out
            # first), and a push refused by ServerAheadError is pushed again: wait for 3 answers.
            wait_until(lambda: transport.pushes_over_ws >= 3, 10, "the WebSocket pushes' answers")
            assert [event["seqNum"] for event in log(reader)] == list(range(1, 7))
            assert reader.query(todos.count()) == 6


def run_driver(url: str, scenario: str, sid: str, **env: str) -> dict[str, object]:
    node = shutil.which("node")
    if node is None or not WS_DRIVER.exists() or not (INTEROP / "node_modules" / "ws").exists():
        missing("node, the LiveStore client and tests/interop/livestore_ws_driver.mjs are needed")
    assert node is not None
    completed = subprocess.run(
        [node, str(WS_DRIVER), url, scenario, sid],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, **env},
    )
    report: dict[str, object] = json.loads(completed.stdout)
    assert report.get("ok"), completed.stdout + completed.stderr[-3000:]
    return report


def test_connections_the_server_closes_are_opened_again_with_nothing_missed_or_doubled(
    dev_server: DevServer,
) -> None:
    """The server closes the store's connection every second (``DeleteConnection`` through
    ``@connections``, as API Gateway's 2 h lifetime or a server on AWS would); the store reconnects
    and re-pulls each time, and holds every event once, in order."""
    api = dev_server.websocket
    if api is None:
        pytest.skip("this dev server runs without WebSocket")
    management = boto3.client("apigatewaymanagementapi", endpoint_url=dev_server.ws_endpoint)
    sid = store_id()
    with (
        Store(schema, sid, backend_url=dev_server.url, retry=RETRY) as writer,
        Store(
            schema, sid, backend_url=dev_server.url, transport="ws", retry=RETRY, poll_interval=600
        ) as reader,
    ):
        reader.start_sync()
        wait_until(lambda: reader.live, 30, "live")
        started = last_kick = time.monotonic()
        number = kicks = 0
        # at least 6 s and 3 closes (a loaded machine reconnects more slowly), at most 90 s
        while (kicks < 3 or time.monotonic() - started < 6) and time.monotonic() - started < 90:
            writer.commit(todo_created(id=f"w-{number}", text="x"))
            writer.sync()
            number += 1
            if time.monotonic() - last_kick > 1.0:
                for connection_id in api.connection_ids():
                    with contextlib.suppress(management.exceptions.GoneException):
                        management.delete_connection(ConnectionId=connection_id)
                        kicks += 1
                last_kick = time.monotonic()
            time.sleep(0.05)
        wait_until(lambda: reader.upstream_head == number, 60, "every event")
        assert [event.seq_num for event in reader.events()] == list(range(1, number + 1))
        assert log(reader) == log(writer)
        assert isinstance(reader._transport, SyncWsTransport)
        live = reader._transport.live
        assert live is not None
        assert kicks >= 3
        assert live.connections >= 3


def test_without_websocket_on_the_server_a_ws_store_polls_over_http() -> None:
    config = DevServerConfig(port=0, workers=1, websocket=False)
    with DevServer(config, out=open(os.devnull, "w")) as server:
        try:
            SyncWsTransport(server.url, "probe").ping()
        except TransportError:
            pass
        else:
            pytest.fail("a dev server with websocket=False accepted a WebSocket")
        _polls_over_http(server.url)


def _polls_over_http(url: str) -> None:
    sid = store_id()
    with (
        Store(schema, sid, backend_url=url, retry=RETRY) as writer,
        Store(schema, sid, backend_url=url, transport="ws", retry=RETRY, poll_interval=0.1) as reader,
    ):
        reader.start_sync()
        writer.commit(todo_created(id="w", text="polled"))
        writer.sync()
        reader.commit(todo_created(id="r", text="pushed over HTTP"))
        wait_until(lambda: reader.upstream_head == 2 and not reader.pending_events(), 30, "polled and pushed")
        assert not reader.live
        assert reader.status.syncing
        assert isinstance(reader._transport, SyncWsTransport)
        live = reader._transport.live
        assert live is not None
        assert live.polling
        assert live.last_problem is not None
        assert "cannot open the WebSocket" in live.last_problem


@pytest.mark.interop
def test_a_python_live_store_beside_the_real_livestore_ws_client(url: str, tmp_path: Path) -> None:
    """The real ``makeWsSync`` pushes (over WebSocket and HTTP) while a Python store is live; then
    the Python store writes and a fresh real client's live pull sees every event once, in order."""
    sid = store_id()
    with Store(
        schema, sid, str(tmp_path / "py.db"), backend_url=url, transport="ws", retry=RETRY, poll_interval=600
    ) as store:
        store.start_sync()
        wait_until(lambda: store.live, 30, "the Python store live")
        run_driver(url, "ws-and-http-converge", sid)  # events 1-5 over HTTP, 6-10 over WebSocket
        wait_until(lambda: store.upstream_head == 10, 30, "the JS client's events, live")
        ids = [event.args["id"] for event in store.events()]
        assert ids == [f"from-http-{n}" for n in range(1, 6)] + [f"from-ws-{n}" for n in range(6, 11)]
        for number in range(5):
            store.commit(todo_created(id=f"py-{number}", text="from Python"))
        wait_until(lambda: not store.pending_events(), 30, "the Python events pushed")
        report = run_driver(url, "catchup", sid, DRIVER_CATCHUP_EVENTS="15")
        assert report["events"] == 15
        assert [event.seq_num for event in store.events()] == list(range(1, 16))
