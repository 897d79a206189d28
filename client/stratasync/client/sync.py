"""The sync loop: rounds of pull, merge and push against a backend, with retries and backoff.

A round has phases, each a method that can be driven (and tested) on its own, in the manner of
Replicache's ``beginPull`` / ``handlePullResponse``:

1. :meth:`SyncEngine.pull` asks the backend for the events after the upstream head (network
   only, no lock held while waiting);
2. :meth:`Rebaser.apply_pulled <stratasync.client.rebase.Rebaser.apply_pulled>` merges one
   response into the local state (confirm, apply, or rebase) and returns a ``MergeOutcome``;
   :meth:`SyncEngine.pull_until_current` repeats 1 and 2 until a response brings nothing new;
3. :meth:`SyncEngine.push_pending` pushes the pending events in chunks and confirms each one the
   backend took; it returns False when the backend was ahead (``ServerAheadError``: pull again).

A ``BackendIdMismatchError`` in any phase resets the local store onto the new backend (see
:meth:`Rebaser.reset_for_new_backend <stratasync.client.rebase.Rebaser.reset_for_new_backend>`).
:meth:`SyncEngine.sync` runs rounds until caught up; :meth:`SyncEngine.start` runs them in a
background thread.

With a :class:`~stratasync.client.transport.LiveTransport` (WebSocket), the background thread
keeps a live pull open instead of polling: :meth:`SyncEngine.apply_live` is phase 2 for the pages
it delivers (the same merge, checked to continue the upstream head exactly; a page that does not
makes the live pull start again from the real cursor), and :meth:`SyncEngine.live_round` pushes
once the live pull has caught up. While the live pull is down after a failed attempt, the thread
polls as without one.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stratasync.client import jsoncodec
from stratasync.client.errors import (
    REFUSALS,
    BackendIdMismatchError,
    InvalidRequestError,
    PushRefusedError,
    ServerAheadError,
    SyncError,
    TransportError,
    UnknownError,
)
from stratasync.client.events import LoggedEvent
from stratasync.client.rebase import BackendResetPolicy, Rebaser
from stratasync.client.transport import (
    Cursor,
    LiveFailure,
    LiveFeed,
    LiveState,
    LiveTransport,
    PullPage,
    SyncTransport,
)
from stratasync.protocol.limits import MAX_PUSH_EVENTS, MAX_REQUEST_BYTES

logger = logging.getLogger("stratasync.client")

#: Room left in a push body for the envelope around the events.
PUSH_ENVELOPE_BYTES = 10_000
#: Live pages are merged in transactions of at most about this many events.
LIVE_MERGE_EVENTS = 5_000
#: After a push refused while live: how long the live pull has to bring the newer events before
#: the next round pulls over HTTP.
LIVE_AHEAD_WAIT = 2.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for network errors, timeouts and ``UnknownError``.

    A round refused with ``ServerAheadError`` (others pushed first) is retried at once while the
    rounds bring new upstream events (real contention: the next push may win). When the backend
    keeps refusing and nothing new arrives, the rounds back off with the same full jitter,
    capped at :attr:`contention_max_seconds`.
    """

    initial_seconds: float = 0.1
    max_seconds: float = 10.0
    contention_max_seconds: float = 1.0

    def delay(self, attempt: int) -> float:
        """The wait before retry number ``attempt + 1`` after a failure."""
        return random.uniform(0, min(self.max_seconds, self.initial_seconds * 2**attempt))

    def contention_delay(self, refusals: int) -> float:
        """The wait after ``refusals`` refused rounds in a row that brought nothing new (0 for one)."""
        if refusals <= 1:
            return 0.0
        cap = min(self.max_seconds, self.contention_max_seconds, self.initial_seconds * 2 ** (refusals - 2))
        return random.uniform(0, cap)


def push_chunk(pending: list[LoggedEvent]) -> list[LoggedEvent]:
    """The leading pending events that fit in one push request (at least one)."""
    chunk: list[LoggedEvent] = []
    size = 0
    for event in pending:
        size += len(jsoncodec.dumps(event.encoded()).encode()) + 1
        if chunk and size > MAX_REQUEST_BYTES - PUSH_ENVELOPE_BYTES:
            break
        chunk.append(event)
    return chunk


