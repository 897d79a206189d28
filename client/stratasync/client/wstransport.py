"""Live pull over WebSocket (sync-cf 0.4's ``transport=ws``, as LiveStore's ``makeWsSync``), push over HTTP.

:class:`SyncWsTransport` keeps one live pull open per store (a :class:`LivePull`, the
:class:`~stratasync.client.transport.LiveFeed` the sync engine reads): the backend sends the
stored pages after the store's cursor, then every event it accepts as it happens, this client's
own pushes included. One-shot pulls (:meth:`Store.sync`, and polling while the socket is down) go
over HTTP, and so do pushes by default (``push="http"``): API Gateway closes a WebSocket whose
client frame exceeds 32 KB (1009), and a push of 100 events easily does. With ``push="ws"`` a push
whose frame is at most :data:`WS_PUSH_MAX_BYTES` goes over the socket, larger ones over HTTP.

The rest is in two modules: :mod:`~stratasync.client.wslivepull` (the live pull: its connection,
reader thread, watchdog, reconnects and message handling) and :mod:`~stratasync.client.wsprotocol`
(URLs, request frames, ``Exit`` values, request ids, the exactly-once check). Their public names
are importable from here too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from stratasync.client import jsoncodec
from stratasync.client.errors import TransportError
from stratasync.client.retry import RetryPolicy
from stratasync.client.transport import (
    Cursor,
    LiveState,
    PullPage,
    SyncHttpTransport,
    SyncTransport,
    push_fields,
)
from stratasync.client.wslivepull import LivePull
from stratasync.client.wsprotocol import (
    PING,
    WS_PUSH,
    StreamCheck,
    as_http_url,
    as_ws_url,
    exit_error,
    live_pull_url,
    next_request_id,
    pull_live_fields,
    ws_request,
)

#: The largest push frame sent over the socket with ``push="ws"`` (API Gateway: 32 KB per frame).
WS_PUSH_MAX_BYTES = 30_000
#: The largest frame accepted from the backend (its pages are at most about 900 KB of events).
MAX_FRAME_BYTES = 16 * 1024 * 1024
PushPath = Literal["http", "ws"]


class SyncWsTransport:
    """One store on one sync-cf backend: live pull over WebSocket, one-shot pulls and pushes over HTTP.

    ``url``: the WebSocket endpoint (``ws://``, ``wss://``, or ``http(s)://`` mapped to them; no
    query). ``http``: the HTTP transport for one-shot pulls and pushes, by default a
    :class:`SyncHttpTransport` on ``http_url`` (by default ``url`` with ``ws(s)`` mapped to
    ``http(s)``: the same server, as ``stratasync dev``; on AWS the WebSocket API has its own
    host). ``headers`` go with the HTTP requests and the WebSocket handshake; ``payload`` with
    every request (auth rides there: browsers cannot set WebSocket headers).
    """

    def __init__(
        self,
        url: str,
        store_id: str,
        *,
        payload: Any = None,
        headers: Mapping[str, str] | None = None,
        http_url: str | None = None,
        http: SyncTransport | None = None,
        push: PushPath = "http",
        ping_interval: float = 10.0,
        reconnect: RetryPolicy | None = None,
        open_timeout: float = 10.0,
        timeout: float = 15.0,
    ) -> None:
        if push not in ("http", "ws"):
            raise ValueError(f"push must be 'http' or 'ws', not {push!r}")
        self.store_id = store_id
        self.payload = payload
        self.headers = dict(headers or {})
        self.url = live_pull_url(url, store_id, payload)
        self.http: SyncTransport = (
            http
            if http is not None
            else SyncHttpTransport(
                http_url if http_url is not None else as_http_url(url),
                store_id,
                payload=payload,
                headers=headers,
                timeout=timeout,
            )
        )
        self.push_path: PushPath = push
        #: Seconds between ``Ping`` frames; a connection silent for a whole interval is dropped.
        self.ping_interval = ping_interval
        #: The backoff between reconnection attempts (full jitter; back to the start once caught up).
        self.reconnect: RetryPolicy = reconnect or RetryPolicy(initial_seconds=0.5, max_seconds=30.0)
        self.open_timeout = open_timeout
        self.timeout = timeout
        #: Pushes sent over the socket and over HTTP (for tests and curiosity).
        self.pushes_over_ws = 0
        self.pushes_over_http = 0
        self._live: LivePull | None = None

    # -- the connection ------------------------------------------------------------------------

    def connect(self) -> ClientConnection:
        """Open a WebSocket to the live pull URL (raises what websockets raises)."""
        return connect(
            self.url,
            open_timeout=self.open_timeout,
            additional_headers=self.headers or None,
            max_size=MAX_FRAME_BYTES,
            ping_interval=None,  # the protocol's own JSON Ping keeps the connection alive
            close_timeout=2.0,
        )

    @property
    def live(self) -> LivePull | None:
        """The live pull the sync engine opened (None while it syncs in no background thread)."""
        return self._live

    def open_live(self, cursor: Callable[[], Cursor | None], wake: Callable[[], None]) -> LivePull:
        if self._live is not None and self._live.state is not LiveState.STOPPED:
            self._live.stop()
        self._live = LivePull(self, cursor, wake)
        return self._live

    # -- SyncTransport -------------------------------------------------------------------------

    def ping(self) -> None:
        """A ``Ping`` over the WebSocket, answered by a ``Pong`` (on the live connection if one is open)."""
        live = self._live
        if live is not None:
            try:
                live.ping(self.timeout)
                return
            except LookupError:
                pass
        try:
            with self.connect() as conn:
                conn.send(PING)
                deadline = time.monotonic() + self.timeout
                while True:
                    text = conn.recv(timeout=max(0.0, deadline - time.monotonic()))
                    message = jsoncodec.loads(text)
                    if isinstance(message, dict) and message.get("_tag") == "Pong":
                        return
        except (WebSocketException, OSError, TimeoutError, ValueError) as error:
            raise TransportError(f"Ping over the WebSocket: {type(error).__name__}: {error}") from error

    def pull(self, cursor: Cursor | None) -> list[PullPage]:
        """A one-shot pull (over HTTP)."""
        return self.http.pull(cursor)

    def push(self, batch: Sequence[Mapping[str, Any]], backend_id: str | None) -> None:
        """Push over HTTP; with ``push="ws"`` over the live connection if it is open and the frame small."""
        live = self._live
        if self.push_path == "ws" and live is not None:
            fields = push_fields(batch, backend_id)
            frame = ws_request("0", WS_PUSH, self.store_id, self.payload, fields)
            if len(frame.encode()) <= WS_PUSH_MAX_BYTES:

                def request(request_id: str) -> str:
                    return ws_request(request_id, WS_PUSH, self.store_id, self.payload, fields)

                try:
                    outcome = live.call(request, self.timeout)
                except LookupError:
                    pass
                else:
                    self.pushes_over_ws += 1
                    error = exit_error(outcome)
                    if error is not None:
                        raise error
                    return
        self.pushes_over_http += 1
        self.http.push(batch, backend_id)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
        self.http.close()

    def __enter__(self) -> SyncWsTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def make_transport(
    backend_url: str,
    store_id: str,
    *,
    kind: Literal["http", "ws"] | None = None,
    live_url: str | None = None,
    payload: Any = None,
    headers: Mapping[str, str] | None = None,
) -> SyncTransport:
    """The transport :class:`Store` builds from its options.

    ``kind`` None: WebSocket if ``backend_url`` is ``ws(s)://`` or ``live_url`` is given, else HTTP.
    With WebSocket, the live pull goes to ``live_url`` (default: ``backend_url`` as ``ws(s)``)
    and HTTP to ``backend_url`` (as ``http(s)``).
    """
    scheme = urlsplit(backend_url).scheme.lower()
    if kind is None:
        kind = "ws" if live_url is not None or scheme in ("ws", "wss") else "http"
    if kind == "http":
        return SyncHttpTransport(as_http_url(backend_url), store_id, payload=payload, headers=headers)
    if kind != "ws":
        raise ValueError(f"transport must be 'http', 'ws' or a SyncTransport, not {kind!r}")
    return SyncWsTransport(
        live_url if live_url is not None else backend_url,
        store_id,
        payload=payload,
        headers=headers,
        http_url=as_http_url(backend_url),
    )


__all__ = [
    "MAX_FRAME_BYTES",
    "WS_PUSH_MAX_BYTES",
    "LivePull",
    "PushPath",
    "StreamCheck",
    "SyncWsTransport",
    "as_http_url",
    "as_ws_url",
    "exit_error",
    "live_pull_url",
    "make_transport",
    "next_request_id",
    "pull_live_fields",
    "ws_request",
]
