"""The sync loop: rounds of pull, merge and push against a backend, with retries and backoff.

A round's phases (:meth:`SyncEngine.pull`, the merge, :meth:`SyncEngine.push_pending`, in the
manner of Replicache's ``beginPull`` / ``handlePullResponse``) are in
:mod:`~stratasync.client.rounds`, each a method that can be driven (and tested) on its own; the
backoff is :class:`~stratasync.client.retry.RetryPolicy`. Here :meth:`SyncEngine.sync` runs
rounds until caught up; :meth:`SyncEngine.start` runs them in a background thread.

With a :class:`~stratasync.client.transport.LiveTransport` (WebSocket), the background thread
keeps a live pull open instead of polling: :meth:`SyncEngine.apply_live` is phase 2 for the pages
it delivers (the same merge, checked to continue the upstream head exactly; a page that does not
makes the live pull start again from the real cursor), and :meth:`SyncEngine.live_round` pushes
once the live pull has caught up. While the live pull is down after a failed attempt, the thread
polls as without one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from stratasync.client.errors import (
    REFUSALS,
    SyncError,
    TransportError,
    UnknownError,
)
from stratasync.client.rebase import BackendResetPolicy, Rebaser
from stratasync.client.retry import RetryPolicy
from stratasync.client.rounds import LIVE_MERGE_EVENTS, SyncRounds, check_deadline, push_chunk
from stratasync.client.transport import LiveFeed, LiveTransport, SyncTransport

logger = logging.getLogger("stratasync.client")

#: After a push refused while live: how long the live pull has to bring the newer events before
#: the next round pulls over HTTP.
LIVE_AHEAD_WAIT = 2.0


class SyncEngine(SyncRounds):
    """Syncs one local store (through its :class:`Rebaser`) with a backend over ``transport``.

    ``report(error)`` is told of the error that stops syncing (the store's ``on_sync_error``);
    ``last_error`` holds the last error met, retried or not (None after a round that caught up).
    ``name`` names the background thread; ``label`` the store in messages.
    """

    def __init__(
        self,
        rebaser: Rebaser,
        transport: SyncTransport,
        *,
        on_backend_reset: BackendResetPolicy = "reset",
        report: Callable[[Exception], None] = lambda error: None,
        poll_interval: float = 5.0,
        retry: RetryPolicy | None = None,
        name: str = "stratasync",
        label: str = "store",
    ) -> None:
        super().__init__(rebaser, transport, on_backend_reset=on_backend_reset)
        self.report = report
        self.poll_interval = poll_interval
        self.retry = retry or RetryPolicy()
        self.name = name
        self.label = label
        self.last_error: Exception | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()

    # -- loops -----------------------------------------------------------------------------------

    def _position(self) -> tuple[str | None, int]:
        """(backend id, upstream head): a refused round that changed it made progress."""
        with self.db.lock:
            return self.db.backend_id(), self.db.upstream_head()

    def _stopped(self, error: Exception) -> None:
        self.last_error = error
        try:
            self.report(error)
        except Exception:  # the app's handler must not hide the error or kill the thread
            logger.exception("on_sync_error callback failed")

    def sync(self, timeout: float = 60.0) -> None:
        """Run rounds until caught up; see :meth:`Store.sync <stratasync.client.Store.sync>`."""
        deadline = time.monotonic() + timeout
        attempt = 0
        refusals = 0
        try:
            while True:
                failure: Exception | None = None
                try:
                    before = self._position()
                    if self.round(deadline):
                        self.last_error = None
                        return
                    attempt = 0
                    refusals = 1 if self._position() != before else refusals + 1
                    delay = self.retry.contention_delay(refusals)
                except (TransportError, UnknownError) as error:
                    if isinstance(error, REFUSALS):
                        raise  # retrying the same request cannot help
                    self.last_error = failure = error
                    delay = self.retry.delay(attempt)
                    attempt += 1
                remaining = deadline - time.monotonic()
                if failure is not None and delay > remaining:
                    raise failure
                if delay > 0:
                    time.sleep(max(0.0, min(delay, remaining)))
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"{self.label} did not catch up within {timeout} s")
        except Exception as error:
            self._stopped(error)
            raise

    @property
    def running(self) -> bool:
        """True while the background sync thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def live(self) -> LiveFeed | None:
        """The live pull of the background thread (None without one, or with a polling transport)."""
        return self._live

    def start(self) -> None:
        """Run rounds in a background thread; see :meth:`stratasync.client.Store.start_sync`."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._forever, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Start the next background round now (a commit happened)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background thread (pending events stay pending)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _forever(self) -> None:
        live = None
        if isinstance(self.transport, LiveTransport):
            live = self.transport.open_live(self.cursor, self.wake)
            self._live = live
            live.start()
        try:
            self._loop(live)
        finally:
            if live is not None:
                self._live = None
                live.stop()

    def _loop(self, live: LiveFeed | None) -> None:
        attempt = 0
        refusals = 0
        unexpected = 0
        poll_once = False  # the live pull did not bring what a refused push said was there
        while not self._stop.is_set():
            self._wake.clear()
            polling = live is None or live.polling or poll_once
            try:
                before = self._position()
                if live is None:
                    caught_up = self.round()
                elif polling:
                    with self.lock:
                        self.apply_live(live)
                    caught_up = self.round()
                    poll_once = False
                else:
                    caught_up = self.live_round(live)
                attempt = unexpected = 0
                self.last_error = None
            except (*REFUSALS, SyncError) as error:
                logger.error("%s: sync stopped: %s", self.label, error)
                self._stopped(error)
                return
            except (TransportError, UnknownError) as error:
                self.last_error = error
                logger.info("sync failed (%s); retrying", error)
                self._stop.wait(self.retry.delay(attempt))
                attempt += 1
                continue
            except Exception as error:  # a bug: keep the app alive, report and retry with backoff
                self.last_error = error
                if unexpected == 0:
                    logger.exception("sync failed unexpectedly; retrying with backoff")
                else:
                    logger.warning("sync failed unexpectedly again (%d times): %r", unexpected + 1, error)
                unexpected += 1
                self._stop.wait(self.retry.delay(attempt))
                attempt += 1
                continue
            if caught_up:
                refusals = 0
                self._wake.wait(self.poll_interval)  # live: a page, a commit or a state change wakes it
            elif live is not None and not polling:  # live: the pull brings what the backend has
                refusals = 1 if self._position() != before else refusals + 1
                if not self._wake.wait(LIVE_AHEAD_WAIT):
                    poll_once = True
            else:  # the backend was ahead: pull and push again now; back off if nothing new came
                refusals = 1 if self._position() != before else refusals + 1
                self._stop.wait(self.retry.contention_delay(refusals))


__all__ = [
    "LIVE_AHEAD_WAIT",
    "LIVE_MERGE_EVENTS",
    "RetryPolicy",
    "SyncEngine",
    "check_deadline",
    "push_chunk",
]
