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
  service error such as DynamoDB throttling).

When the upstream cannot be reached (the dev server is restarting) the client's connection is
closed without an answer, which is what a client sees when a server process dies.
"""

from __future__ import annotations

import enum
import http.client
import threading
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


Policy = Callable[[ProxiedRequest], "Action | Reply"]

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "proxy-connection"}


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (a killed process, a dropped connection) are part of the test."""


class _UpstreamError(Exception):
    """The upstream could not be reached or broke off."""


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 that applies ``policy`` to every request."""

    def __init__(self, upstream: str, policy: Policy, *, timeout: float = 30.0) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname is not None, upstream
        assert parts.port is not None, upstream
        self._upstream = (parts.hostname, parts.port)
        self.policy = policy
        self.timeout = timeout
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
            connection.request(request.method, request.path, body=request.body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        except (OSError, http.client.HTTPException) as error:
            raise _UpstreamError(str(error)) from error
        finally:
            connection.close()

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
                if isinstance(decision, Reply):
                    proxy.count(decision.kind)
                    self._send(decision.status, list(decision.headers.items()), decision.body)
                    return
                proxy.count(decision.value)
                if b'"SyncHttpRpc.Push"' in body:  # pushes separately: a lost push ack is the hard case
                    proxy.count(f"{decision.value}_push")
                if decision is Action.REFUSE:
                    self._hang_up()
                    return
                try:
                    answer = proxy._forward(request)
                    if decision is Action.DUPLICATE:
                        second = proxy._forward(request)
                        answer = second if len(body) % 2 else answer  # either one may reach the client
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
