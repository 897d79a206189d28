"""The Store: commit events locally, query and subscribe, and sync with a backend.

``commit`` writes events to the local eventlog and materializes them in one SQLite
transaction. Synced events stay *pending* until the backend has them; the sync engine pushes
them, pulls everyone else's, and rebases pending events on top when upstream moved on.
"""

from __future__ import annotations

import json
import logging
import math
import random
import secrets
import string
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from stratasync.client.bootstrap import BootstrapProgress, bootstrap
from stratasync.client.localdb import LocalDatabase, LoggedEvent, bindable_params
from stratasync.client.merge import plan_merge
from stratasync.client.schema import Event, EventDef, Schema
from stratasync.client.transport import SyncHttpTransport, SyncTransport, TransportError
from stratasync.protocol.errors import (
    BackendIdMismatchError,
    ForbiddenError,
    InvalidRequestError,
    ServerAheadError,
    UnauthorizedError,
    UnknownError,
)
from stratasync.protocol.limits import MAX_PUSH_EVENTS, MAX_REQUEST_BYTES

logger = logging.getLogger("stratasync.client")

M = TypeVar("M", bound=BaseModel)
UnknownEventPolicy = Literal["warn", "ignore", "fail"] | Callable[[dict[str, Any]], None]

_ID_ALPHABET = string.ascii_letters + string.digits
#: Refusals that retrying cannot change (the app must fix its token or its events).
_REFUSALS = (UnauthorizedError, ForbiddenError, InvalidRequestError)
#: Room left in a push body for the envelope around the events.
_PUSH_ENVELOPE_BYTES = 10_000
#: The largest seqNum a JS client can hold exactly (``Number.MAX_SAFE_INTEGER``).
MAX_SEQ_NUM = 2**53 - 1


def _random_id(length: int = 6) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


class SyncError(Exception):
    """Syncing stopped for a reason that retrying cannot fix."""


class UnknownEventError(SyncError):
    """An upstream event's name is not in this app's schema (policy ``"fail"``)."""


class BackendResetError(SyncError):
    """The backend was reset (its id changed) and the policy is ``"fail"``: nothing was changed locally.

    :attr:`pending` holds the events committed here that the old backend never confirmed. To go
    on, set ``store.on_backend_reset = "reset"`` and sync (they are kept and pushed to the new
    backend), or read them from here and start another store.
    """

    def __init__(
        self, message: str, *, pending: Sequence[LoggedEvent], backend_id: str | None, new_backend_id: str
    ) -> None:
        super().__init__(message)
        self.pending: list[LoggedEvent] = list(pending)
        self.backend_id = backend_id
        self.new_backend_id = new_backend_id


@dataclass(frozen=True)
class BackendReset:
    """What a backend reset did (passed to an ``on_backend_reset`` callback).

    ``pending`` are the unconfirmed events as they were before the reset; ``kept`` the same
    events renumbered from 1 in the emptied local eventlog, still pending: the next pull rebases
    them onto the new backend's log, and the next push sends them.
    """

    backend_id: str | None
    new_backend_id: str
    pending: list[LoggedEvent]
    kept: list[LoggedEvent]


BackendResetPolicy = Literal["reset", "fail"] | Callable[[BackendReset], None]


class MaterializerError(SyncError):
    """A materializer (or the validation of an event's args) failed while syncing.

    The transaction it happened in was rolled back: the eventlog and the tables are as they were
    before that pull, reset or discard. :attr:`event` is the event as the local eventlog holds it
    (for a pending event: its current seqNum, which :meth:`Store.discard_pending` takes), or as it
    came from upstream. :attr:`pending` tells which; :attr:`cause` is the original exception.
    """

    def __init__(self, event: LoggedEvent, cause: BaseException, context: str) -> None:
        kind = "pending event" if event.pending else "upstream event"
        super().__init__(
            f"materializer of {event.name!r} failed for {kind} #{event.seq_num} of client "
            f"{event.client_id!r} ({context}): {type(cause).__name__}: {cause}"
        )
        self.event = event
        self.cause = cause
        self.context = context

    @property
    def name(self) -> str:
        """The event's name."""
        return self.event.name

    @property
    def seq_num(self) -> int:
        """The event's seqNum (for a pending event: in the local eventlog now)."""
        return self.event.seq_num

    @property
    def client_id(self) -> str:
        """The clientId of the client that committed the event."""
        return self.event.client_id

    @property
    def pending(self) -> bool:
        """True for an event committed here and not confirmed yet (it can be discarded)."""
        return self.event.pending


