"""A protocol-faithful sync-cf WebSocket backend for the client's tests, with faults on demand.

:class:`FakeBackend` is one store's log in memory (the push and pull rules of docs/protocol); its
HTTP side is :class:`FakeHttp`, an in-process transport; :class:`FakeWsServer` serves the
WebSocket transport of /work/shared/ws-transport.md §1 on 127.0.0.1 with websockets' threaded
server: ``Ping`` → ``Pong``; a live ``SyncWsRpc.Pull`` gets the stored pages after its cursor
(≤ ``page_size`` events, ``MoreKnown`` then ``NoMore``), then a ``NoMore`` chunk for every push
the backend accepts (over HTTP or WebSocket, the puller's own included), exactly once and in
order (pages and live chunks are sent under the backend's lock); ``SyncWsRpc.Push`` gets its
``Exit``; ``Interrupt`` ends a pull; ``Ack``\\ s are recorded.

Faults: ``refuse_status`` refuses upgrades with that HTTP status, ``answer_pings=False`` keeps
silent, ``fault="duplicate"`` sends the next live chunk twice and ``fault="gap"`` skips it (the
chunk after it then does not continue), :meth:`FakeWsServer.close_all` closes every connection.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

from stratasync.client.transport import RpcTransport
from stratasync.protocol.rpc import RpcTag

NO_MORE = {"_tag": "NoMore"}


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "the condition") -> None:
    """Poll ``predicate`` until it is true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def _exit_failure(error: dict[str, Any]) -> dict[str, Any]:
    return {"_tag": "Failure", "cause": {"_tag": "Fail", "error": error}}


class FakeBackend:
    """One store's log in memory: ``push`` (parent must be the head), ``pages`` after a seqNum."""

    def __init__(self, backend_id: str = "backend-1", page_size: int = 100) -> None:
        self.lock = threading.RLock()
        self.backend_id = backend_id
        self.page_size = page_size
        self.items: list[dict[str, Any]] = []  # {"eventEncoded": ..., "metadata": Some(createdAt)}
        #: Called under the lock with the items of each accepted push.
        self.listeners: list[Callable[[list[dict[str, Any]]], None]] = []
        self.http_pulls = 0
        self.http_pushes = 0

    @property
    def head(self) -> int:
        with self.lock:
            return self.items[-1]["eventEncoded"]["seqNum"] if self.items else 0

    @property
    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [item["eventEncoded"] for item in self.items]

    def reset(self, backend_id: str) -> None:
        """A new backend incarnation: an empty log under another id."""
        with self.lock:
            self.backend_id = backend_id
            self.items = []

    def cursor_error(self, cursor: Any) -> dict[str, Any] | None:
        if cursor.get("_tag") == "Some" and cursor["value"]["backendId"] != self.backend_id:
            received = cursor["value"]["backendId"]
            return {"_tag": "BackendIdMismatchError", "expected": self.backend_id, "received": received}
        return None

    def after(self, cursor: Any) -> int:
        return int(cursor["value"]["eventSequenceNumber"]) if cursor.get("_tag") == "Some" else 0

    def push(self, batch: list[dict[str, Any]], backend_id: Any) -> dict[str, Any] | None:
        """The error of a refused push, or None (accepted: listeners told, under the lock)."""
        with self.lock:
            if backend_id.get("_tag") == "Some" and backend_id["value"] != self.backend_id:
                received = backend_id["value"]
                return {"_tag": "BackendIdMismatchError", "expected": self.backend_id, "received": received}
            if batch[0]["parentSeqNum"] != self.head:
                return {
                    "_tag": "ServerAheadError",
                    "minimumExpectedNum": self.head,
                    "providedNum": batch[0]["parentSeqNum"],
                }
            stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            meta = {"_tag": "Some", "value": {"_tag": "SyncMessage.SyncMetadata", "createdAt": stamp}}
            items = [{"eventEncoded": event, "metadata": meta} for event in batch]
            self.items.extend(items)
            for listener in list(self.listeners):
                listener(items)
            return None

    def pages(self, after: int) -> list[dict[str, Any]]:
        """PullResponses after ``after``: pages of ``page_size``, the last NoMore (one empty if none)."""
        with self.lock:
            items = [item for item in self.items if item["eventEncoded"]["seqNum"] > after]
            chunks = [items[i : i + self.page_size] for i in range(0, len(items), self.page_size)] or [[]]
            pages = []
            for number, chunk in enumerate(chunks):
                remaining = sum(len(rest) for rest in chunks[number + 1 :])
                info = {"_tag": "MoreKnown", "remaining": remaining} if remaining else NO_MORE
                pages.append({"batch": chunk, "pageInfo": info, "backendId": self.backend_id})
            return pages


