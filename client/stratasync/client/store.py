"""The Store: commit events locally, query and subscribe, and sync with a backend.

``commit`` writes events to the local eventlog and materializes them in one SQLite
transaction. Synced events stay *pending* until the backend has them; the sync engine
(:mod:`stratasync.client.sync`) pushes them, pulls everyone else's, and rebases pending events on
top when upstream moved on (:mod:`stratasync.client.rebase`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import string
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from stratasync.client import jsoncodec
from stratasync.client.bootstrap import BootstrapProgress, bootstrap
from stratasync.client.errors import SyncError
from stratasync.client.events import LoggedEvent
from stratasync.client.localdb import LocalDatabase
from stratasync.client.query import QueryLike, compile_query
from stratasync.client.rebase import BackendResetPolicy, Rebaser, UnknownEventPolicy
from stratasync.client.retry import RetryPolicy
from stratasync.client.schema import Event, Schema
from stratasync.client.subscriptions import Deliver, Subscription, Subscriptions
from stratasync.client.sync import SyncEngine
from stratasync.client.transport import LiveState, SyncTransport
from stratasync.client.wstransport import make_transport

logger = logging.getLogger("stratasync.client")

M = TypeVar("M", bound=BaseModel)

_ID_ALPHABET = string.ascii_letters + string.digits
#: The largest seqNum a JS client can hold exactly (``Number.MAX_SAFE_INTEGER``).
MAX_SEQ_NUM = 2**53 - 1
#: The store ids LiveStore can open (its ``storeId`` rule).
STORE_ID = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class StoreStatus:
    """Where a store stands (:attr:`Store.status`)."""

    store_id: str
    client_id: str
    backend_id: str | None
    upstream_head: int
    local_head: int
    pending: int
    rebase_generation: int
    syncing: bool
    last_error: Exception | None
    closed: bool
    live: bool = False
    """True while the background sync receives upstream events live (its WebSocket pull caught up)."""


def _random_id(length: int = 6) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


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
        transport: SyncTransport | Literal["http", "ws"] | None = None,
        live_url: str | None = None,
        unknown_events: UnknownEventPolicy = "warn",
        on_backend_reset: BackendResetPolicy = "reset",
        on_sync_error: Callable[[Exception], None] | None = None,
        on_shutdown: Callable[[StoreStatus], None] | None = None,
        poll_interval: float = 5.0,
        retry: RetryPolicy | None = None,
        session_id: str | None = None,
        synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL",
    ) -> None:
        if not STORE_ID.fullmatch(store_id):
            raise ValueError(
                f"store id {store_id!r}: LiveStore opens only ids of letters, digits, '_' and '-'"
            )
        self.schema = schema
        self.store_id = store_id
        self._closed = False
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
        if transport is None or isinstance(transport, str):
            if backend_url is not None:
                transport = make_transport(
                    backend_url, store_id, kind=transport, live_url=live_url, payload=payload, headers=headers
                )
            elif transport is not None or live_url is not None:
                raise ValueError(f"transport={transport!r} and live_url need backend_url")
        self._transport = transport
        self._subscriptions = Subscriptions(self._db)
        self._rebaser = Rebaser(
            self._db,
            schema,
            changed=self._subscriptions.notify,
            unknown_events=unknown_events,
            store_id=store_id,
        )
        #: Called with the exception that stopped syncing: the one a :meth:`sync` call raises
        #: (in the caller's thread) or the one that ended the background sync thread (in that
        #: thread). Errors that are retried (network, ``UnknownError``) only set
        #: :attr:`last_sync_error`.
        self.on_sync_error = on_sync_error
        #: Called once, with the final :attr:`status`, when :meth:`close` has closed the store.
        self.on_shutdown = on_shutdown
        self._on_backend_reset = on_backend_reset
        self._last_error: Exception | None = None
        self._sync: SyncEngine | None = None
        if transport is not None:
            self._sync = SyncEngine(
                self._rebaser,
                transport,
                on_backend_reset=on_backend_reset,
                report=self._report,
                poll_interval=poll_interval,
                retry=retry,
                name=f"stratasync-{store_id}",
                label=f"store {store_id!r}",
            )
        if self._db.meta("tables_fingerprint") != schema.tables_fingerprint:
            self._rebaser.rematerialize()  # new or changed tables: rebuild them from the eventlog

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop syncing and close the database; then call ``on_shutdown``. Closing twice does nothing."""
        if self._closed:
            return
        self.stop_sync()
        final = self.status
        self._closed = True
        self._subscriptions.clear()
        if self._transport is not None:
            self._transport.close()
        self._db.close()
        if self.on_shutdown is not None:
            try:
                closed = {"syncing": False, "closed": True, "live": False}
                self.on_shutdown(StoreStatus(**{**final.__dict__, **closed}))
            except Exception:
                logger.exception("on_shutdown callback failed")

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- state -------------------------------------------------------------------------------

    @property
    def upstream_head(self) -> int:
        """The seqNum of the newest event the backend has confirmed to this client."""
        return self._db.upstream_head()

    @property
    def local_head(self) -> int:
        """The seqNum of the newest event in the local eventlog (pending or not)."""
        return self._db.local_head()

    @property
    def backend_id(self) -> str | None:
        """The id of the backend incarnation this store syncs with (None before the first pull)."""
        return self._db.backend_id()

    @property
    def rebase_generation(self) -> int:
        """How often pending events were rebased onto new upstream events."""
        return self._db.rebase_generation()

    @property
    def unknown_events(self) -> UnknownEventPolicy:
        """What to do with upstream events not in the schema (see :class:`Store`)."""
        return self._rebaser.unknown_events

    @unknown_events.setter
    def unknown_events(self, policy: UnknownEventPolicy) -> None:
        self._rebaser.unknown_events = policy

    @property
    def on_backend_reset(self) -> BackendResetPolicy:
        """What to do when the backend was reset (see :class:`Store`)."""
        return self._on_backend_reset

    @on_backend_reset.setter
    def on_backend_reset(self, policy: BackendResetPolicy) -> None:
        self._on_backend_reset = policy
        if self._sync is not None:
            self._sync.on_backend_reset = policy

    @property
    def last_sync_error(self) -> Exception | None:
        """The last error syncing met (retried or not), for apps to show; None once a round caught up."""
        return self._sync.last_error if self._sync is not None else self._last_error

    @last_sync_error.setter
    def last_sync_error(self, error: Exception | None) -> None:
        if self._sync is not None:
            self._sync.last_error = error
        self._last_error = error

    @property
    def status(self) -> StoreStatus:
        """Heads, pending count, whether the background sync runs, and the last sync error."""
        if self._closed:
            raise ValueError("the store is closed")
        with self._db.lock:
            return StoreStatus(
                store_id=self.store_id,
                client_id=self.client_id,
                backend_id=self.backend_id,
                upstream_head=self.upstream_head,
                local_head=self.local_head,
                pending=self._db.pending_count(),
                rebase_generation=self.rebase_generation,
                syncing=self._sync is not None and self._sync.running,
                last_error=self.last_sync_error,
                closed=False,
                live=self.live,
            )

    @property
    def live(self) -> bool:
        """True while the background sync receives upstream events live (a WebSocket pull caught up)."""
        live = self._sync.live if self._sync is not None else None
        return live is not None and live.state is LiveState.LIVE

    def pending_events(self) -> list[LoggedEvent]:
        """Events committed here that the backend has not confirmed yet, in order."""
        return self._db.pending_events()

    def events(self, *, after: int = 0, limit: int | None = None) -> list[LoggedEvent]:
        """The synced eventlog (confirmed, then pending) after ``after``."""
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
                jsoncodec.check_strict(args)
            except ValueError as error:
                raise ValueError(f"event {event.name!r}: {error}") from None
            encoded_args.append(args)
        db = self._db
        with db.transaction():
            head = db.local_head()
            client_events = []
            for event, args in zip(events, encoded_args, strict=True):
                writes = self.schema.writes_for(event.definition, event.args)
                if event.definition.client_only:
                    db.execute_writes(writes, record_as=None)
                    client_events.append((event.name, jsoncodec.dumps(args), self.session_id))
                    continue
                head += 1
                if head > MAX_SEQ_NUM:
                    raise ValueError(f"the eventlog is full: seqNum {head} is beyond 2**53 - 1")
                db.execute_writes(writes, record_as=head)
                logged = LoggedEvent(head, head - 1, event.name, args, self.client_id, self.session_id, True)
                db.insert_events([logged])
            db.insert_client_events(client_events)
        self._subscriptions.notify()
        if self._sync is not None:
            self._sync.wake()

    def query(
        self, query: QueryLike, *legacy: Any, params: Sequence[Any] = (), model: type[M] | None = None
    ) -> Any:
        """Run a read query and return its result.

        * a table query (``todos.where(completed=False).order_by("text")``) or a table: a list of
          the table's typed rows (``todos.Row``); ``.first()``: one row or None; ``.count()``: an int;
        * ``sql("SELECT ...", *params)`` or an SQL string with ``params=``: a list of :class:`Row`
          (index, column name, ``dict(row)``).

        With ``model=``, rows are validated into that pydantic model instead. A str parameter
        with lone surrogates is bound as tables store it (U+FFFD in their place).
        """
        statement, bound, decode = compile_query(query, params, legacy, model, "query")
        return decode(self._db.query(statement, bound))

    def subscribe(
        self,
        query: QueryLike,
        callback: Callable[[Any], None],
        *legacy: Any,
        params: Sequence[Any] = (),
        model: type[BaseModel] | None = None,
        deliver: Deliver = None,
    ) -> Subscription:
        """Call ``callback(result)`` with the query's result now and whenever it changes.

        It takes what :meth:`query` takes. The query runs again after each transaction that
        changed a table it reads, and the callback only runs when the result differs from the
        last one. Callbacks run in the thread that made the change unless ``deliver`` says
        otherwise (an asyncio loop, an :class:`Inbox`, or a ``schedule(function)`` callable;
        see :mod:`stratasync.client.subscriptions`).
        """
        statement, bound, decode = compile_query(query, params, legacy, model, "subscribe")
        subscription = Subscription(
            self._subscriptions,
            statement,
            bound,
            lambda: decode(self._db.query(statement, bound)),
            callback,
            deliver,
        )
        self._subscriptions.add(subscription)
        return subscription

    async def watch(
        self, query: QueryLike, *, params: Sequence[Any] = (), model: type[BaseModel] | None = None
    ) -> AsyncIterator[Any]:
        """The query's result now and after each change, in the running asyncio loop::

        async for todos in store.watch(todos_table.where(completed=False)): ...
        """
        results: asyncio.Queue[Any] = asyncio.Queue()
        subscription = self.subscribe(
            query, results.put_nowait, params=params, model=model, deliver=asyncio.get_running_loop()
        )
        try:
            while True:
                yield await results.get()
        finally:
            subscription.unsubscribe()

    def discard_pending(self, seq_num: int) -> LoggedEvent:
        """Drop one pending event (committed here, never confirmed) for good; returns it.

        For an event that cannot be synced: the one a :class:`MaterializerError` (with
        ``pending``) or a :class:`PushRefusedError` names. Its effects and those of the pending
        events after it are undone, and those after it re-applied one seqNum lower, in one
        transaction. Raises KeyError if no pending event has that seqNum, and
        :class:`MaterializerError` (nothing changed) if a later event fails without it.
        """
        if self._sync is None:
            return self._rebaser.discard_pending(seq_num)
        with self._sync.lock:
            return self._rebaser.discard_pending(seq_num)

    # -- syncing -----------------------------------------------------------------------------

    def _engine(self) -> SyncEngine:
        if self._sync is None:
            raise SyncError("this store has no backend (pass backend_url or transport)")
        return self._sync

    def _report(self, error: Exception) -> None:
        if self.on_sync_error is not None:
            self.on_sync_error(error)

    def _apply_upstream(
        self, incoming: list[dict[str, Any]], created_at: list[str | None], encoded: list[str] | None = None
    ) -> None:
        """Merge pulled events into the local state (for benchmarks: :meth:`Rebaser.apply_pulled`)."""
        self._rebaser.apply_pulled(incoming, created_at, encoded)

    def bootstrap(self, progress: Callable[[BootstrapProgress], None] | None = None) -> BootstrapProgress:
        """Catch up from the backend's S3 archive (presigned segment downloads), then sync as usual.

        Much faster than pulling for a store far behind; a no-op where the backend has no archive.
        """
        engine = self._engine()
        with engine.lock:
            return bootstrap(engine, progress=progress)

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
        self._engine().sync(timeout)

    def start_sync(self) -> None:
        """Sync in a background thread: push commits as they happen, poll for upstream events.

        The thread retries network errors and ``UnknownError`` with backoff, and stops on an
        error that retrying cannot fix (a :class:`SyncError` or a refusal), which it passes to
        ``on_sync_error`` (called in the sync thread) and keeps in :attr:`last_sync_error`. Call
        ``start_sync()`` again once the app has dealt with it.
        """
        self._engine().start()

    def stop_sync(self, timeout: float = 10.0) -> None:
        """Stop the background sync thread (pending events stay pending)."""
        if self._sync is not None:
            self._sync.stop(timeout)


def open_store(schema: Schema, store_id: str, path: str = ":memory:", **options: Any) -> Store:
    """Open (or create) a store; see :class:`Store` for the options."""
    return Store(schema, store_id, path, **options)
