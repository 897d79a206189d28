"""A fault-injecting HTTP/1.1 proxy, test-side only: production code is never touched.

It sits between clients and ``stratasync dev`` (or between the dev server and DynamoDB Local)
and asks a *policy* what to do with each request:

* ``FORWARD`` - pass it on and send the answer back;
* ``DROP_RESPONSE`` - pass it on, then close the connection without answering: the request took
  effect upstream but its acknowledgement is lost;
* ``DUPLICATE`` - pass it on twice (the network delivered it twice) and answer with one of the
  two responses;
* ``REFUSE`` - close the connection without passing the request on (the client is offline);
* a :class:`Reply` - answer with that response without passing the request on (an injected
  service error such as DynamoDB throttling);
* a :class:`Fault` - the storage leg's faults: hold the request for a while (or until a test
  releases it) before acting, and/or pass it on and then answer with a :class:`Reply` instead of
  the real answer (the write took effect, but its writer "crashed" right after it).

An ``observer`` sees every exchange with the upstream (the request, the upstream's answer, and
whether that answer reached the client; status 0 and no body when the upstream gave no answer at
all): the history checker records acknowledgements there.

When the upstream cannot be reached (the dev server is restarting) the client's connection is
closed without an answer, which is what a client sees when a server process dies.
"""

from __future__ import annotations

import enum
import http.client
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class Action(enum.Enum):
    FORWARD = "forward"
    DROP_RESPONSE = "drop_response"
    DUPLICATE = "duplicate"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Reply:
    """Answer the request with this response instead of forwarding it."""

    status: int
    headers: dict[str, str]
    body: bytes
    kind: str = "reply"


@dataclass(frozen=True)
class ProxiedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True)
class Fault:
    """Wait ``delay`` seconds (or until ``until`` is set, at most ``hold_limit``), then do ``then``.

    With a :class:`Reply` and ``forward_first``, the request is passed on first (it takes effect
    upstream) and the reply replaces the upstream's answer. Counted under each of ``kinds``.
    """

    kinds: tuple[str, ...]
    then: Action | Reply = Action.FORWARD
    delay: float = 0.0
    until: threading.Event | None = None
    hold_limit: float = 60.0
    forward_first: bool = False


@dataclass(frozen=True)
class Exchange:
    """One request passed upstream and the upstream's answer."""

    request: ProxiedRequest
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    #: Whether this answer was sent on to the client (not lost, not the other copy of a duplicate).
    delivered: bool
    started: float  # time.monotonic() before forwarding
    finished: float  # ... and once the answer was read


Policy = Callable[[ProxiedRequest], "Action | Reply | Fault"]
Observer = Callable[[Exchange], None]

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "host",
    "proxy-connection",
    "expect",
}


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (a killed process, a dropped connection) are part of the test."""


class _UpstreamError(Exception):
    """The upstream could not be reached or broke off."""


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 that applies ``policy`` to every request."""

    def __init__(
        self,
        upstream: str,
        policy: Policy,
        *,
        timeout: float = 30.0,
        observer: Observer | None = None,
        preserve_host: bool = False,
    ) -> None:
        """``preserve_host``: pass the client's ``Host`` header on (S3 signatures cover it)."""
        parts = urlsplit(upstream)
        assert parts.hostname is not None, upstream
        assert parts.port is not None, upstream
        self._upstream = (parts.hostname, parts.port)
        self.policy = policy
        self.timeout = timeout
        self.observer = observer
        self.preserve_host = preserve_host
        #: How often each action was taken (``Reply.kind`` for replies) and how often upstream was down.
        self.counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self._http = _QuietServer(("127.0.0.1", 0), self._make_handler())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}/"

    def count(self, key: str) -> None:
        with self._counts_lock:
            self.counts[key] += 1

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._http.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _forward(self, request: ProxiedRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self._upstream, timeout=self.timeout)
        try:
            headers = {name: value for name, value in request.headers.items() if name not in _HOP_BY_HOP}
            if self.preserve_host and "host" in request.headers:
                headers["host"] = request.headers["host"]
            connection.request(request.method, request.path, body=request.body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        except (OSError, http.client.HTTPException) as error:
            raise _UpstreamError(str(error)) from error
        finally:
            connection.close()

    def _exchange(
        self, request: ProxiedRequest, *, delivered: bool
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        started = time.monotonic()
        try:
            status, headers, body = self._forward(request)
        except _UpstreamError:
            if self.observer is not None:  # no answer (status 0): the upstream died with it
                self.observer(Exchange(request, 0, [], b"", delivered, started, time.monotonic()))
            raise
        if self.observer is not None:
            self.observer(Exchange(request, status, headers, body, delivered, started, time.monotonic()))
        return status, headers, body

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _hang_up(self) -> None:
                self.close_connection = True
                self.wfile.flush()

            def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                request = ProxiedRequest(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                decision = proxy.policy(request)
                forward_first = False
                counted = isinstance(decision, Fault)  # a fault is counted under its own kinds only
                if isinstance(decision, Fault):
                    for kind in decision.kinds:
                        proxy.count(kind)
                    if decision.until is not None:
                        decision.until.wait(decision.hold_limit)
                    elif decision.delay > 0:
                        time.sleep(decision.delay)
                    forward_first = decision.forward_first
                    decision = decision.then
                if isinstance(decision, Reply):
                    if not counted:
                        proxy.count(decision.kind)
                    if forward_first:
                        try:
                            proxy._exchange(request, delivered=False)
                        except _UpstreamError:
                            proxy.count("upstream_down")
                            self._hang_up()
                            return
                    self._send(decision.status, list(decision.headers.items()), decision.body)
                    return
                if not counted:
                    proxy.count(decision.value)
                    if b'"SyncHttpRpc.Push"' in body:  # pushes separately: a lost push ack is the hard case
                        proxy.count(f"{decision.value}_push")
                if decision is Action.REFUSE:
                    self._hang_up()
                    return
                try:
                    if decision is Action.DUPLICATE:
                        # Either copy's answer may reach the client.
                        first_delivered = not len(body) % 2
                        answer = proxy._exchange(request, delivered=first_delivered)
                        second = proxy._exchange(request, delivered=not first_delivered)
                        answer = answer if first_delivered else second
                    else:
                        answer = proxy._exchange(request, delivered=decision is Action.FORWARD)
                except _UpstreamError:
                    proxy.count("upstream_down")
                    self._hang_up()
                    return
                if decision is Action.DROP_RESPONSE:
                    self._hang_up()
                    return
                self._send(*answer)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle  # noqa: N815

        return Handler