class FakeHttp(RpcTransport):
    """The backend's HTTP side, in process (the envelopes as over HTTP, through JSON)."""

    def __init__(self, backend: FakeBackend, store_id: str) -> None:
        super().__init__(store_id)
        self.backend = backend

    def _exchange(self, tag: RpcTag, body: dict[str, Any]) -> Any:
        body = json.loads(json.dumps(body))
        request_id, payload = body["id"], body["payload"]
        backend = self.backend
        if tag is RpcTag.PING:
            value: Any = {"_tag": "SyncMessage.Pong"}
            return [{"_tag": "Exit", "requestId": request_id, "exit": {"_tag": "Success", "value": value}}]
        if tag is RpcTag.PUSH:
            backend.http_pushes += 1
            error = backend.push(payload["batch"], payload["backendId"])
            outcome = _exit_failure(error) if error else {"_tag": "Success", "value": {}}
            return [{"_tag": "Exit", "requestId": request_id, "exit": outcome}]
        backend.http_pulls += 1
        with backend.lock:
            error = backend.cursor_error(payload["cursor"])
            if error is not None:
                return [{"_tag": "Exit", "requestId": request_id, "exit": _exit_failure(error)}]
            pages = backend.pages(backend.after(payload["cursor"]))
        chunks = [{"_tag": "Chunk", "requestId": request_id, "values": [page]} for page in pages]
        return json.loads(
            json.dumps([*chunks, {"_tag": "Exit", "requestId": request_id, "exit": {"_tag": "Success"}}])
        )


class _Conn:
    def __init__(self, number: int, ws: ServerConnection) -> None:
        self.number = number
        self.ws = ws
        self.pulls: dict[str, bool] = {}  # live pull request ids (True while subscribed)

    def send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionClosed):
            self.ws.send(json.dumps(message))


class FakeWsServer:
    """The WebSocket side of a :class:`FakeBackend` on 127.0.0.1 (see the module docstring)."""

    def __init__(self, backend: FakeBackend) -> None:
        self.backend = backend
        self.refuse_status: int | None = None
        self.answer_pings = True
        self.fault: str | None = None
        self.lock = threading.Lock()
        #: Every frame received: (connection number, message).
        self.frames: list[tuple[int, dict[str, Any]]] = []
        self.paths: list[str] = []
        self.conns: list[_Conn] = []
        self.refused = 0
        backend.listeners.append(self._broadcast)
        self._server = serve(
            self._handle, "127.0.0.1", 0, process_request=self._process_request, ping_interval=None
        )
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-ws", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def close(self) -> None:
        self.backend.listeners.remove(self._broadcast)
        self._server.shutdown()
        self._thread.join(5)

    def __enter__(self) -> FakeWsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- what tests look at --------------------------------------------------------------------

    def received(self, tag: str, rpc: str | None = None) -> list[tuple[int, dict[str, Any]]]:
        """The frames of one ``_tag`` (and for Requests one RPC tag), with their connection numbers."""
        with self.lock:
            return [
                (number, message)
                for number, message in self.frames
                if message.get("_tag") == tag and (rpc is None or message.get("tag") == rpc)
            ]

    def live_pulls(self) -> int:
        with self.backend.lock:
            return sum(subscribed for conn in self.conns for subscribed in conn.pulls.values())

    def close_all(self, code: int = 1001) -> None:
        for conn in list(self.conns):
            conn.ws.close(code, "going away")

    # -- serving -------------------------------------------------------------------------------

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if self.refuse_status is not None:
            self.refused += 1
            return ws.respond(self.refuse_status, "no WebSocket here\n")
        return None

    def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        with self.lock:
            conn = _Conn(len(self.conns) + 1, ws)
            self.paths.append(ws.request.path)
        with self.backend.lock:
            self.conns.append(conn)
        try:
            for text in ws:
                message = json.loads(text)
                with self.lock:
                    self.frames.append((conn.number, message))
                self._message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            with self.backend.lock:
                conn.pulls.clear()

    def _message(self, conn: _Conn, message: dict[str, Any]) -> None:
        tag = message.get("_tag")
        if tag == "Ping":
            if self.answer_pings:
                conn.send({"_tag": "Pong"})
        elif tag == "Interrupt":
            with self.backend.lock:
                conn.pulls.pop(message["requestId"], None)
        elif tag == "Request" and message["tag"] == "SyncWsRpc.Pull":
            self._pull(conn, message["id"], message["payload"])
        elif tag == "Request" and message["tag"] == "SyncWsRpc.Push":
            payload = message["payload"]
            error = self.backend.push(payload["batch"], payload["backendId"])
            outcome = _exit_failure(error) if error else {"_tag": "Success", "value": {}}
            conn.send({"_tag": "Exit", "requestId": message["id"], "exit": outcome})

    def _pull(self, conn: _Conn, request_id: str, payload: dict[str, Any]) -> None:
        backend = self.backend
        with backend.lock:  # no push slips in between the stored pages and the subscription
            error = backend.cursor_error(payload["cursor"])
            if error is not None:
                conn.send({"_tag": "Exit", "requestId": request_id, "exit": _exit_failure(error)})
                return
            for page in backend.pages(backend.after(payload["cursor"])):
                conn.send({"_tag": "Chunk", "requestId": request_id, "values": [page]})
            if payload.get("live"):
                conn.pulls[request_id] = True
                return
        conn.send({"_tag": "Exit", "requestId": request_id, "exit": {"_tag": "Success"}})

    def _broadcast(self, items: list[dict[str, Any]]) -> None:
        """Called under the backend's lock: a NoMore chunk of ``items`` to every live pull."""
        fault, self.fault = self.fault, None
        if fault == "gap":
            return
        page = {"batch": items, "pageInfo": NO_MORE, "backendId": self.backend.backend_id}
        for conn in self.conns:
            for request_id in list(conn.pulls):
                chunk = {"_tag": "Chunk", "requestId": request_id, "values": [page]}
                conn.send(chunk)
                if fault == "duplicate":
                    conn.send(chunk)
