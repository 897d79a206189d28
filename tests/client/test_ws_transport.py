"""The WebSocket transport against an in-test protocol-faithful server (tests/client/wsfake.py).

Live pull: pages then live chunks, own-push echo, exactly once and in order across server closes,
a faulty server's duplicate or gap turned into a re-pull, Interrupt on stop, keepalive pings,
and HTTP polling when the upgrade is refused or nothing listens.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from stratasync.client import (
    BackendIdMismatchError,
    LiveState,
    RetryPolicy,
    Store,
    SyncHttpTransport,
    SyncWsTransport,
    UnknownError,
)
from stratasync.client.todos import schema, todo_created, todos
from stratasync.client.transport import LiveFailure, LiveItem, LivePages, PullPage
from stratasync.client.wstransport import (
    StreamCheck,
    as_http_url,
    as_ws_url,
    live_pull_url,
    make_transport,
)
from tests.client.fakes import ScriptedTransport, engine, wire_event
from tests.client.wsfake import FakeBackend, FakeHttp, FakeWsServer, wait_until

FAST = RetryPolicy(initial_seconds=0.01, max_seconds=0.05)
FAST_RECONNECT = RetryPolicy(initial_seconds=0.02, max_seconds=0.1)
STORE = "s"


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def server(backend: FakeBackend) -> Iterator[FakeWsServer]:
    with FakeWsServer(backend) as server:
        yield server


def ws_transport(server: FakeWsServer, **options: Any) -> SyncWsTransport:
    options.setdefault("reconnect", FAST_RECONNECT)
    return SyncWsTransport(server.url, STORE, http=FakeHttp(server.backend, STORE), **options)


def live_store(server: FakeWsServer, *, poll_interval: float = 60.0, **options: Any) -> Store:
    """A store syncing in the background over the fake server (polling practically never)."""
    store = Store(
        schema, STORE, transport=ws_transport(server, **options), retry=FAST, poll_interval=poll_interval
    )
    store.start_sync()
    return store


def created(seq: int, todo_id: str | None = None) -> dict[str, Any]:
    name = todo_id or f"peer-{seq}"
    return wire_event(seq, seq - 1, "v1.TodoCreated", {"id": name, "text": name})


def peer_push(backend: FakeBackend, count: int = 1) -> None:
    """Another client pushes ``count`` events, one push each."""
    for _ in range(count):
        head = backend.head
        assert backend.push([created(head + 1)], {"_tag": "Some", "value": backend.backend_id}) is None


def log(store: Store) -> list[dict[str, Any]]:
    return [event.encoded() for event in store.events()]


def in_sync(store: Store, backend: FakeBackend) -> bool:
    return log(store) == backend.events and not store.pending_events()


# -- URLs, selection, the stream check ---------------------------------------------------------------


def test_the_live_pull_url_maps_http_to_ws_and_double_encodes_the_payload() -> None:
    url = live_pull_url("http://h:1/sync", "s-1", {"authToken": "a b"})
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("ws", "h:1", "/sync")
    assert parts.query.startswith("storeId=s-1&payload=%257B%2522authToken%2522")
    assert parts.query.endswith("&transport=ws")
    query = parse_qs(parts.query)
    assert query["transport"] == ["ws"]
    assert unquote(query["payload"][0]) == '{"authToken":"a b"}'  # once by parse_qs, once more
    assert live_pull_url("wss://h/", "s") == "wss://h/?storeId=s&transport=ws"
    assert as_ws_url("https://h/") == "wss://h/"
    assert as_http_url("wss://h/x") == "https://h/x"
    with pytest.raises(ValueError, match="no query"):
        live_pull_url("ws://h/?a=1", "s")
    with pytest.raises(ValueError, match="expected one of"):
        live_pull_url("ftp://h/", "s")


def test_the_transport_is_chosen_by_url_or_option() -> None:
    ws = make_transport("ws://127.0.0.1:9/", STORE)
    assert isinstance(ws, SyncWsTransport)
    assert ws.url.startswith("ws://127.0.0.1:9/?storeId=s")
    assert isinstance(ws.http, SyncHttpTransport)
    assert ws.http._url.startswith("http://127.0.0.1:9/?")
    assert isinstance(make_transport("http://127.0.0.1:9/", STORE), SyncHttpTransport)
    assert isinstance(make_transport("http://127.0.0.1:9/", STORE, kind="ws"), SyncWsTransport)
    assert isinstance(make_transport("ws://127.0.0.1:9/", STORE, kind="http"), SyncHttpTransport)
    aws = make_transport("https://api.example/", STORE, live_url="wss://ws.example/prod")
    assert isinstance(aws, SyncWsTransport)
    assert aws.url.startswith("wss://ws.example/prod?")
    assert isinstance(aws.http, SyncHttpTransport)
    assert aws.http._url.startswith("https://api.example/?")
    with Store(schema, STORE, backend_url="ws://127.0.0.1:9/") as store:
        assert isinstance(store._transport, SyncWsTransport)
    with Store(schema, STORE, backend_url="http://127.0.0.1:9/", transport="ws") as store:
        assert isinstance(store._transport, SyncWsTransport)
    with pytest.raises(ValueError, match="need backend_url"):
        Store(schema, STORE, transport="ws")


def page(events: list[dict[str, Any]], backend_id: str = "b") -> PullPage:
    return PullPage(events, [None] * len(events), {"_tag": "NoMore"}, backend_id)


def test_the_stream_check_refuses_duplicates_gaps_and_another_backend() -> None:
    check = StreamCheck(("b", 2))
    assert check.check([page([created(3), created(4)])]) is None
    assert check.last == 4
    assert "duplicate" in str(check.check([page([created(4)])]))
    assert "gap" in str(check.check([page([created(6)])]))
    assert "backend id" in str(check.check([page([created(5)], "other")]))
    assert check.last == 4  # a refused page moves nothing
    assert check.check([page([]), page([created(5)])]) is None
    assert check.last == 5
    fresh = StreamCheck(None)
    assert fresh.check([page([created(1)], "new")]) is None
    assert fresh.backend_id == "new"
    jump = wire_event(100, 5, "v1.TodoCreated", {"id": "j", "text": "j"})
    assert check.check([page([jump])]) is None  # seqNums may jump: the parent is what counts


class ScriptedFeed:
    """A LiveFeed that hands out the items a test gives it (no socket)."""

    def __init__(self) -> None:
        self.items: list[LiveItem] = []
        self.state = LiveState.LIVE
        self.polling = False
        self.restarts: list[int | None] = []
        self.resumed = 0

    def start(self) -> None:
        pass

    def take(self) -> list[LiveItem]:
        items, self.items = self.items, []
        return items

    def restart(self, generation: int | None, reason: str) -> None:
        self.restarts.append(generation)

    def resume(self) -> None:
        self.resumed += 1

    def stop(self, timeout: float = 5.0) -> None:
        pass


def test_live_pages_merge_in_order_and_a_page_off_the_upstream_head_restarts_the_pull() -> None:
    with Store(schema, STORE, transport=ScriptedTransport(), retry=FAST) as store:
        sync, feed = engine(store), ScriptedFeed()
        feed.items = [
            LivePages(1, [page([], "backend-1")]),
            LivePages(1, [page([created(1), created(2)], "backend-1")]),
        ]
        with sync.lock:
            assert sync.apply_live(feed) == 2
        assert (store.backend_id, store.upstream_head) == ("backend-1", 2)  # from the empty first page
        feed.items = [
            LivePages(1, [page([created(1), created(2), created(3)], "backend-1")]),  # overlaps: fine
            LivePages(1, [page([created(5)], "backend-1")]),  # skips #4: not merged
            LivePages(1, [page([created(6)], "backend-1")]),  # the same connection: dropped too
            LivePages(2, [page([created(4), created(5)], "backend-1")]),  # the re-pull
        ]
        with sync.lock:
            assert sync.apply_live(feed) == 3
        assert feed.restarts == [1]
        assert [event.seq_num for event in store.events()] == [1, 2, 3, 4, 5]
        feed.items = [LivePages(2, [page([created(6)], "another-backend")])]
        with sync.lock:
            assert sync.apply_live(feed) == 0
        assert feed.restarts == [1, 2]
        assert store.upstream_head == 5


def test_a_failed_live_pull_raises_its_error_or_resets_and_resumes() -> None:
    with Store(schema, STORE, transport=ScriptedTransport(), retry=FAST) as store:
        sync, feed = engine(store), ScriptedFeed()
        feed.items = [LivePages(1, [page([created(1)], "backend-1")]), LiveFailure(1, UnknownError("boom"))]
        with sync.lock, pytest.raises(UnknownError, match="boom"):
            sync.apply_live(feed)
        assert (store.upstream_head, feed.resumed) == (1, 1)  # the page before it was merged
        store.commit(todo_created(id="kept", text="kept"))
        feed.items = [LiveFailure(2, BackendIdMismatchError("backend-2", "backend-1"))]
        with sync.lock:
            sync.apply_live(feed)
        assert (store.backend_id, store.upstream_head, feed.resumed) == (None, 0, 2)
        assert [event.args["id"] for event in store.pending_events()] == ["kept"]


# -- live pull ---------------------------------------------------------------------------------------


def test_stored_pages_then_live_chunks_each_acked(server: FakeWsServer, backend: FakeBackend) -> None:
    peer_push(backend, 250)
    with live_store(server) as store:
        wait_until(lambda: store.live and store.upstream_head == 250, what="the live pull to catch up")
        wait_until(lambda: len(server.received("Ack")) == 3, what="an Ack per page (100, 100, 50)")
        peer_push(backend, 3)
        wait_until(lambda: store.upstream_head == 253, what="three live events")
        assert in_sync(store, backend)
        wait_until(lambda: len(server.received("Ack")) == 6, what="an Ack per chunk")
        ((_, pull),) = server.received("Request", "SyncWsRpc.Pull")
        assert pull["payload"]["live"] is True
        assert pull["payload"]["cursor"] == {"_tag": "None"}
        assert {ack["requestId"] for _, ack in server.received("Ack")} == {pull["id"]}
        assert backend.http_pulls == 0  # nothing polled


def test_another_clients_commit_shows_up_without_polling(server: FakeWsServer, backend: FakeBackend) -> None:
    """Commit-to-callback latency Python → Python with polling at 60 s: tens of milliseconds."""
    with live_store(server) as writer, live_store(server) as reader:
        wait_until(lambda: writer.live and reader.live, what="both live")
        seen: list[float] = []
        arrived = threading.Event()

        def changed(count: int) -> None:
            seen.append(time.monotonic())
            arrived.set()

        reader.subscribe(todos.count(), changed)
        latencies = []
        for number in range(20):
            arrived.clear()
            started = time.monotonic()
            writer.commit(todo_created(id=f"w{number}", text="hello"))
            assert arrived.wait(5.0), f"commit {number} never reached the other store"
            latencies.append(seen[-1] - started)
        print(
            f"commit-to-callback over WS: median {statistics.median(latencies) * 1000:.1f} ms, "
            f"max {max(latencies) * 1000:.1f} ms"
        )
        assert statistics.median(latencies) < 0.5
        wait_until(lambda: in_sync(reader, backend) and in_sync(writer, backend), what="both in sync")
        assert backend.http_pulls == 0


def test_own_pushes_come_back_once(server: FakeWsServer, backend: FakeBackend) -> None:
    with live_store(server) as store:
        wait_until(lambda: store.live, what="live")
        for number in range(5):
            store.commit(todo_created(id=f"mine-{number}", text="x"))
        wait_until(lambda: in_sync(store, backend), what="in sync")
        pushes = backend.http_pushes
        wait_until(lambda: len(server.received("Ack")) == 1 + pushes, what="one echo per push")
        assert store.upstream_head == 5
        assert store.rebase_generation == 0
        assert len(store.query(todos)) == 5


def test_push_over_ws_for_small_batches_http_for_large(server: FakeWsServer, backend: FakeBackend) -> None:
    with live_store(server, push="ws") as store:
        transport = store._transport
        assert isinstance(transport, SyncWsTransport)
        wait_until(lambda: store.live, what="live")
        store.commit(todo_created(id="small", text="x"))
        wait_until(lambda: in_sync(store, backend), what="the small push")
        assert (transport.pushes_over_ws, backend.http_pushes) == (1, 0)
        assert len(server.received("Request", "SyncWsRpc.Push")) == 1
        store.commit(todo_created(id="large", text="x" * 40_000))  # over API Gateway's 32 KB frame
        wait_until(lambda: in_sync(store, backend), what="the large push")
        assert (transport.pushes_over_ws, backend.http_pushes) == (1, 1)


def test_contending_live_writers_converge(server: FakeWsServer, backend: FakeBackend) -> None:
    with live_store(server, push="ws") as a, live_store(server) as b:
        wait_until(lambda: a.live and b.live, what="both live")
        for number in range(15):
            a.commit(todo_created(id=f"a{number}", text="a"))
            b.commit(todo_created(id=f"b{number}", text="b"))
        wait_until(lambda: in_sync(a, backend) and in_sync(b, backend), 20, "both in sync")
        assert len(backend.events) == 30
        assert [event["seqNum"] for event in backend.events] == list(range(1, 31))


# -- disconnects and faults --------------------------------------------------------------------------


def test_a_server_close_reconnects_and_pulls_again_from_the_cursor(
    server: FakeWsServer, backend: FakeBackend
) -> None:
    peer_push(backend, 4)
    with live_store(server) as store:
        wait_until(lambda: store.live, what="live")
        server.close_all(1001)
        peer_push(backend, 3)  # while it is away
        wait_until(lambda: len(server.received("Request", "SyncWsRpc.Pull")) == 2, what="a second pull")
        wait_until(lambda: in_sync(store, backend) and store.live, what="in sync again")
        (_, first), (_, second) = server.received("Request", "SyncWsRpc.Pull")
        cursor = second["payload"]["cursor"]
        assert cursor["_tag"] == "Some"
        assert cursor["value"]["backendId"] == "backend-1"
        assert 4 <= cursor["value"]["eventSequenceNumber"] <= 7  # the store's real head then
        peer_push(backend, 2)
        wait_until(lambda: in_sync(store, backend), what="live events after the reconnect")
        ids = [message["id"] for _, message in server.received("Request")]
        assert len(ids) == len(set(ids))
        assert first["id"] != second["id"]


@pytest.mark.parametrize("fault", ["duplicate", "gap"])
def test_a_duplicate_or_gap_from_a_faulty_server_is_pulled_again(
    server: FakeWsServer, backend: FakeBackend, fault: str
) -> None:
    peer_push(backend, 2)
    errors: list[Exception] = []
    with live_store(server) as store:
        store.on_sync_error = errors.append
        wait_until(lambda: store.live, what="live")
        server.fault = fault
        peer_push(backend)  # sent twice, or not at all
        peer_push(backend)  # then the stream shows the duplicate or the gap
        wait_until(lambda: len(server.received("Request", "SyncWsRpc.Pull")) >= 2, what="a re-pull")
        wait_until(lambda: in_sync(store, backend) and store.live, what="in sync again")
        assert store.upstream_head == 4
        assert errors == []
        assert [event.seq_num for event in store.events()] == [1, 2, 3, 4]
        assert store._sync is not None
        assert store._sync.running
        assert isinstance(store._transport, SyncWsTransport)
        live = store._transport.live
        assert live is not None
        assert live.last_problem is not None
        assert fault in live.last_problem


def test_stop_interrupts_the_live_pull(server: FakeWsServer) -> None:
    with live_store(server) as store:
        wait_until(lambda: store.live, what="live")
        assert server.live_pulls() == 1
        store.stop_sync()
        ((_, pull),) = server.received("Request", "SyncWsRpc.Pull")
        wait_until(lambda: server.received("Interrupt"), what="an Interrupt")
        ((_, interrupt),) = server.received("Interrupt")
        assert interrupt["requestId"] == pull["id"]
        assert server.live_pulls() == 0
        assert not store.live


def test_pings_keep_the_connection_and_silence_drops_it(server: FakeWsServer, backend: FakeBackend) -> None:
    with live_store(server, ping_interval=0.3) as store:
        wait_until(lambda: store.live, what="live")
        wait_until(lambda: len(server.received("Ping")) >= 3, what="pings")
        assert len(server.received("Request", "SyncWsRpc.Pull")) == 1  # pongs keep it
        server.answer_pings = False
        wait_until(lambda: len(server.received("Request", "SyncWsRpc.Pull")) >= 2, what="a new connection")
        server.answer_pings = True
        peer_push(backend)
        wait_until(lambda: in_sync(store, backend) and store.live, what="live again")


def test_a_refused_upgrade_polls_over_http_until_the_socket_opens(
    server: FakeWsServer, backend: FakeBackend
) -> None:
    server.refuse_status = 403
    with live_store(server, poll_interval=0.05) as store:
        peer_push(backend, 2)
        wait_until(lambda: in_sync(store, backend), what="polled events")
        assert backend.http_pulls > 0
        assert not store.live
        assert server.refused >= 1
        server.refuse_status = None
        wait_until(lambda: store.live, what="the socket to open")
        pulls = backend.http_pulls
        peer_push(backend)
        wait_until(lambda: in_sync(store, backend), what="a live event")
        time.sleep(0.2)
        assert backend.http_pulls == pulls  # live: polling stopped


def test_no_websocket_server_at_all_polls_over_http(backend: FakeBackend) -> None:
    transport = SyncWsTransport(
        "ws://127.0.0.1:9/", STORE, http=FakeHttp(backend, STORE), reconnect=FAST_RECONNECT
    )
    with Store(schema, STORE, transport=transport, retry=FAST, poll_interval=0.05) as store:
        store.start_sync()
        peer_push(backend, 2)
        store.commit(todo_created(id="mine", text="x"))
        wait_until(lambda: in_sync(store, backend), what="polled and pushed")
        assert store.status.syncing
        assert not store.status.live
        live = store._sync.live if store._sync is not None else None
        assert live is not None
        assert live.polling
        assert live.state in (LiveState.DOWN, LiveState.CONNECTING)


def test_a_backend_reset_seen_by_the_live_pull_resets_the_store(
    server: FakeWsServer, backend: FakeBackend
) -> None:
    peer_push(backend, 3)
    with live_store(server) as store:
        wait_until(lambda: store.live and store.upstream_head == 3, what="live")
        store.stop_sync()
        store.commit(todo_created(id="kept", text="pending across the reset"))
        backend.reset("backend-2")
        peer_push(backend, 2)
        store.start_sync()
        wait_until(lambda: store.backend_id == "backend-2" and in_sync(store, backend), what="reset")
        assert [event.args["id"] for event in store.events()] == ["peer-1", "peer-2", "kept"]
        cursors = [
            message["payload"]["cursor"] for _, message in server.received("Request", "SyncWsRpc.Pull")
        ]
        assert cursors[1] == {"_tag": "Some", "value": {"backendId": "backend-1", "eventSequenceNumber": 3}}


def test_ping_over_the_socket(server: FakeWsServer) -> None:
    transport = ws_transport(server)
    transport.ping()  # no live pull: a connection of its own
    assert len(server.received("Ping")) == 1
    server.answer_pings = False
    transport.timeout = 0.2
    with pytest.raises(Exception, match="Ping"):
        transport.ping()
    transport.close()
