"""The dev server's own endpoints served to this process's boto3 clients without a socket.

With ``in_process`` functions (:class:`~stratasync.devserver.functions.ThreadFunction`), the
handlers run in threads of the dev server's process. Their requests to the embedded moto and to
the private port (``@connections``, the Lambda ``Invoke`` API) then need no TCP connection: this
hands each one to the same WSGI or ASGI app that serves that port, through botocore's
``before-send`` event, the hook moto's own ``mock_aws`` answers on. The request is signed,
serialized and parsed as before; only the socket and the HTTP server are left out. A request to
any other endpoint (DynamoDB Local, SeaweedFS, AWS) goes over the network as before.

Why: the embedded moto is served by werkzeug, which closes every connection (``Connection:
close``), and the dev server's process spent most of its CPU on that HTTP serving, not on moto.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from io import BytesIO
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.handlers import BUILTIN_HANDLERS
from werkzeug.test import EnvironBuilder, run_wsgi_app

Reply = tuple[int, list[tuple[str, str]], bytes]
#: Serves one request: its method, URL, headers and body in, a status, headers and body out.
Route = Callable[[str, str, list[tuple[str, str]], bytes], Reply]
WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]
AsgiApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

logger = logging.getLogger(__name__)

_routes: dict[str, Route] = {}
_routes_lock = threading.Lock()
_installed = False


class _RawBody(BytesIO):
    """What botocore reads a response body from (``stream()`` and, for streaming bodies, ``read``)."""

    def stream(self, **_: Any) -> Iterable[bytes]:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _body(request: AWSPreparedRequest) -> bytes:
    body = request.body
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    data = body.read()  # a file-like body (an S3 upload)
    if hasattr(body, "seek"):
        body.seek(0)  # botocore may read it again (a checksum, a retry)
    return data if isinstance(data, bytes) else str(data).encode()


def _before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
    url = request.url
    with _routes_lock:
        route = next(
            (serve for base, serve in _routes.items() if url == base or url.startswith(base + "/")), None
        )
    if route is None:
        return None  # not one of ours: over the network
    headers = [(_text(name), _text(value)) for name, value in request.headers.items()]
    try:
        status, reply_headers, body = route(request.method, url, headers, _body(request))
    except Exception as error:  # what the port's server would answer: a 500, not a crash of the caller
        logger.exception("the in-process route for %s failed", url)
        status, reply_headers = 500, [("content-type", "application/json")]
        body = json.dumps({"message": f"{type(error).__name__}: {error}"}).encode()
    return AWSResponse(url, status, HTTPHeaders.from_pairs(reply_headers), _RawBody(body))


def _install() -> None:
    global _installed
    if _installed:
        return
    # Sessions made from now on (each Lambda handler's clients come from boto3's default session).
    BUILTIN_HANDLERS.append(("before-send", _before_send))
    if boto3.DEFAULT_SESSION is not None:  # the one made before, if any
        events = boto3.DEFAULT_SESSION.events
        events.register("before-send", _before_send, unique_id="stratasync-loopback")  # type: ignore[arg-type]
    _installed = True


def serve_in_process(base_url: str, route: Route) -> Callable[[], None]:
    """Answer this process's boto3 requests under ``base_url`` (``http://127.0.0.1:port``) with
    ``route`` instead of a socket; returns what stops it."""
    base = base_url.rstrip("/")
    with _routes_lock:
        _install()
        _routes[base] = route

    def stop() -> None:
        with _routes_lock:
            if _routes.get(base) is route:
                del _routes[base]

    return stop


def wsgi_route(app: WsgiApp) -> Route:
    """A route that runs a WSGI app (moto's) on each request."""

    def serve(method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
        parts = urlsplit(url)
        environ = EnvironBuilder(
            method=method,
            base_url=f"{parts.scheme}://{parts.netloc}",
            path=parts.path or "/",  # as sent (quoted): werkzeug unquotes PATH_INFO, as its server does
            query_string=parts.query,
            headers=headers,
            data=body,
        ).get_environ()
        app_iter, status, reply_headers = run_wsgi_app(app, environ, buffered=True)
        try:
            data = b"".join(app_iter)
        finally:
            close = getattr(app_iter, "close", None)
            if close is not None:
                close()
        return int(status.split(" ", 1)[0]), list(reply_headers.items()), data

    return serve


class AsgiRoute:
    """A route that runs an ASGI app (the private port's) on each request, on one event loop of
    its own in a daemon thread (the app hands work to other loops itself, as it does when served).
    One loop for all callers: the fan-out's senders may be short-lived threads, and a loop each
    would cost its making and its file descriptors on every send. :meth:`close` stops it."""

    def __init__(self, app: AsgiApp) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="loopback-asgi", daemon=True
                )
                self._thread.start()
            return self._loop

    def __call__(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
        call = _call_asgi(self.app, method, url, headers, body)
        return asyncio.run_coroutine_threadsafe(call, self._running_loop()).result(timeout=60)

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()


async def _call_asgi(
    app: AsgiApp, method: str, url: str, headers: list[tuple[str, str]], body: bytes
) -> Reply:
    parts = urlsplit(url)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": parts.scheme,
        "method": method,
        "path": unquote(parts.path),
        "raw_path": parts.path.encode("latin-1"),
        "query_string": parts.query.encode("latin-1"),
        "headers": [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers],
        "client": ("127.0.0.1", 0),
        "server": (parts.hostname or "127.0.0.1", parts.port or 80),
    }
    received = False
    status = 500
    reply_headers: list[tuple[str, str]] = []
    pieces: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            return {"type": "http.disconnect"}
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            raw = message.get("headers", [])
            reply_headers.extend((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)
        elif message["type"] == "http.response.body":
            pieces.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, reply_headers, b"".join(pieces)
