"""The live pull over WebSocket: the connection, its reader thread, its watchdog and its messages.

A :class:`LivePull` (made by :meth:`SyncWsTransport.open_live
<stratasync.client.wstransport.SyncWsTransport.open_live>`, the
:class:`~stratasync.client.transport.LiveFeed` the sync engine reads) keeps one live pull open.

**Threads.** The reader thread (``stratasync-ws-<store id>``) owns the connection: it receives
frames, checks that each page continues the last one, queues the pages and wakes the sync engine,
answers each ``Chunk`` with an ``Ack``, sends a ``Ping`` every :attr:`SyncWsTransport.ping_interval
<stratasync.client.wstransport.SyncWsTransport.ping_interval>` seconds and drops a connection that
stayed silent for a whole interval. The sync engine's thread takes the queued pages and merges
them (subscriptions fire there, as for polled pages).

**Reconnects.** A closed, dead or faulty connection (a page that repeats or skips events) is
dropped and opened again after a jittered exponential backoff (:attr:`SyncWsTransport.reconnect
<stratasync.client.wstransport.SyncWsTransport.reconnect>`, from 0-0.5 s up to 0-30 s; back to the
start once a connection caught up), and the new pull starts from the store's real cursor. While
the socket is down after a failed attempt (refused upgrade, no WebSocket on the server,
unreachable), the engine polls over HTTP.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection

from stratasync.client import jsoncodec
from stratasync.client.errors import ProtocolError, TransportError
from stratasync.client.transport import (
    Cursor,
    LiveFailure,
    LiveItem,
    LivePages,
    LiveState,
    pull_pages,
)
from stratasync.client.wsprotocol import (
    PING,
    WS_PULL,
    StreamCheck,
    exit_error,
    next_request_id,
    pull_live_fields,
    ws_request,
)

if TYPE_CHECKING:
    from stratasync.client.wstransport import SyncWsTransport

logger = logging.getLogger("stratasync.client")


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
            conn.send(PING)
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
            conn.send(PING)
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
                    conn.send(PING)
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


__all__ = ["LivePull"]