class PushRefusedError(SyncError):
    """The backend refused to take a pending event (``InvalidRequestError``): retrying cannot help.

    :attr:`event` is the refused event (the backend answered the same to that event pushed
    alone), :attr:`cause` the backend's error. Every later pending event waits behind it:
    discard it with :meth:`Store.discard_pending` (or ship an app version that fixes it).
    """

    def __init__(self, event: LoggedEvent, cause: InvalidRequestError) -> None:
        super().__init__(
            f"the backend refused pending event #{event.seq_num} {event.name!r} of client "
            f"{event.client_id!r}: {cause}"
        )
        self.event = event
        self.cause = cause


def _from_wire(event: dict[str, Any]) -> LoggedEvent:
    """An upstream (confirmed) event as a :class:`LoggedEvent`, for errors that name it."""
    return LoggedEvent(
        seq_num=event.get("seqNum", 0),
        parent_seq_num=event.get("parentSeqNum", 0),
        name=event.get("name", "?"),
        args=event.get("args"),
        client_id=event.get("clientId", "?"),
        session_id=event.get("sessionId", "?"),
        pending=False,
    )


def _check_strict_json(value: Any, path: str = "args") -> None:
    """Raise ValueError for what strict JSON cannot carry (NaN, ±Infinity, integers beyond a double)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path} is {value!r}, which JSON cannot carry")
    elif isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            raise ValueError(f"{path} is an integer too large for JSON readers (Infinity)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path} has a key {key!r} that is not a string")
            _check_strict_json(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_strict_json(item, f"{path}[{index}]")
    else:
        raise ValueError(f"{path} is a {type(value).__name__}, which is not JSON")


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


class Subscription:
    """A live query: ``callback(rows)`` now and whenever a table the query reads has changed."""

    def __init__(
        self,
        store: Store,
        statement: str,
        params: Sequence[Any],
        callback: Callable[[list[Any]], None],
        model: type[BaseModel] | None,
    ) -> None:
        self._store = store
        self.statement = statement
        self.params = tuple(params)
        self.callback = callback
        self.model = model
        self.tables = store._db.tables_read_by(statement, self.params)

    def refresh(self) -> None:
        self.callback(self._store.query(self.statement, self.params, model=self.model))

    def unsubscribe(self) -> None:
        """Stop calling back."""
        self._store._drop_subscription(self)


class Store:
    """A local-first store: a SQLite file (or memory) that syncs its eventlog with a backend."""

    def __init__(
        self,
        schema: Schema,
        store_id: str,
        path: str = ":memory:",
        *,
        backend_url: str | None = None,
        payload: Any = None,
        headers: dict[str, str] | None = None,
        transport: SyncTransport | None = None,
        unknown_events: UnknownEventPolicy = "warn",
        on_backend_reset: BackendResetPolicy = "reset",
        on_sync_error: Callable[[Exception], None] | None = None,
        poll_interval: float = 5.0,
        retry: RetryPolicy | None = None,
        session_id: str | None = None,
        synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL",
    ) -> None:
        self.schema = schema
        self.store_id = store_id
        self._db = LocalDatabase(path, schema, synchronous=synchronous)
        with self._db.transaction():
            stored_store = self._db.meta("store_id")
            if stored_store is not None and stored_store != store_id:
                raise ValueError(f"{path} holds store {stored_store!r}, not {store_id!r}")
            self._db.set_meta("store_id", store_id)
            client_id = self._db.meta("client_id")
            if client_id is None:
                client_id = _random_id()
                self._db.set_meta("client_id", client_id)
        self.client_id: str = client_id
        self.session_id: str = session_id or _random_id()
        if transport is None and backend_url is not None:
            transport = SyncHttpTransport(backend_url, store_id, payload=payload, headers=headers)
        self._transport = transport
        self.unknown_events = unknown_events
        self.on_backend_reset = on_backend_reset
        #: Called with the exception that stopped syncing: the one a :meth:`sync` call raises
        #: (in the caller's thread) or the one that ended the background sync thread (in that
        #: thread). Errors that are retried (network, ``UnknownError``) only set
        #: :attr:`last_sync_error`.
        self.on_sync_error = on_sync_error
        self.poll_interval = poll_interval
        self.retry = retry or RetryPolicy()
        self._subscriptions: list[Subscription] = []
        self._subscriptions_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._warned_unknown: set[str] = set()
        #: The last error syncing met (retried or not), for apps to show; None after a round
        #: that caught up.
        self.last_sync_error: Exception | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop syncing and close the database."""
        self.stop_sync()
        if self._transport is not None:
            self._transport.close()
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- state -------------------------------------------------------------------------------

    @property
    def upstream_head(self) -> int:
        """The seqNum of the newest event the backend has confirmed to this client."""
        with self._db.lock:
            return int(self._db.meta("upstream_head") or 0)

    @property
    def local_head(self) -> int:
        """The seqNum of the newest event in the local eventlog (pending or not)."""
        with self._db.lock:
            row = self._db.conn.execute("SELECT MAX(seq) AS head FROM __ss_eventlog").fetchone()
            return max(int(row["head"] or 0), self.upstream_head)

    @property
    def backend_id(self) -> str | None:
        with self._db.lock:
            return self._db.meta("backend_id")

    @property
    def rebase_generation(self) -> int:
        """How often pending events were rebased onto new upstream events."""
        with self._db.lock:
            return int(self._db.meta("rebase_generation") or 0)

    def pending_events(self) -> list[LoggedEvent]:
        """Events committed here that the backend has not confirmed yet, in order."""
        with self._db.lock:
            return self._db.events(after=self.upstream_head, pending_only=True)

    def events(self, *, after: int = 0, limit: int | None = None) -> list[LoggedEvent]:
        """The synced eventlog (confirmed, then pending) after ``after``."""
        with self._db.lock:
            return self._db.events(after=after, limit=limit)

    # -- commit, query, subscribe ------------------------------------------------------------

    def commit(self, *events: Event) -> None:
        """Persist ``events`` to the local eventlog and materialize them, in one transaction.

        Raises ValueError, before anything is written, for an event not in the schema or with
        args that strict JSON cannot carry (NaN, Infinity, integers beyond a double's range): the
        backend would refuse them and they would block every later push. A failing materializer
        raises its own exception and nothing is written either. Strings may hold lone surrogates
        (see :func:`~stratasync.client.localdb.bindable`).
        """
        encoded_args = []
        for event in events:
            if self.schema.event(event.name) is not event.definition:
                raise ValueError(f"event {event.name!r} is not part of this store's schema")
            args = event.definition.encode_args(event.args)
            try:
                _check_strict_json(args)
            except ValueError as error:
                raise ValueError(f"event {event.name!r}: {error}") from None
            encoded_args.append(args)
        with self._db.transaction():
            head = self.local_head
            client_events = []
            for event, args in zip(events, encoded_args, strict=True):
                if event.definition.client_only:
                    self._db.set_recording(None)
                    self._db.execute_writes(self.schema.writes_for(event.definition, event.args))
                    client_events.append((event.name, json.dumps(args), self.session_id))
                    continue
                head += 1
                if head > MAX_SEQ_NUM:
                    raise ValueError(f"the eventlog is full: seqNum {head} is beyond 2**53 - 1")
                self._db.set_recording(head)
                self._db.execute_writes(self.schema.writes_for(event.definition, event.args))
                self._db.insert_events(
                    [
                        LoggedEvent(
                            seq_num=head,
                            parent_seq_num=head - 1,
                            name=event.name,
                            args=args,
                            client_id=self.client_id,
                            session_id=self.session_id,
                            pending=True,
                        )
                    ]
                )
            self._db.set_recording(None)
            if client_events:
                self._db.conn.executemany(
                    "INSERT INTO __ss_client_events (name, args, session_id) VALUES (?, ?, ?)", client_events
                )
        self._notify()
        self._wake.set()

    def query(self, statement: str, params: Sequence[Any] = (), *, model: type[M] | None = None) -> list[Any]:
        """Run a read query; rows as ``sqlite3.Row`` or, with ``model``, as pydantic models.

        A str parameter with lone surrogates is bound as tables store it (U+FFFD in their place).
        """
        with self._db.lock:
            try:
                rows = self._db.conn.execute(statement, tuple(params)).fetchall()
            except UnicodeEncodeError:
                rows = self._db.conn.execute(statement, bindable_params(params)).fetchall()
        if model is None:
            return rows
        return [model.model_validate(dict(row)) for row in rows]

    def subscribe(
        self,
        statement: str,
        callback: Callable[[list[Any]], None],
        params: Sequence[Any] = (),
        *,
        model: type[BaseModel] | None = None,
    ) -> Subscription:
        """Call ``callback`` with the query's rows now and after each change to a table it reads."""
        subscription = Subscription(self, statement, params, callback, model)
        with self._subscriptions_lock:
            self._subscriptions.append(subscription)
        subscription.refresh()
        return subscription

    def _drop_subscription(self, subscription: Subscription) -> None:
        with self._subscriptions_lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    def _notify(self) -> None:
        changed = self._db.take_changed_tables()
        if not changed:
            return
        with self._subscriptions_lock:
            affected = [sub for sub in self._subscriptions if sub.tables & changed]
        for subscription in affected:
            try:
                subscription.refresh()
            except Exception:  # a subscriber's bug must not break committing or syncing
                logger.exception("subscription callback failed")

    # -- materialization ---------------------------------------------------------------------

    def _materialize(
        self,
        event: dict[str, Any],
        record_seq: int | None,
        *,
        logged: LoggedEvent | None = None,
        context: str = "applying an upstream event",
    ) -> None:
        """Materialize one encoded event; a failure raises :class:`MaterializerError`.

        ``logged``: the event as the local eventlog holds it (a pending event being re-applied),
        named in the error instead of ``event``.
        """
        definition = self.schema.event(event["name"])
        if definition is None:
            self._unknown_event(event)
            return
        if definition.client_only:
            return
        try:
            args = definition.decode_args(event.get("args"))
            self._db.set_recording(record_seq)
            self._db.execute_writes(self.schema.writes_for(definition, args))
        except Exception as error:
            raise MaterializerError(logged or _from_wire(event), error, context) from error

    def _unknown_event(self, event: dict[str, Any]) -> None:
        policy = self.unknown_events
        if policy == "fail":
            raise UnknownEventError(
                f"unknown event {event['name']!r} (seqNum {event['seqNum']}) from upstream"
            )
        if policy == "warn":
            if event["name"] not in self._warned_unknown:
                self._warned_unknown.add(event["name"])
                warnings.warn(
                    f"stratasync: unknown event {event['name']!r} from upstream (a newer app version?); "
                    "kept in the eventlog, not materialized",
                    stacklevel=2,
                )
        elif callable(policy):
            policy(event)

    def _apply_upstream(
        self, incoming: list[dict[str, Any]], created_at: list[str | None], encoded: list[str] | None = None
    ) -> None:
        """Merge pulled events (after the upstream head) into the local state: confirm or rebase.

        ``encoded``: the events' JSON text as received, where the caller has it (bootstrap).
        """
        with self._db.transaction():
            upstream = self.upstream_head
            first_new = next(
                (i for i, event in enumerate(incoming) if event["seqNum"] > upstream), len(incoming)
            )
            if first_new:  # events the store already has (a retried or overlapping page)
                incoming, created_at = incoming[first_new:], created_at[first_new:]
                encoded = encoded[first_new:] if encoded is not None else None
            if not incoming:
                return
            if incoming[0]["parentSeqNum"] != upstream:
                raise SyncError(
                    f"upstream events start at parent {incoming[0]['parentSeqNum']}, expected {upstream}"
                )
            pending = self._db.events(after=upstream, pending_only=True)
            plan = plan_merge(pending, incoming)
            if plan.confirmed:
                confirmed_through = pending[plan.confirmed - 1].seq_num
                self._db.conn.executemany(
                    "UPDATE __ss_eventlog SET pending = 0, created_at = ? WHERE seq = ?",
                    [(created_at[i], pending[i].seq_num) for i in range(plan.confirmed)],
                )
                self._db.forget_undo_through(confirmed_through)
            new_events = incoming[plan.confirmed :]
            if plan.rebase:
                base = pending[plan.confirmed - 1].seq_num if plan.confirmed else upstream
                self._db.roll_back_after(base)
                self._db.conn.execute("DELETE FROM __ss_eventlog WHERE seq > ?", (base,))
            if new_events and (plan.rebase or plan.confirmed == len(pending)):
                self._db.set_recording(None)
                for event in new_events:
                    self._materialize(event, None)
                self._db.insert_upstream(
                    new_events,
                    created_at[plan.confirmed :],
                    encoded[plan.confirmed :] if encoded is not None else None,
                )
            new_upstream = incoming[-1]["seqNum"]
            if plan.rebase:
                head = new_upstream
                rebased = []
                for old in pending[plan.confirmed :]:
                    head += 1
                    moved = LoggedEvent(
                        seq_num=head,
                        parent_seq_num=head - 1,
                        name=old.name,
                        args=old.args,
                        client_id=old.client_id,
                        session_id=old.session_id,
                        pending=True,
                    )
                    self._materialize(
                        moved.encoded(),
                        head,
                        logged=old,
                        context=f"rebasing it onto upstream event #{new_upstream}",
                    )
                    rebased.append(moved)
                self._db.set_recording(None)
                self._db.insert_events(rebased)
                self._db.set_meta("rebase_generation", str(self.rebase_generation + 1))
            self._db.set_meta("upstream_head", str(new_upstream))
        self._notify()

    def _confirm_pushed(self, pushed: Sequence[LoggedEvent]) -> None:
        with self._db.transaction():
            current = self._db.events(after=self.upstream_head, pending_only=True, limit=len(pushed))
            if [event.seq_num for event in current] != [event.seq_num for event in pushed]:
                return  # state moved on (a reset): the next pull settles it
            self._db.conn.execute(
                "UPDATE __ss_eventlog SET pending = 0 WHERE seq BETWEEN ? AND ?",
                (pushed[0].seq_num, pushed[-1].seq_num),
            )
            self._db.forget_undo_through(pushed[-1].seq_num)
            self._db.set_meta("upstream_head", str(pushed[-1].seq_num))

    def _reset_for_new_backend(self, error: BackendIdMismatchError) -> None:
        """The backend's id changed: start over on the new backend, keeping the pending events.

        In one transaction: the confirmed events and the tables are dropped, the client-only
        events materialized again, then the pending events renumbered from 1 and materialized
        on top. The next pull rebases them onto whatever the new backend has; the next push sends
        them. A crash in between leaves the store as it was before.
        """
        with self._db.lock:
            old_backend = self.backend_id
            pending = self.pending_events()
        if self.on_backend_reset == "fail":
            raise BackendResetError(
                f"the backend was reset ({error}); {len(pending)} pending event(s) not pushed",
                pending=pending,
                backend_id=old_backend,
                new_backend_id=error.expected,
            ) from error
        with self._db.transaction():
            pending = self._db.events(after=self.upstream_head, pending_only=True)
            self._db.reset_state()
            self._replay_client_events()
            kept = []
            for number, old in enumerate(pending, start=1):
                moved = LoggedEvent(
                    seq_num=number,
                    parent_seq_num=number - 1,
                    name=old.name,
                    args=old.args,
                    client_id=old.client_id,
                    session_id=old.session_id,
                    pending=True,
                )
                self._materialize(
                    moved.encoded(), number, logged=old, context="keeping it across a backend reset"
                )
                kept.append(moved)
            self._db.set_recording(None)
            self._db.insert_events(kept)
            for key in ("backend_id", "upstream_head"):
                self._db.set_meta(key, None)
            if kept:
                self._db.set_meta("rebase_generation", str(self.rebase_generation + 1))
        logger.warning(
            "store %r: the backend was reset (%s); dropped the confirmed events, kept %d pending "
            "event(s) to rebase onto the new backend and push",
            self.store_id,
            error,
            len(kept),
        )
        self._notify()
        if callable(self.on_backend_reset):
            try:
                self.on_backend_reset(BackendReset(old_backend, error.expected, pending, kept))
            except Exception:  # the app's handler must not break syncing: the reset is done
                logger.exception("on_backend_reset callback failed")

    def _replay_client_events(self) -> None:
        """Materialize the client-only events again (UI state), skipping any that fail now."""
        self._db.set_recording(None)
        for name, args, _session in self._db.client_events():
            definition = self.schema.event(name)
            if definition is None or not definition.client_only:
                continue
            self._db.conn.execute("SAVEPOINT __ss_client_event")
            try:
                self._db.execute_writes(self.schema.writes_for(definition, definition.decode_args(args)))
            except Exception as error:
                self._db.conn.execute("ROLLBACK TO __ss_client_event")
                logger.warning("client-only event %r could not be materialized again: %s", name, error)
            finally:
                self._db.conn.execute("RELEASE __ss_client_event")

    def discard_pending(self, seq_num: int) -> LoggedEvent:
        """Drop one pending event (committed here, never confirmed) for good; returns it.

        For an event that cannot be synced: the one a :class:`MaterializerError` (with
        ``pending``) or a :class:`PushRefusedError` names. Its effects and those of the pending
        events after it are undone, and those after it re-applied one seqNum lower, in one
        transaction. Raises KeyError if no pending event has that seqNum, and
        :class:`MaterializerError` (nothing changed) if a later event fails without it.
        """
        with self._sync_lock:
            with self._db.transaction():
                pending = self._db.events(after=self.upstream_head, pending_only=True)
                index = next((i for i, event in enumerate(pending) if event.seq_num == seq_num), None)
                if index is None:
                    raise KeyError(f"no pending event has seqNum {seq_num}")
                self._db.roll_back_after(seq_num - 1)
                self._db.conn.execute("DELETE FROM __ss_eventlog WHERE seq >= ?", (seq_num,))
                moved_events = []
                for old in pending[index + 1 :]:
                    head = old.seq_num - 1
                    moved = LoggedEvent(
                        seq_num=head,
                        parent_seq_num=head - 1,
                        name=old.name,
                        args=old.args,
                        client_id=old.client_id,
                        session_id=old.session_id,
                        pending=True,
                    )
                    self._materialize(
                        moved.encoded(), head, logged=old, context=f"re-applying it without event #{seq_num}"
                    )
                    moved_events.append(moved)
                self._db.set_recording(None)
                self._db.insert_events(moved_events)
                if moved_events:
                    self._db.set_meta("rebase_generation", str(self.rebase_generation + 1))
            discarded = pending[index]
            logger.warning("store %r: discarded pending event #%d %r", self.store_id, seq_num, discarded.name)
        self._notify()
        return discarded

    # -- syncing -----------------------------------------------------------------------------

    def _require_transport(self) -> SyncTransport:
        if self._transport is None:
            raise SyncError("this store has no backend (pass backend_url or transport)")
        return self._transport

    def _remember_backend_id(self, backend_id: str) -> None:
        with self._db.transaction():
            self._db.set_meta("backend_id", backend_id)

    def bootstrap(self, progress: Callable[[BootstrapProgress], None] | None = None) -> BootstrapProgress:
        """Catch up from the backend's S3 archive (presigned segment downloads), then sync as usual.

        Much faster than pulling for a store far behind; a no-op where the backend has no archive.
        """
        self._require_transport()
        with self._sync_lock:
            state = bootstrap(self, progress=progress)
        self._notify()
        return state

    def _pull_until_current(self, deadline: float | None = None) -> int:
        """Pull until a response brings nothing new; returns the number of events merged.

        Raises TimeoutError before a request that would start after ``deadline``.
        """
        transport = self._require_transport()
        merged = 0
        while True:
            backend_id = self.backend_id
            cursor = (backend_id, self.upstream_head) if backend_id is not None else None
            pages = transport.pull(cursor)
            if pages and backend_id is None:
                self._remember_backend_id(pages[-1].backend_id)
            events = [event for page in pages for event in page.events]
            created = [stamp for page in pages for stamp in page.created_at]
            if not events:
                return merged
            self._apply_upstream(events, created)
            merged += len(events)
            _check_deadline(deadline, "pulling")

    def _next_push_chunk(self, limit: int = MAX_PUSH_EVENTS) -> list[LoggedEvent]:
        pending = self._db.events(after=self.upstream_head, pending_only=True, limit=limit)
        chunk: list[LoggedEvent] = []
        size = 0
        for event in pending:
            size += len(json.dumps(event.encoded(), separators=(",", ":")).encode()) + 1
            if chunk and size > MAX_REQUEST_BYTES - _PUSH_ENVELOPE_BYTES:
                break
            chunk.append(event)
        return chunk

    def _push_pending(self, deadline: float | None = None) -> bool:
        """Push pending events until none are left; False if the backend was ahead (pull now).

        A chunk refused with ``InvalidRequestError`` is pushed again in halves, down to the one
        event the backend refuses: :class:`PushRefusedError` names it.
        """
        transport = self._require_transport()
        limit = MAX_PUSH_EVENTS
        while True:
            with self._db.lock:
                chunk = self._next_push_chunk(limit)
                backend_id = self.backend_id
            if not chunk:
                return True
            _check_deadline(deadline, "pushing")
            try:
                transport.push([event.encoded() for event in chunk], backend_id)
            except ServerAheadError:
                return False
            except InvalidRequestError as error:
                if len(chunk) == 1:
                    raise PushRefusedError(chunk[0], error) from error
                limit = len(chunk) // 2
                continue
            self._confirm_pushed(chunk)

    def _sync_round(self, deadline: float | None = None) -> bool:
        """Pull, then push; True when caught up (nothing pending, nothing refused)."""
        with self._sync_lock:
            try:
                self._pull_until_current(deadline)
                return self._push_pending(deadline)
            except BackendIdMismatchError as error:
                self._reset_for_new_backend(error)
                return False

    def _position(self) -> tuple[str | None, int]:
        """(backend id, upstream head): a refused round that changed it made progress."""
        with self._db.lock:
            return self.backend_id, self.upstream_head

    def _report(self, error: Exception) -> None:
        """Record the error that stopped syncing and hand it to ``on_sync_error``."""
        self.last_sync_error = error
        if self.on_sync_error is not None:
            try:
                self.on_sync_error(error)
            except Exception:  # the app's handler must not hide the error or kill the thread
                logger.exception("on_sync_error callback failed")

    def sync(self, timeout: float = 60.0) -> None:
        """Sync until this store has everything upstream had and upstream has all its events.

        Retries network errors and ``UnknownError`` with backoff, and rounds the backend refused
        with ``ServerAheadError`` (at once, or with a short jittered backoff while they bring
        nothing new, see :class:`RetryPolicy`). Returns within
        ``timeout`` seconds plus at most one request in flight, else raises the last network error
        or TimeoutError. Raises at once :class:`SyncError` subclasses (:class:`MaterializerError`,
        :class:`PushRefusedError`, :class:`BackendResetError`, ...) and refusals
        (``UnauthorizedError``, ``ForbiddenError``, ``InvalidRequestError``). Whatever it raises
        is also passed to ``on_sync_error`` (in this thread) and kept in :attr:`last_sync_error`.
        """
        deadline = time.monotonic() + timeout
        attempt = 0
        refusals = 0
        try:
            while True:
                failure: Exception | None = None
                try:
                    before = self._position()
                    if self._sync_round(deadline):
                        self.last_sync_error = None
                        return
                    attempt = 0
                    refusals = 1 if self._position() != before else refusals + 1
                    delay = self.retry.contention_delay(refusals)
                except (TransportError, UnknownError) as error:
                    if isinstance(error, _REFUSALS):
                        raise  # retrying the same request cannot help
                    self.last_sync_error = failure = error
                    delay = self.retry.delay(attempt)
                    attempt += 1
                remaining = deadline - time.monotonic()
                if failure is not None and delay > remaining:
                    raise failure
                if delay > 0:
                    time.sleep(max(0.0, min(delay, remaining)))
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"store {self.store_id!r} did not catch up within {timeout} s")
        except Exception as error:
            self._report(error)
            raise

    def start_sync(self) -> None:
        """Sync in a background thread: push commits as they happen, poll for upstream events.

        The thread retries network errors and ``UnknownError`` with backoff, and stops on an
        error that retrying cannot fix (a :class:`SyncError` or a refusal), which it passes to
        ``on_sync_error`` (called in the sync thread) and keeps in :attr:`last_sync_error`. Call
        ``start_sync()`` again once the app has dealt with it.
        """
        self._require_transport()
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._sync_forever, name=f"stratasync-{self.store_id}", daemon=True
        )
        self._thread.start()

    def stop_sync(self, timeout: float = 10.0) -> None:
        """Stop the background sync thread (pending events stay pending)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _sync_forever(self) -> None:
        attempt = 0
        refusals = 0
        unexpected = 0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                before = self._position()
                caught_up = self._sync_round()
                attempt = unexpected = 0
                self.last_sync_error = None
            except (*_REFUSALS, SyncError) as error:
                logger.error("store %r: sync stopped: %s", self.store_id, error)
                self._report(error)
                return
            except (TransportError, UnknownError) as error:
                self.last_sync_error = error
                logger.info("sync failed (%s); retrying", error)
                self._stop.wait(self.retry.delay(attempt))
                attempt += 1
                continue
            except Exception as error:  # a bug: keep the app alive, report and retry with backoff
                self.last_sync_error = error
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
                self._wake.wait(self.poll_interval)
            else:  # the backend was ahead: pull and push again now; back off if nothing new came
                refusals = 1 if self._position() != before else refusals + 1
                self._stop.wait(self.retry.contention_delay(refusals))


def _check_deadline(deadline: float | None, doing: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise TimeoutError(f"sync timed out while {doing}")


def open_store(schema: Schema, store_id: str, path: str = ":memory:", **options: Any) -> Store:
    """Open (or create) a store; see :class:`Store` for the options."""
    return Store(schema, store_id, path, **options)


__all__ = [
    "MAX_SEQ_NUM",
    "BackendReset",
    "BackendResetError",
    "BackendResetPolicy",
    "EventDef",
    "MaterializerError",
    "PushRefusedError",
    "RetryPolicy",
    "Store",
    "Subscription",
    "SyncError",
    "UnknownEventError",
    "UnknownEventPolicy",
    "open_store",
]
