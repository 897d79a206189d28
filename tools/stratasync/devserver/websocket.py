"""API Gateway's WebSocket API, emulated in front of the real ws function.

On the public port (the same host and port as HTTP, as sync-cf's worker serves both), a
WebSocket upgrade becomes a ``$connect`` event for the ws function: a 2xx accepts the connection,
anything else answers the handshake with that status. Every text (or binary) frame is routed as
API Gateway routes it with route selection ``$request.body._tag``:

* ``Ping`` is a MOCK route with a route response: ``{"_tag":"Pong"}`` is sent back, no Lambda;
* ``Ack`` is a MOCK route without one: dropped;
* ``Request`` and ``Interrupt`` invoke the function on that route, anything else on ``$default``.
  Invocations are not serialized per connection (API Gateway does not serialize them either).

The ``@connections`` management API is served on the private port under a secret stage path
(``POST`` data, ``DELETE``, ``GET``), with API Gateway's limits: messages over 128 KB are refused
(413 ``PayloadTooLargeException``), a closed connection answers 410 ``GoneException``. Client
frames over 32 KB (or messages over 128 KB) close the connection with 1009. An idle timeout and
the connection lifetime (10 min and 2 h on AWS; configurable, shortened in tests) close it with
1001; then (and after every close) ``$disconnect`` is invoked.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import unquote

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.server import ServerProtocol

from stratasync.devserver.gateway import (
    WebSocketContext,
    ws_connect_event,
    ws_disconnect_event,
    ws_message_event,
)
from stratasync.protocol.ws import MAX_WS_FRAME_BYTES, MAX_WS_MESSAGE_BYTES, PONG, route_key

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Invoke = Callable[[dict[str, Any]], "Future[Any]"]
Reply = tuple[int, list[tuple[str, str]], bytes]
T = TypeVar("T")


@dataclass(frozen=True)
class WebSocketLimits:
    """API Gateway's WebSocket quotas (the timeouts configurable, for tests)."""

    frame_bytes: int = MAX_WS_FRAME_BYTES
    message_bytes: int = MAX_WS_MESSAGE_BYTES
    idle_timeout_seconds: float = 600.0
    max_lifetime_seconds: float = 7200.0


def websocket_protocol(limits: WebSocketLimits) -> type[WebSocketsSansIOProtocol]:
    """uvicorn's WebSocket protocol with API Gateway's frame and message limits (a larger client
    frame or message closes the connection with 1009) and no compression extension."""

    class GatewayWebSocketProtocol(WebSocketsSansIOProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.conn = ServerProtocol(
                max_size=(limits.message_bytes, limits.frame_bytes), logger=logging.getLogger("uvicorn.error")
            )

    return GatewayWebSocketProtocol


def _connection_id() -> str:
    """An id shaped like API Gateway's (16 characters of base64, e.g. ``L0SM9cOFvHcCIhw=``)."""
    return base64.urlsafe_b64encode(os.urandom(11)).decode()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, error_type: str, message: str) -> Reply:
    body = json.dumps({"__type": error_type, "message": message}).encode()
    return status, [("content-type", "application/json"), ("x-amzn-errortype", error_type)], body


@dataclass
class _Connection:
    context: WebSocketContext
    send: Send
    loop: asyncio.AbstractEventLoop
    connected_at: float
    last_active: float = field(default_factory=time.monotonic)
    opened: float = field(default_factory=time.monotonic)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False
    close_code: int | None = None

    def touch(self) -> None:
        self.last_active = time.monotonic()