def check_deadline(deadline: float | None, doing: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise TimeoutError(f"sync timed out while {doing}")


class SyncEngine:
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
        self.rebaser = rebaser
        self.db = rebaser.db
        self.transport = transport
        self.on_backend_reset = on_backend_reset
        self.report = report
        self.poll_interval = poll_interval
        self.retry = retry or RetryPolicy()
        self.name = name
        self.label = label
        self.last_error: Exception | None = None
        #: Serializes rounds, bootstraps and discards: one of them changes the store at a time.
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._live: LiveFeed | None = None

    # -- phases ----------------------------------------------------------------------------------

    def pull(self) -> list[PullPage]:
        """Phase 1: one pull request for the events after the upstream head (no lock held)."""
        backend_id = self.db.backend_id()
        cursor = (backend_id, self.db.upstream_head()) if backend_id is not None else None
        pages = self.transport.pull(cursor)
        if pages and backend_id is None:
            self.rebaser.remember_backend_id(pages[-1].backend_id)
        return pages

    def pull_until_current(self, deadline: float | None = None) -> int:
        """Phases 1 and 2 until a response brings nothing new; returns the number of events merged.

        Raises TimeoutError before a request that would start after ``deadline``.
        """
        merged = 0
        while True:
            pages = self.pull()
            events = [event for page in pages for event in page.events]
            created = [stamp for page in pages for stamp in page.created_at]
            if not events:
                return merged
            self.rebaser.apply_pulled(events, created)
            merged += len(events)
            check_deadline(deadline, "pulling")

    def push_pending(self, deadline: float | None = None) -> bool:
        """Phase 3: push pending events until none are left; False if the backend was ahead.

        A chunk refused with ``InvalidRequestError`` is pushed again in halves, down to the one
        event the backend refuses: :class:`PushRefusedError` names it.
        """
        limit = MAX_PUSH_EVENTS
        while True:
            with self.db.lock:
                chunk = push_chunk(self.db.pending_events(limit=limit))
                backend_id = self.db.backend_id()
            if not chunk:
                return True
            check_deadline(deadline, "pushing")
            try:
                self.transport.push([event.encoded() for event in chunk], backend_id)
            except ServerAheadError:
                return False
            except InvalidRequestError as error:
                if len(chunk) == 1:
                    raise PushRefusedError(chunk[0], error) from error
                limit = len(chunk) // 2
                continue
            self.rebaser.confirm_pushed(chunk)

    def cursor(self) -> Cursor | None:
        """Where the next pull starts: ``(backend id, upstream head)``, None before the first pull."""
        with self.db.lock:
            backend_id = self.db.backend_id()
            return (backend_id, self.db.upstream_head()) if backend_id is not None else None

    def apply_live(self, live: LiveFeed) -> int:
        """Phase 2 for a live pull: merge the pages it delivered so far; returns the events merged.

        The caller holds :attr:`lock`. Pages must continue the upstream head exactly (after
        skipping events the store has: a reconnected pull starts again from the cursor, and this
        client's own pushes come back once confirmed); a page that does not makes the live pull
        drop that connection and pull again from the real cursor. A pull the backend failed
        raises its error, except ``BackendIdMismatchError``, which resets the store.
        """
        merged = 0
        while True:
            items = live.take()
            if not items:
                return merged
            dropped: set[int] = set()
            group: list[PullPage] = []
            generation = -1
            for item in items:
                if item.generation in dropped:
                    continue
                if group and (
                    isinstance(item, LiveFailure)
                    or item.generation != generation
                    or sum(len(page.events) for page in group) >= LIVE_MERGE_EVENTS
                ):
                    merged += self._merge_live(live, generation, group, dropped)
                    group = []
                if isinstance(item, LiveFailure):
                    self._live_failed(live, item)
                    continue
                generation = item.generation
                group.extend(item.pages)
            if group:
                merged += self._merge_live(live, generation, group, dropped)

    def _merge_live(self, live: LiveFeed, generation: int, pages: list[PullPage], dropped: set[int]) -> int:
        """Merge ``pages`` up to the first event that does not continue the upstream head exactly;
        from there on, drop ``generation`` (its connection pulls again from the real cursor)."""
        with self.db.lock:
            backend_id = self.db.backend_id()
            upstream = self.db.upstream_head()
        expected = backend_id if backend_id is not None else pages[0].backend_id
        problem = None
        events: list[dict[str, Any]] = []
        created: list[str | None] = []
        last = upstream
        for page in pages:
            if page.backend_id != expected:
                problem = f"live pages of backend {page.backend_id!r}, the store is on {expected!r}"
                break
            for event, stamp in zip(page.events, page.created_at, strict=True):
                if not events and event["seqNum"] <= upstream:
                    continue  # known: a reconnected pull starts again from the cursor, echoes of pushes
                if event["parentSeqNum"] != last or event["seqNum"] <= last:
                    problem = f"live event #{event['seqNum']} follows #{event['parentSeqNum']}, not #{last}"
                    break
                events.append(event)
                created.append(stamp)
                last = event["seqNum"]
            if problem is not None:
                break
        if problem is not None:
            dropped.add(generation)
            live.restart(generation, problem)
        if backend_id is None and (problem is None or events):
            self.rebaser.remember_backend_id(expected)
        if events:
            self.rebaser.apply_pulled(events, created)
        return len(events)

    def _live_failed(self, live: LiveFeed, failure: LiveFailure) -> None:
        if isinstance(failure.error, BackendIdMismatchError):
            try:
                self.reset(failure.error)
            finally:
                live.resume()
            return
        live.resume()
        raise failure.error

    def live_round(self, live: LiveFeed) -> bool:
        """Merge what the live pull delivered; once it caught up, push. True when caught up."""
        with self.lock:
            try:
                self.apply_live(live)
                if live.state is not LiveState.LIVE:
                    return True  # catching up: pending events wait for the pull's last stored page
                return self.push_pending()
            except BackendIdMismatchError as error:
                self.reset(error)
                return False

    def reset(self, error: BackendIdMismatchError) -> None:
        """The backend's id changed: reset onto the new one (the ``on_backend_reset`` policy).

        A live pull then starts again (its queued pages are of the old backend).
        """
        self.rebaser.reset_for_new_backend(error, self.on_backend_reset)
        live = self._live
        if live is not None:
            live.restart(None, "the backend was reset")

    def round(self, deadline: float | None = None) -> bool:
        """One round: pull, then push; True when caught up (nothing pending, nothing refused)."""
        with self.lock:
            try:
                self.pull_until_current(deadline)
                return self.push_pending(deadline)
            except BackendIdMismatchError as error:
                self.reset(error)
                return False

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
