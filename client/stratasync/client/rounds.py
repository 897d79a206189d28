"""The phases of a sync round: pull, merge and push, each a method that can be driven on its own.

In the manner of Replicache's ``beginPull`` / ``handlePullResponse``:

1. :meth:`SyncRounds.pull` asks the backend for the events after the upstream head (network
   only, no lock held while waiting);
2. :meth:`Rebaser.apply_pulled <stratasync.client.rebase.Rebaser.apply_pulled>` merges one
   response into the local state (confirm, apply, or rebase) and returns a ``MergeOutcome``;
   :meth:`SyncRounds.pull_until_current` repeats 1 and 2 until a response brings nothing new;
3. :meth:`SyncRounds.push_pending` pushes the pending events in chunks and confirms each one the
   backend took; it returns False when the backend was ahead (``ServerAheadError``: pull again).

A ``BackendIdMismatchError`` in any phase resets the local store onto the new backend (see
:meth:`Rebaser.reset_for_new_backend <stratasync.client.rebase.Rebaser.reset_for_new_backend>`).
:meth:`SyncRounds.round` is one round of them.

With a live pull (:class:`~stratasync.client.transport.LiveFeed`), :meth:`SyncRounds.apply_live`
is phase 2 for the pages it delivers (the same merge, checked to continue the upstream head
exactly; a page that does not makes the live pull start again from the real cursor), and
:meth:`SyncRounds.live_round` pushes once the live pull has caught up.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from stratasync.client import jsoncodec
from stratasync.client.errors import (
    BackendIdMismatchError,
    InvalidRequestError,
    PushRefusedError,
    ServerAheadError,
)
from stratasync.client.events import LoggedEvent
from stratasync.client.rebase import BackendResetPolicy, Rebaser
from stratasync.client.transport import (
    Cursor,
    LiveFailure,
    LiveFeed,
    LiveState,
    PullPage,
    SyncTransport,
)
from stratasync.protocol.limits import MAX_PUSH_EVENTS, MAX_REQUEST_BYTES

#: Room left in a push body for the envelope around the events.
PUSH_ENVELOPE_BYTES = 10_000
#: Live pages are merged in transactions of at most about this many events.
LIVE_MERGE_EVENTS = 5_000


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


class SyncRounds:
    """The phases of a round for one local store (through its :class:`Rebaser`) over ``transport``
    (see the module docstring); :class:`~stratasync.client.sync.SyncEngine` runs them."""

    def __init__(
        self, rebaser: Rebaser, transport: SyncTransport, *, on_backend_reset: BackendResetPolicy = "reset"
    ) -> None:
        self.rebaser = rebaser
        self.db = rebaser.db
        self.transport = transport
        self.on_backend_reset = on_backend_reset
        #: Serializes rounds, bootstraps and discards: one of them changes the store at a time.
        self.lock = threading.Lock()
        #: The live pull of the background thread, restarted by :meth:`reset`.
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


__all__ = ["LIVE_MERGE_EVENTS", "PUSH_ENVELOPE_BYTES", "SyncRounds", "check_deadline", "push_chunk"]
