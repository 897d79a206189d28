"""Live pull over WebSocket (sync-cf 0.4's ``transport=ws``, as LiveStore's ``makeWsSync``), push over HTTP.

:class:`SyncWsTransport` keeps one live pull open per store (a :class:`LivePull`, the
:class:`~stratasync.client.transport.LiveFeed` the sync engine reads): the backend sends the
stored pages after the store's cursor, then every event it accepts as it happens, this client's
own pushes included. One-shot pulls (:meth:`Store.sync`, and polling while the socket is down) go
over HTTP, and so do pushes by default (``push="http"``): API Gateway closes a WebSocket whose
client frame exceeds 32 KB (1009), and a push of 100 events easily does. With ``push="ws"`` a push
whose frame is at most :data:`WS_PUSH_MAX_BYTES` goes over the socket, larger ones over HTTP.

**Threads.** The reader thread (``stratasync-ws-<store id>``) owns the connection: it receives
frames, checks that each page continues the last one, queues the pages and wakes the sync engine,
answers each ``Chunk`` with an ``Ack``, sends a ``Ping`` every :attr:`SyncWsTransport.ping_interval`
seconds and drops a connection that stayed silent for a whole interval. The sync engine's thread
takes the queued pages and merges them (subscriptions fire there, as for polled pages).

**Reconnects.** A closed, dead or faulty connection (a page that repeats or skips events) is
dropped and opened again after a jittered exponential backoff (:attr:`SyncWsTransport.reconnect`,
from 0-0.5 s up to 0-30 s; back to the start once a connection caught up), and the new pull starts
from the store's real cursor. While the socket is down after a failed attempt (refused upgrade,
no WebSocket on the server, unreachable), the engine polls over HTTP.

**Request ids** come from one counter per process (as ``@effect/rpc``'s), so they stay unique
across connections and reconnections.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection, connect

from stratasync.client import jsoncodec
from stratasync.client.errors import ProtocolError, TransportError
from stratasync.client.sync import RetryPolicy
from stratasync.client.transport import (
    Cursor,
    LiveFailure,
    LiveItem,
    LivePages,
    LiveState,
    PullPage,
    SyncHttpTransport,
    SyncTransport,
    pull_fields,
    pull_pages,
    push_fields,
)
from stratasync.protocol.errors import error_from_wire

logger = logging.getLogger("stratasync.client")

WS_PULL = "SyncWsRpc.Pull"
WS_PUSH = "SyncWsRpc.Push"
#: The largest push frame sent over the socket with ``push="ws"`` (API Gateway: 32 KB per frame).
WS_PUSH_MAX_BYTES = 30_000
#: The largest frame accepted from the backend (its pages are at most about 900 KB of events).
MAX_FRAME_BYTES = 16 * 1024 * 1024
PushPath = Literal["http", "ws"]

_PING = jsoncodec.dumps({"_tag": "Ping"})
#: What ``encodeURIComponent`` leaves as it is besides letters, digits and ``-_.``.
_URI_COMPONENT_SAFE = "!~*'()"
_request_ids = itertools.count()
_request_ids_lock = threading.Lock()


def next_request_id() -> str:
    """A request id unique in this process (a decimal string, as ``@effect/rpc`` sends them)."""
    with _request_ids_lock:
        return str(next(_request_ids))


def _encode_uri_component(text: str) -> str:
    return quote(text, safe=_URI_COMPONENT_SAFE)


def _with_scheme(url: str, schemes: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in schemes.values():
        return url
    if scheme not in schemes:
        raise ValueError(f"{url!r}: expected one of {', '.join(sorted({*schemes, *schemes.values()}))}")
    return urlunsplit(parts._replace(scheme=schemes[scheme]))


def as_ws_url(url: str) -> str:
    """``url`` with an ``http(s)`` scheme mapped to ``ws(s)`` (as ``makeWsSync`` does)."""
    return _with_scheme(url, {"http": "ws", "https": "wss"})


def as_http_url(url: str) -> str:
    """``url`` with a ``ws(s)`` scheme mapped to ``http(s)`` (the same server's HTTP transport)."""
    return _with_scheme(url, {"ws": "http", "wss": "https"})


def live_pull_url(url: str, store_id: str, payload: Any = None) -> str:
    """The URL a live pull connects to: ``url?storeId=..&payload=..&transport=ws``.

    ``payload`` is JSON, URI-encoded twice (as LiveStore sends it); omitted when None.
    """
    url = as_ws_url(url)
    if urlsplit(url).query:
        raise ValueError(f"{url!r}: the WebSocket URL must carry no query (the client appends its own)")
    query = f"storeId={_encode_uri_component(store_id)}"
    if payload is not None:
        encoded = _encode_uri_component(jsoncodec.dumps(payload))
        query += f"&payload={_encode_uri_component(encoded)}"
    return f"{url}?{query}&transport=ws"


def ws_request(request_id: str, tag: str, store_id: str, payload: Any, fields: Mapping[str, Any]) -> str:
    """One Effect-RPC request frame."""
    rpc_payload: dict[str, Any] = {"storeId": store_id}
    if payload is not None:
        rpc_payload["payload"] = payload
    rpc_payload.update(fields)
    return jsoncodec.dumps(
        {"_tag": "Request", "id": request_id, "tag": tag, "payload": rpc_payload, "headers": []}
    )


def pull_live_fields(cursor: Cursor | None) -> dict[str, Any]:
    """The fields of a live pull request (``live`` and ``cursor``)."""
    return {"live": True, **pull_fields(cursor)}


def exit_error(exit_value: Any) -> Exception | None:
    """The error an ``Exit`` message carries (a protocol error, or TransportError); None for Success."""
    if not isinstance(exit_value, dict):
        return TransportError(f"malformed Exit: {exit_value!r}")
    if exit_value.get("_tag") == "Success":
        return None
    cause = exit_value.get("cause")
    if isinstance(cause, dict) and cause.get("_tag") == "Fail":
        return error_from_wire(cause.get("error"))
    return TransportError(f"the backend failed: {cause!r}")


class StreamCheck:
    """Exactly once, in order: each page of one pull must continue the last event seen on it.

    Starts at the pull's cursor; :meth:`check` returns what is wrong with the next pages (and
    then remembers nothing of them), or None after moving on past them.
    """

    def __init__(self, cursor: Cursor | None) -> None:
        self.backend_id: str | None = cursor[0] if cursor is not None else None
        self.last: int = cursor[1] if cursor is not None else 0

    def check(self, pages: Sequence[PullPage]) -> str | None:
        backend_id, last = self.backend_id, self.last
        for page in pages:
            if backend_id is not None and page.backend_id != backend_id:
                return f"the backend id changed from {backend_id!r} to {page.backend_id!r}"
            backend_id = page.backend_id
            for event in page.events:
                seq, parent = event.get("seqNum"), event.get("parentSeqNum")
                if type(seq) is not int or type(parent) is not int or seq <= parent:
                    return f"malformed event numbers seqNum={seq!r} parentSeqNum={parent!r}"
                if seq <= last:
                    return f"duplicate: event #{seq} arrived again (the pull is at #{last})"
                if parent != last:
                    return f"gap: event #{seq} follows #{parent}, but the pull is at #{last}"
                last = seq
        self.backend_id, self.last = backend_id, last
        return None


@dataclass
class _Waiter:
    """A request sent over the socket, waiting for its ``Exit``."""

    done: threading.Event = field(default_factory=threading.Event)
    exit: Any = None
    error: Exception | None = None


class _FaultError(Exception):
    """The connection must go: the backend broke the protocol (the message says how)."""


class _EndedError(Exception):
    """The backend ended the live pull (an ``Exit``); ``failed``: with an error, already queued."""

    def __init__(self, failed: bool) -> None:
        super().__init__()
        self.failed = failed


class LivePull:
    """One live pull kept open over a WebSocket, reconnecting as needed (see the module docstring).

    Made by :meth:`SyncWsTransport.open_live`; ``cursor()`` is read at each connection, ``wake()``
    is called (in the reader thread) when pages arrived or :attr:`state` changed.
    """

    def __init__(
        self, transport: SyncWsTransport, cursor: Callable[[], Cursor | None], wake: Callable[[], None]
    ) -> None:
        self._transport = transport
        self._cursor = cursor
        self._wake = wake
        self._lock = threading.Lock()
        self._items: deque[LiveItem] = deque()
        self._dropped: set[int] = set()
        self._state = LiveState.CONNECTING
        self._failed_attempts = 0
        self._generation = 0
        self._conn: ClientConnection | None = None
        self._pull_id: str | None = None
        self._waiters: dict[str, _Waiter] = {}
        self._pongs = 0
        self._pong = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._resume = threading.Event()
        self._thread: threading.Thread | None = None
        #: Connections opened so far, and the last reason one was dropped or refused (for apps and tests).
        self.connections = 0
        self.last_problem: str | None = None

    # -- what the sync engine sees -----------------------------------------------------------------

    @property
    def state(self) -> LiveState:
        return self._state

    @property
    def polling(self) -> bool:
        """True while the pull is not open after a failed or lost connection (poll over HTTP meanwhile)."""
        return self._state is LiveState.DOWN or (
            self._state is LiveState.CONNECTING and self._failed_attempts > 0
        )

    @property
    def generation(self) -> int:
        """The number of the current (or last) connection."""
        return self._generation

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name=f"stratasync-ws-{self._transport.store_id}", daemon=True
        )
        self._thread.start()

    def take(self) -> list[LiveItem]:
        with self._lock:
            items = [item for item in self._items if item.generation not in self._dropped]
            self._items.clear()
        return items

    def restart(self, generation: int | None, reason: str) -> None:
        with self._lock:
            generation = self._generation if generation is None else generation
            self._dropped.add(generation)
            conn = self._conn if generation == self._generation else None
        if conn is not None:
            logger.warning("store %r: %s; pulling again", self._transport.store_id, reason)
            self.last_problem = reason
            conn.close(1000, "pulling again")

    def resume(self) -> None:
        self._resume.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Interrupt the pull, close the connection and end the reader thread."""
        self._stop.set()
        self._resume.set()
        with self._lock:
            conn, pull_id = self._conn, self._pull_id
        if conn is not None:
            try:
                if pull_id is not None:
                    conn.send(jsoncodec.dumps({"_tag": "Interrupt", "requestId": pull_id}))
            except (ConnectionClosed, OSError):
                pass
            conn.close(1000, "stopped")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._set_state(LiveState.STOPPED)

    # -- requests on the open connection (push="ws", ping) ---------------------------------------

    def call(self, frame: Callable[[str], str], timeout: float) -> Any:
        """Send ``frame(request_id)`` on the live connection and return its ``Exit`` value.

        Raises LookupError when the pull is not live (the caller goes over HTTP then), and
        TransportError when the connection drops or no answer comes within ``timeout``.
        """
        with self._lock:
            conn = self._conn
            if conn is None or self._state is not LiveState.LIVE:
                raise LookupError("the live pull is not open")
            request_id = next_request_id()
            waiter = self._waiters[request_id] = _Waiter()
        try:
            conn.send(frame(request_id))
            if not waiter.done.wait(timeout):
                raise TransportError(f"no answer over the WebSocket within {timeout} s")
        except (ConnectionClosed, OSError) as error:
            raise TransportError(f"the WebSocket closed: {error}") from error
        finally:
            with self._lock:
                self._waiters.pop(request_id, None)
        if waiter.error is not None:
            raise waiter.error
        return waiter.exit

    def ping(self, timeout: float) -> None:
        """Send a ``Ping`` on the open connection and wait for a ``Pong``; LookupError if none is open."""
        with self._lock:
            conn, seen = self._conn, self._pongs
        if conn is None:
            raise LookupError("no connection is open")
        try:
            conn.send(_PING)
        except (ConnectionClosed, OSError) as error:
            raise TransportError(f"the WebSocket closed: {error}") from error
        with self._pong:
            if not self._pong.wait_for(lambda: self._pongs > seen, timeout):
                raise TransportError(f"no Pong within {timeout} s")

    # -- the reader thread -------------------------------------------------------------------------

    def _set_state(self, state: LiveState) -> None:
        if self._state is state or self._state is LiveState.STOPPED:
            return
        self._state = state
        self._wake()

    def _run(self) -> None:
        transport = self._transport
        attempt = 0
        while not self._stop.is_set():
            self._set_state(LiveState.CONNECTING)
            went_live = False
            try:
                conn = transport.connect()
            except (WebSocketException, OSError, TimeoutError) as error:
                self._failed(f"cannot open the WebSocket: {type(error).__name__}: {error}")
            else:
                with conn:
                    went_live = self._serve(conn)
            if self._stop.is_set():
                break
            if went_live:
                attempt = 0
            self._set_state(LiveState.DOWN)
            if not went_live:
                self._failed_attempts += 1
            self._stop.wait(transport.reconnect.delay(attempt))
            attempt += 1

    def _failed(self, problem: str) -> None:
        if problem != self.last_problem:
            logger.info("store %r: %s (retrying with backoff)", self._transport.store_id, problem)
        self.last_problem = problem

    def _serve(self, conn: ClientConnection) -> bool:
        """Run one connection until it ends; True if its pull caught up (the backoff starts over)."""
        transport = self._transport
        with self._lock:
            if self._stop.is_set():
                conn.close()
                return False
            self._generation += 1
            generation = self._generation
            self._conn = conn
            self.connections += 1
        went_live = False
        wait_for_resume = False
        try:
            cursor = self._cursor()
            check = StreamCheck(cursor)
            pull_id = next_request_id()
            with self._lock:
                self._pull_id = pull_id
            conn.send(_PING)
            conn.send(
                ws_request(pull_id, WS_PULL, transport.store_id, transport.payload, pull_live_fields(cursor))
            )
            self._set_state(LiveState.CATCHING_UP)
            heard = False
            next_ping = time.monotonic() + transport.ping_interval
            while not self._stop.is_set():
                wait = next_ping - time.monotonic()
                if wait <= 0:
                    if not heard:
                        raise _FaultError(f"no frame from the backend for {transport.ping_interval} s")
                    conn.send(_PING)
                    heard = False
                    next_ping = time.monotonic() + transport.ping_interval
                    continue
                try:
                    text = conn.recv(timeout=wait)
                except TimeoutError:
                    continue
                heard = True
                if self._frame(conn, text, generation, pull_id, check):
                    went_live = True
                    self._failed_attempts = 0
        except _EndedError as ended:  # a live pull never ends: pull again, with backoff
            wait_for_resume = ended.failed
            went_live = False
        except _FaultError as fault:  # with backoff: a faulty backend would fault again at once
            went_live = False
            self.last_problem = str(fault)
            logger.warning("store %r: %s; reconnecting", transport.store_id, fault)
        except (ConnectionClosed, OSError) as error:
            if not self._stop.is_set():
                self._failed(f"the WebSocket closed: {error}")
        except Exception as error:  # a bug here must not leave the engine waiting on a dead pull
            logger.exception("store %r: the live pull failed unexpectedly; reconnecting", transport.store_id)
            self.last_problem = f"{type(error).__name__}: {error}"
            went_live = False
        finally:
            with self._lock:
                self._conn = None
                self._pull_id = None
                waiters = list(self._waiters.values())
            for waiter in waiters:
                waiter.error = TransportError("the WebSocket closed before the answer came")
                waiter.done.set()
            conn.close()
        if wait_for_resume:
            self._set_state(LiveState.DOWN)
            self._resume.wait()
        with self._lock:
            restarted = generation in self._dropped  # the engine found a gap in its pages
        return went_live and not restarted

    def _frame(
        self, conn: ClientConnection, text: str | bytes, generation: int, pull_id: str, check: StreamCheck
    ) -> bool:
        """Handle one frame; True when it brought the pull's last stored page (caught up)."""
        try:
            message = jsoncodec.loads(text)
        except ValueError:
            raise _FaultError(f"a frame that is not JSON: {str(text)[:200]!r}") from None
        if not isinstance(message, dict):
            raise _FaultError(f"a frame that is not a message: {str(text)[:200]!r}")
        tag = message.get("_tag")
        if tag == "Pong":
            with self._pong:
                self._pongs += 1
                self._pong.notify_all()
            return False
        request_id = message.get("requestId")
        if tag == "Chunk" and request_id == pull_id:
            try:
                pages = pull_pages([message])
            except (KeyError, TypeError, AttributeError) as error:
                raise _FaultError(f"a malformed pull chunk ({type(error).__name__}: {error})") from None
            problem = check.check(pages)
            if problem is not None:
                raise _FaultError(f"the live pull is not exactly once, in order: {problem}")
            with self._lock:
                self._items.append(LivePages(generation, pages))
            conn.send(jsoncodec.dumps({"_tag": "Ack", "requestId": pull_id}))
            caught_up = self._state is LiveState.CATCHING_UP and any(page.is_last for page in pages)
            if caught_up:
                self._set_state(LiveState.LIVE)
            self._wake()
            return caught_up
        if tag == "Exit" and request_id == pull_id:
            failure = exit_error(message.get("exit"))
            if isinstance(failure, ProtocolError):
                logger.info("store %r: the live pull failed: %r", self._transport.store_id, failure)
                self._resume.clear()
                with self._lock:
                    self._items.append(LiveFailure(generation, failure))
                self._wake()
                raise _EndedError(failed=True)
            if failure is not None:
                raise _FaultError(f"the live pull failed: {failure}")
            logger.info("store %r: the backend ended the live pull; pulling again", self._transport.store_id)
            raise _EndedError(failed=False)
        if tag == "Exit":
            with self._lock:
                waiter = self._waiters.get(str(request_id))
            if waiter is not None:
                waiter.exit = message.get("exit")
                waiter.done.set()
            return False
        if tag == "Defect":
            raise _FaultError(f"the backend reported a defect: {message.get('defect')!r}")
        return False  # Chunks of requests this client no longer knows, unknown tags: ignored


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
                conn.send(_PING)
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
