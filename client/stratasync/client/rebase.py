"""Merge application: every change syncing makes to the local state, each in one SQLite transaction.

* :meth:`Rebaser.apply_pulled`: pulled upstream events meet the pending ones (the plan comes
  from the pure :func:`~stratasync.client.merge.plan_merge`): confirm, apply, or roll back,
  apply and rebase the pending events on top.
* :meth:`Rebaser.confirm_pushed`: the backend took a chunk of pending events.
* :meth:`Rebaser.reset_for_new_backend`: the backend's id changed; start over, keeping the
  pending events.
* :meth:`Rebaser.discard_pending`: drop one pending event that cannot sync.

A materializer that fails in any of them raises :class:`MaterializerError` and the whole
transaction is rolled back: the eventlog and the tables always agree.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from stratasync.client.errors import (
    BackendIdMismatchError,
    BackendResetError,
    MaterializerError,
    SyncError,
    UnknownEventError,
)
from stratasync.client.events import LoggedEvent
from stratasync.client.localdb import LocalDatabase
from stratasync.client.merge import plan_merge
from stratasync.client.schema import EventDef, Materializer, Schema
from stratasync.client.writes import Insert, compile_rows

logger = logging.getLogger("stratasync.client")

_NOT_LOOKED_UP: Any = object()

UnknownEventPolicy = Literal["warn", "ignore", "fail"] | Callable[[dict[str, Any]], None]


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


@dataclass(frozen=True)
class MergeOutcome:
    """What :meth:`Rebaser.apply_pulled` did: upstream events applied, pending ones confirmed or rebased."""

    applied: int = 0
    confirmed: int = 0
    rebased: int = 0

    @property
    def noop(self) -> bool:
        """True when the pulled events were all known already."""
        return not (self.applied or self.confirmed or self.rebased)


class Rebaser:
    """Applies upstream events, confirmations, resets and discards to a :class:`LocalDatabase`.

    ``changed()`` is called after each transaction that may have changed tables (subscriptions).
    """

    def __init__(
        self,
        db: LocalDatabase,
        schema: Schema,
        *,
        changed: Callable[[], None],
        unknown_events: UnknownEventPolicy = "warn",
        store_id: str = "",
    ) -> None:
        self.db = db
        self.schema = schema
        self.changed = changed
        self.unknown_events = unknown_events
        self.store_id = store_id
        self._warned_unknown: set[str] = set()

    # -- materializing -------------------------------------------------------------------------

    def materialize(
        self,
        event: dict[str, Any],
        record_as: int | None,
        *,
        logged: LoggedEvent | None = None,
        context: str = "applying an upstream event",
    ) -> None:
        """Materialize one encoded event; a failure raises :class:`MaterializerError`.

        ``record_as``: the seqNum its undo rows belong to (None for a confirmed event: no undo).
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
            self.db.execute_writes(self.schema.writes_for(definition, args), record_as=record_as)
        except Exception as error:
            raise MaterializerError(logged or LoggedEvent.from_wire(event), error, context) from error

    def materialize_confirmed(self, events: Sequence[dict[str, Any]]) -> None:
        """Materialize confirmed upstream events (no undo rows), in order: the same effects and
        errors as :meth:`materialize` on each of them in turn, only faster.

        The writes go in runs: consecutive executions of one statement (events of one type, their
        materializers building the same shape of write) are one ``executemany``. Anything out of
        the ordinary (an invalid event, a failing materializer or statement, a lone surrogate to
        bind) rolls the batched part back and takes the one-by-one way, which raises exactly
        what it always raised; from an unknown event on (its policy may call back), so do the rest.
        """
        done = 0
        if len(events) > 1:
            try:
                with self.db.savepoint():
                    done = self._materialize_in_runs(events)
            except Exception:
                done = 0
        for event in events[done:] if done else events:
            self.materialize(event, None)

    def _materialize_in_runs(self, events: Sequence[dict[str, Any]]) -> int:
        """Materialize ``events`` in runs of one statement, up to the first unknown event; returns
        how many were done."""
        schema = self.schema
        materializers = schema.materializers
        known: dict[str, tuple[EventDef[Any], Callable[[Any], Any], Materializer | None] | None] = {}
        runs: list[tuple[str, list[Sequence[Any]]]] = []
        statement: str | None = None
        rows: list[Sequence[Any]] = []
        done = len(events)
        for index, event in enumerate(events):
            name = event["name"]
            entry = known.get(name, _NOT_LOOKED_UP)
            if entry is _NOT_LOOKED_UP:
                definition = schema.event(name)
                entry = known[name] = (
                    None
                    if definition is None
                    else (definition, _args_decoder(definition), materializers.get(definition.name))
                )
            if entry is None:
                done = index
                break
            definition, decode, materializer = entry
            if definition.client_only or materializer is None:
                if not definition.client_only:
                    decode(event.get("args"))  # validated all the same
                continue
            result = materializer(decode(event.get("args")))
            if type(result) is Insert and result._statement is not None:  # the common case, inlined
                if result._statement != statement:
                    statement, rows = result._statement, []
                    runs.append((statement, rows))
                rows.append(result._params)
                continue
            for write, params in compile_rows(result):
                if write != statement:
                    statement, rows = write, []
                    runs.append((write, rows))
                rows.append(params)
        self.db.execute_write_runs(runs)
        return done

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

    def _reapply(self, pending: Sequence[LoggedEvent], first_seq: int, context: str) -> list[LoggedEvent]:
        """Materialize ``pending`` again, renumbered from ``first_seq``; returns them renumbered."""
        moved = []
        for number, old in enumerate(pending, start=first_seq):
            event = old.renumbered(number)
            self.materialize(event.encoded(), number, logged=old, context=context)
            moved.append(event)
        self.db.insert_events(moved)
        if moved:
            self.db.count_rebase()
        return moved

    # -- the phases ----------------------------------------------------------------------------

    def apply_pulled(
        self, incoming: list[dict[str, Any]], created_at: list[str | None], encoded: list[str] | None = None
    ) -> MergeOutcome:
        """Merge pulled events (after the upstream head) into the local state: confirm or rebase.

        ``encoded``: the events' JSON text as received, where the caller has it (bootstrap).
        """
        db = self.db
        with db.transaction():
            upstream = db.upstream_head()
            first_new = next(
                (i for i, event in enumerate(incoming) if event["seqNum"] > upstream), len(incoming)
            )
            if first_new:  # events the store already has (a retried or overlapping page)
                incoming, created_at = incoming[first_new:], created_at[first_new:]
                encoded = encoded[first_new:] if encoded is not None else None
            if not incoming:
                return MergeOutcome()
            if incoming[0]["parentSeqNum"] != upstream:
                raise SyncError(
                    f"upstream events start at parent {incoming[0]['parentSeqNum']}, expected {upstream}"
                )
            pending = db.pending_events()
            plan = plan_merge(pending, incoming)
            db.confirm(pending[: plan.confirmed], created_at[: plan.confirmed])
            new_events = incoming[plan.confirmed :]
            if plan.rebase:
                base = pending[plan.confirmed - 1].seq_num if plan.confirmed else upstream
                db.roll_back_after(base)
                db.delete_events_after(base)
            applied = 0
            if new_events and (plan.rebase or plan.confirmed == len(pending)):
                self.materialize_confirmed(new_events)
                db.insert_upstream(
                    new_events,
                    created_at[plan.confirmed :],
                    encoded[plan.confirmed :] if encoded is not None else None,
                )
                applied = len(new_events)
            new_upstream = incoming[-1]["seqNum"]
            rebased: list[LoggedEvent] = []
            if plan.rebase:
                rebased = self._reapply(
                    pending[plan.confirmed :],
                    new_upstream + 1,
                    f"rebasing it onto upstream event #{new_upstream}",
                )
            db.set_meta("upstream_head", new_upstream)
        self.changed()
        return MergeOutcome(applied=applied, confirmed=plan.confirmed, rebased=len(rebased))

    def confirm_pushed(self, pushed: Sequence[LoggedEvent]) -> bool:
        """The backend took ``pushed``; False if the state moved on meanwhile (the next pull settles it)."""
        with self.db.transaction():
            current = self.db.pending_events(limit=len(pushed))
            if [event.seq_num for event in current] != [event.seq_num for event in pushed]:
                return False
            self.db.confirm(current, [None] * len(current))
            self.db.set_meta("upstream_head", pushed[-1].seq_num)
            return True

    def remember_backend_id(self, backend_id: str) -> None:
        with self.db.transaction():
            self.db.set_meta("backend_id", backend_id)

    def reset_for_new_backend(self, error: BackendIdMismatchError, policy: BackendResetPolicy) -> None:
        """The backend's id changed: start over on the new backend, keeping the pending events.

        In one transaction: the confirmed events and the tables are dropped, the client-only
        events materialized again, then the pending events renumbered from 1 and materialized
        on top. The next pull rebases them onto whatever the new backend has; the next push sends
        them. A crash in between leaves the store as it was before. Policy ``"fail"`` raises
        :class:`BackendResetError` and changes nothing.
        """
        db = self.db
        with db.lock:
            old_backend = db.backend_id()
            pending = db.pending_events()
        if policy == "fail":
            raise BackendResetError(
                f"the backend was reset ({error}); {len(pending)} pending event(s) not pushed",
                pending=pending,
                backend_id=old_backend,
                new_backend_id=error.expected,
            ) from error
        with db.transaction():
            pending = db.pending_events()
            db.reset_state()
            self._replay_client_events()
            kept = self._reapply(pending, 1, "keeping it across a backend reset")
            db.set_meta("backend_id", None)
            db.set_meta("upstream_head", None)
        logger.warning(
            "store %r: the backend was reset (%s); dropped the confirmed events, kept %d pending "
            "event(s) to rebase onto the new backend and push",
            self.store_id,
            error,
            len(kept),
        )
        self.changed()
        if callable(policy):
            try:
                policy(BackendReset(old_backend, error.expected, pending, kept))
            except Exception:  # the app's handler must not break syncing: the reset is done
                logger.exception("on_backend_reset callback failed")

    def _replay_client_events(self) -> None:
        """Materialize the client-only events again (UI state), skipping any that fail now."""
        for name, args, _session in self.db.client_events():
            definition = self.schema.event(name)
            if definition is None or not definition.client_only:
                continue
            try:
                with self.db.savepoint():
                    writes = self.schema.writes_for(definition, definition.decode_args(args))
                    self.db.execute_writes(writes, record_as=None)
            except Exception as error:
                logger.warning("client-only event %r could not be materialized again: %s", name, error)

    def rematerialize(self) -> None:
        """Rebuild every table from the eventlog (the schema's tables changed), in one transaction.

        Confirmed events are applied without undo rows, pending ones with theirs, then the
        client-only events; a materializer that fails raises :class:`MaterializerError` and
        leaves the file as it was.
        """
        db = self.db
        with db.transaction():
            db.rebuild_state_tables()
            upstream = db.upstream_head()
            for event in db.events():
                self.materialize(
                    event.encoded(),
                    event.seq_num if event.pending and event.seq_num > upstream else None,
                    logged=event,
                    context="rebuilding the tables from the eventlog",
                )
            self._replay_client_events()
            db.set_meta("tables_fingerprint", self.schema.tables_fingerprint)
        self.changed()

    def discard_pending(self, seq_num: int) -> LoggedEvent:
        """Drop one pending event for good (see :meth:`Store.discard_pending`); returns it."""
        db = self.db
        with db.transaction():
            pending = db.pending_events()
            index = next((i for i, event in enumerate(pending) if event.seq_num == seq_num), None)
            if index is None:
                raise KeyError(f"no pending event has seqNum {seq_num}")
            db.roll_back_after(seq_num - 1)
            db.delete_events_after(seq_num - 1)
            self._reapply(pending[index + 1 :], seq_num, f"re-applying it without event #{seq_num}")
        discarded = pending[index]
        logger.warning("store %r: discarded pending event #%d %r", self.store_id, seq_num, discarded.name)
        self.changed()
        return discarded


def _args_decoder(definition: EventDef[Any]) -> Callable[[Any], Any]:
    """``definition.decode_args``, or what it calls (the args model's validator) when neither
    the definition nor the model overrides the way there."""
    model = definition.args
    overridden = getattr(model.model_validate, "__func__", None) is not _MODEL_VALIDATE
    if type(definition).decode_args is EventDef.decode_args and not overridden:
        validate: Callable[[Any], Any] = model.__pydantic_validator__.validate_python
        return validate
    return definition.decode_args


_MODEL_VALIDATE = getattr(BaseModel.model_validate, "__func__", None)


__all__ = ["BackendReset", "BackendResetPolicy", "MergeOutcome", "Rebaser", "UnknownEventPolicy"]
