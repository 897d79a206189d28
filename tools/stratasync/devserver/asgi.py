"""The dev server's HTTP fronts as ASGI apps, served by uvicorn in a background thread.

:class:`GatewayApp` plays API Gateway on the public port: each HTTP request becomes a payload-2.0
event for the sync function, each WebSocket a connection of the WebSocket API
(:mod:`.websocket`). :class:`PrivateApp` serves, on a private port, the Lambda ``Invoke`` API
(:class:`LambdaApiApp`, for the archiver function only) and the WebSocket API's ``@connections``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

import uvicorn

from stratasync.devserver.gateway import (
    MAX_GATEWAY_BODY_BYTES,
    Headers,
    error_response,
    from_lambda_result,
    to_gateway_event,
)
from stratasync.devserver.websocket import WebSocketApi, connections_path

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
#: Runs one invocation of a function (an event in, a future of the handler's result out).
Invoke = Callable[[dict[str, Any]], "Future[Any]"]

_INVOKE_PATH = "/2015-03-31/functions/"


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None once it passes ``limit`` bytes."""
    pieces: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(pieces)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        pieces.append(chunk)
        if not message.get("more_body", False):
            return b"".join(pieces)


_FRAMING = {"content-length", "transfer-encoding", "connection"}


async def respond(send: Send, status: int, headers: Headers, body: bytes) -> None:
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    raw = [(name, value) for name, value in raw if name.decode() not in _FRAMING]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class GatewayApp:
    """API Gateway in front of the sync function (HTTP) and the ws function (WebSocket upgrades on
    the same host and port, as sync-cf's worker serves both)."""

    def __init__(self, invoke_sync: Invoke, websocket: WebSocketApi | None = None) -> None:
        self.invoke_sync = invoke_sync
        self.websocket = websocket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            if self.websocket is None:
                await receive()
                await send({"type": "websocket.close", "code": 1008})  # uvicorn answers the handshake 403
                return
            await self.websocket.serve(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive, MAX_GATEWAY_BODY_BYTES)
        if body is None:
            await respond(send, *error_response(413, "Request Entity Too Large"))
            return
        target = scope["raw_path"].decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
        client = scope.get("client") or ("127.0.0.1", 0)
        event = to_gateway_event(scope["method"], target, headers, body, client[0])
        try:
            result = await asyncio.wrap_future(self.invoke_sync(event))
        except Exception as error:  # the Lambda "crashed": API Gateway answers 500
            await respond(
                send, *error_response(500, "Internal Server Error", f"{type(error).__name__}: {error}")
            )
            return
        await respond(send, *from_lambda_result(result))


class LambdaApiApp:
    """The Lambda ``Invoke`` API for one function, whose name is this run's secret."""

    def __init__(self, function_name: str, invoke: Invoke) -> None:
        self.function_name = function_name
        self.invoke = invoke

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive, MAX_GATEWAY_BODY_BYTES) or b""
        path = scope["path"]
        name = path[len(_INVOKE_PATH) :].split("/", 1)[0] if path.startswith(_INVOKE_PATH) else ""
        json_headers = [("content-type", "application/json")]
        if scope["method"] != "POST" or not path.endswith("/invocations") or name != self.function_name:
            await respond(send, 404, json_headers, b'{"Type":"User","message":"Function not found"}')
            return
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            await respond(send, 400, json_headers, b'{"Type":"User","message":"payload is not JSON"}')
            return
        future = self.invoke(payload)
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        if headers.get("x-amz-invocation-type", "RequestResponse") == "Event":
            await respond(send, 202, json_headers, b"")
            return
        try:
            answer: Any = await asyncio.wrap_future(future)
        except Exception as error:
            answer = {"errorType": type(error).__name__, "errorMessage": str(error)}
        await respond(send, 200, json_headers, json.dumps(answer).encode())


class PrivateApp:
    """The private port: the Lambda ``Invoke`` API and, under a secret stage path, the WebSocket
    API's ``@connections`` (both reachable by the dev server's own workers only)."""

    def __init__(self, lambda_api: LambdaApiApp, websocket: WebSocketApi | None, secret_stage: str) -> None:
        self.lambda_api = lambda_api
        self.websocket = websocket
        self.secret_stage = secret_stage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        connection_id = connections_path(scope["path"], self.secret_stage)
        if connection_id is None or self.websocket is None:
            await self.lambda_api(scope, receive, send)
            return
        body = await read_body(receive, MAX_GATEWAY_BODY_BYTES) or b""
        await respond(send, *await self.websocket.manage(scope["method"], connection_id, body))


class ServerThread:
    """uvicorn serving an ASGI app on an already bound socket, in a thread with its own loop
    (``ws``: the WebSocket protocol class, or ``"none"``)."""

    def __init__(self, app: Any, sock: socket.socket, name: str, ws: Any = "none") -> None:
        self.sock = sock
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws=ws,
            ws_ping_interval=None,  # API Gateway sends no protocol pings (clients ping in JSON)
            ws_per_message_deflate=False,  # API Gateway negotiates no compression
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=name, daemon=True
        )

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    def start(self, timeout: float = 30) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the dev server's HTTP front did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=10)
        self.sock.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: a free one); binding first reports a busy port at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it a response's second write waits for the
    # client's delayed ACK (40 ms on Linux) on every keep-alive request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    return sock