class WebSocketApi:
    """The WebSocket API of one stage, in front of the ws function (see the module docstring)."""

    def __init__(
        self,
        invoke: Invoke,
        *,
        stage: str = "dev",
        api_id: str = "devws",
        limits: WebSocketLimits | None = None,
        routes: frozenset[str] = frozenset({"Request", "Interrupt"}),
    ) -> None:
        self.invoke = invoke
        self.stage = stage
        self.api_id = api_id
        self.limits = limits or WebSocketLimits()
        self.routes = routes
        self._connections: dict[str, _Connection] = {}
        #: Messages posted through ``@connections`` (for the dev server's counters and benches).
        self.posted = 0
        self._tasks: set[asyncio.Task[bool]] = set()

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def connection_ids(self) -> list[str]:
        """The ids of the open connections (for tests that close them through ``@connections``)."""
        return [key for key, connection in list(self._connections.items()) if not connection.closed]

    # -- the public side: one WebSocket ---------------------------------------------------------

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One ASGI WebSocket connection, from handshake to ``$disconnect``."""
        if (await receive())["type"] != "websocket.connect":
            return
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
        lower = {name.lower(): value for name, value in headers}
        client = scope.get("client") or ("127.0.0.1", 0)
        now = time.time()
        context = WebSocketContext(
            connection_id=_connection_id(),
            connected_at_ms=int(now * 1000),
            domain_name=lower.get("host", "localhost"),
            stage=self.stage,
            api_id=self.api_id,
            source_ip=client[0],
            user_agent=lower.get("user-agent", ""),
        )
        query = scope.get("query_string", b"").decode("latin-1")
        try:
            result = await asyncio.wrap_future(self.invoke(ws_connect_event(context, headers, query)))
            status = int(result.get("statusCode", 200)) if isinstance(result, dict) else 200
        except Exception:
            logger.exception("the $connect invocation failed")
            status = 500
        if not 200 <= status < 300:
            await send({"type": "websocket.http.response.start", "status": status, "headers": []})
            await send({"type": "websocket.http.response.body", "body": b""})
            return
        await send({"type": "websocket.accept"})
        connection = _Connection(context, send, asyncio.get_running_loop(), now)
        self._connections[context.connection_id] = connection
        watchdog = asyncio.create_task(self._watch(connection))
        code, reason = 1006, "connection lost"
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    code = int(message.get("code") or 1005)
                    reason = str(message.get("reason") or "")
                    break
                if message["type"] == "websocket.receive":
                    connection.touch()
                    data = message.get("text")
                    self._on_message(connection, data if data is not None else message.get("bytes", b""))
        finally:
            connection.closed = True
            self._connections.pop(context.connection_id, None)
            watchdog.cancel()
            if connection.close_code is not None:
                code = connection.close_code
            self._invoke_quietly(ws_disconnect_event(context, code, reason))

    def _on_message(self, connection: _Connection, data: str | bytes) -> None:
        route = route_key(data)
        if route == "Ping":  # MOCK integration with a route response
            task = asyncio.create_task(self._send(connection, PONG))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        if route == "Ack":  # MOCK integration, one-way
            return
        self._invoke_quietly(
            ws_message_event(connection.context, route if route in self.routes else "$default", data)
        )

    def _invoke_quietly(self, event: dict[str, Any]) -> None:
        def done(future: Future[Any]) -> None:
            error = future.exception()
            if error is not None:
                logger.error("the ws function failed on %s: %s", event["requestContext"]["routeKey"], error)

        self.invoke(event).add_done_callback(done)

    async def _watch(self, connection: _Connection) -> None:
        limits = self.limits
        while not connection.closed:
            now = time.monotonic()
            idle = now - connection.last_active >= limits.idle_timeout_seconds
            old = now - connection.opened >= limits.max_lifetime_seconds
            if idle or old:
                await self._close(connection, 1001, "Going away")
                return
            await asyncio.sleep(min(1.0, limits.idle_timeout_seconds / 4, limits.max_lifetime_seconds / 4))

    async def _send(self, connection: _Connection, text: str) -> bool:
        async with connection.send_lock:
            if connection.closed:
                return False
            try:
                await connection.send({"type": "websocket.send", "text": text})
            except Exception:  # the socket went away under us
                return False
            connection.touch()
            return True

    async def _close(self, connection: _Connection, code: int, reason: str) -> None:
        async with connection.send_lock:
            if connection.closed:
                return
            connection.closed = True
            connection.close_code = code
            with contextlib.suppress(Exception):  # already closing
                await connection.send({"type": "websocket.close", "code": code, "reason": reason})

    # -- the private side: @connections ---------------------------------------------------------

    async def _on_loop(self, connection: _Connection, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the public server's loop (the connection's), from the private one."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, connection.loop))

    async def manage(self, method: str, connection_id: str, body: bytes) -> Reply:
        """One ``@connections`` call (``POST`` / ``DELETE`` / ``GET``) for a connection id."""
        connection = self._connections.get(connection_id)
        if connection is None or connection.closed:
            return _error(410, "GoneException", f"connection {connection_id} is gone")
        if method == "POST":
            if len(body) > self.limits.message_bytes:
                return _error(
                    413,
                    "PayloadTooLargeException",
                    f"message of {len(body)} bytes exceeds the {self.limits.message_bytes} byte limit",
                )
            try:
                text = body.decode()
            except UnicodeDecodeError:
                return _error(
                    400, "BadRequestException", "the dev server sends text frames only (UTF-8 data)"
                )
            if not await self._on_loop(connection, self._send(connection, text)):
                return _error(410, "GoneException", f"connection {connection_id} is gone")
            self.posted += 1
            return 200, [("content-type", "application/json")], b""
        if method == "DELETE":
            await self._on_loop(connection, self._close(connection, 1000, ""))
            return 204, [], b""
        if method == "GET":
            info = {
                "ConnectedAt": _iso(connection.connected_at),
                "Identity": {
                    "SourceIp": connection.context.source_ip,
                    "UserAgent": connection.context.user_agent,
                },
                "LastActiveAt": _iso(connection.connected_at + (connection.last_active - connection.opened)),
            }
            return 200, [("content-type", "application/json")], json.dumps(info).encode()
        return _error(405, "BadRequestException", f"method {method} is not allowed")


def connections_path(path: str, secret_stage: str) -> str | None:
    """The connection id that ``/<secret stage>/@connections/<id>`` names, else None."""
    prefix = f"/{secret_stage}/@connections/"
    raw = unquote(path)
    if not raw.startswith(prefix):
        return None
    connection_id = raw[len(prefix) :]
    return connection_id if connection_id and "/" not in connection_id else None
