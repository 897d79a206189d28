"""The schema of a store: events (pydantic args), tables and materializers, built in one call.

A LiveStore user will recognise it::

    class TodoCreated(EventArgs):          # camelCase wire names for free
        id: str
        text: str

    todo_created = synced_event("v1.TodoCreated", TodoCreated)
    todos = Table("todos", {"id": col.text(primary_key=True), "text": col.text(default="")})
    schema = Schema(
        events=[todo_created],
        tables=[todos],
        materializers={todo_created: lambda e: todos.insert(id=e.id, text=e.text)},
    )

A :class:`Schema` is immutable; :meth:`Schema.extend` builds the next app version's schema from it.
Materializers must be pure functions of the event: they run again when events are rebased.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from stratasync.client.query import Sql, Table, Write, sql
from stratasync.client.writes import WriteLike, compile_writes

A = TypeVar("A", bound=BaseModel)


class EventArgs(BaseModel):
    """A base for event args: fields are snake_case in Python and camelCase on the wire.

    ``deleted_at`` is sent as ``deletedAt``, which is how a LiveStore app's
    ``Schema.Struct({ deletedAt: ... })`` names it; either name is accepted when building one.
    Instances are frozen.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


@dataclass(frozen=True)
class EventDef(Generic[A]):
    """An event type: a versioned name, a pydantic model of its args, synced or client-only."""

    name: str
    args: type[A]
    client_only: bool = False

    def __call__(self, **kwargs: Any) -> Event:
        """An event of this type, its args validated: ``todo_created(id="a", text="milk")``.

        Fields may be given by their Python names or their wire aliases, whatever the model's config.
        """
        by_alias = {}
        for field_name, field_info in self.args.model_fields.items():
            alias = field_info.validation_alias if isinstance(field_info.validation_alias, str) else None
            alias = alias or field_info.alias
            if alias and field_name in kwargs and alias not in kwargs:
                by_alias[alias] = kwargs.pop(field_name)
        return Event(self, self.args.model_validate({**kwargs, **by_alias}))

    def of(self, args: A) -> Event:
        """An event of this type from an args model instance."""
        if not isinstance(args, self.args):
            raise TypeError(f"{self.name} takes {self.args.__name__} args, not {type(args).__name__}")
        return Event(self, args)

    def encode_args(self, args: BaseModel) -> Any:
        """The args as LiveStore encodes them on the wire (JSON, field aliases)."""
        return args.model_dump(mode="json", by_alias=True)

    def decode_args(self, encoded: Any) -> A:
        """Args from their wire encoding (validated)."""
        return self.args.model_validate(encoded)


@dataclass(frozen=True)
class Event:
    """An event to commit: its definition and validated args."""

    definition: EventDef[Any]
    args: BaseModel

    @property
    def name(self) -> str:
        return self.definition.name


def synced_event(name: str, args: type[A]) -> EventDef[A]:
    """An event that is pushed to the backend and shared with every client of the store."""
    return EventDef(name, args, client_only=False)


def client_only_event(name: str, args: type[A]) -> EventDef[A]:
    """An event that stays on this client (UI state and the like): never pushed, never rebased."""
    return EventDef(name, args, client_only=True)


Materializer = Callable[[Any], WriteLike | Iterable[WriteLike] | None]
"""A pure function of an event's args returning its writes: a table write, ``sql(...)``, a list, None."""

Materializers = Mapping[Any, Materializer]
"""Materializers by event, keyed by its :class:`EventDef` or its name (checked when the Schema is built)."""


class Schema:
    """Events, tables and materializers of a store; immutable.

    ``materializers`` maps each event (its :class:`EventDef` or its name) to a function of the
    event's args that returns the writes: a table's ``insert``/``update``/``delete``, ``sql(...)``,
    a list of them, or None. An event without a materializer is logged and synced and changes no
    table.
    """

    def __init__(
        self,
        events: Iterable[EventDef[Any]],
        tables: Iterable[Table],
        materializers: Materializers | None = None,
    ) -> None:
        self.events: tuple[EventDef[Any], ...] = tuple(events)
        self.tables: tuple[Table, ...] = tuple(tables)
        by_name: dict[str, EventDef[Any]] = {}
        for definition in self.events:
            if definition.name in by_name:
                raise ValueError(f"event {definition.name!r} is defined twice")
            by_name[definition.name] = definition
        names = [table.name for table in self.tables]
        if len(set(names)) != len(names):
            raise ValueError("table names must be unique")
        registered: dict[str, Materializer] = {}
        for key, function in (materializers or {}).items():
            name = key if isinstance(key, str) else key.name
            if name not in by_name or (not isinstance(key, str) and by_name[name] is not key):
                raise ValueError(f"materializer for {name!r}, an event that is not part of this schema")
            if name in registered:
                raise ValueError(f"event {name!r} has two materializers")
            if not callable(function):
                raise TypeError(f"the materializer of {name!r} is not callable")
            registered[name] = function
        self._events_by_name = MappingProxyType(by_name)
        self.materializers: Mapping[str, Materializer] = MappingProxyType(registered)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__:
            raise AttributeError("a Schema is immutable: build a new one with Schema.extend(...)")
        super().__setattr__(name, value)

    def __repr__(self) -> str:
        return f"Schema(events={[e.name for e in self.events]}, tables={[t.name for t in self.tables]})"

    def event(self, name: str) -> EventDef[Any] | None:
        """The definition of an event by name, or None for an unknown (newer) event."""
        return self._events_by_name.get(name)

    def table(self, name: str) -> Table:
        """A table by name."""
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(f"no table {name!r} in this schema")

    def extend(
        self,
        *,
        events: Iterable[EventDef[Any]] = (),
        tables: Iterable[Table] = (),
        materializers: Materializers | None = None,
    ) -> Schema:
        """The schema of a newer app version: this one plus ``events`` and ``tables``.

        A table with the name of an existing one replaces it, and a materializer given here
        replaces the one of the same event. A store opened with a schema whose tables differ from
        the file's rebuilds its tables by replaying its eventlog (as LiveStore does).
        """
        new_events = list(events)
        new_tables = {table.name: table for table in tables}
        merged: dict[EventDef[Any] | str, Materializer] = dict(self.materializers.items())
        for key, function in (materializers or {}).items():
            merged[key if isinstance(key, str) else key.name] = function
        return Schema(
            events=[*self.events, *new_events],
            tables=[new_tables.pop(t.name, t) for t in self.tables] + list(new_tables.values()),
            materializers=merged,
        )

    def materializer(self, definition: EventDef[Any]) -> Callable[[Materializer], Materializer]:
        """Removed: a Schema is immutable. Pass ``materializers={event: function}`` to :class:`Schema`."""
        raise TypeError(
            "Schema is immutable: pass materializers={event: function, ...} to Schema(...), "
            "or build a new version with schema.extend(materializers=...)"
        )

    def writes_for(self, definition: EventDef[Any], args: BaseModel) -> list[Sql]:
        """The SQL writes of one event (none if it has no materializer)."""
        materializer = self.materializers.get(definition.name)
        return compile_writes(materializer(args)) if materializer is not None else []

    @property
    def tables_fingerprint(self) -> str:
        """A hash of the tables' DDL: when it changes, a store rebuilds its tables from the eventlog."""
        text = "\n".join(f"{table.create_sql};{';'.join(table.indexes)}" for table in self.tables)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


__all__ = [
    "Event",
    "EventArgs",
    "EventDef",
    "Materializer",
    "Materializers",
    "Schema",
    "Sql",
    "Table",
    "Write",
    "client_only_event",
    "sql",
    "synced_event",
]
