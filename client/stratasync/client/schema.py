"""The schema of a store: events (with pydantic args), SQLite tables and materializers.

A LiveStore user will recognise it::

    class TodoCreated(BaseModel):
        id: str
        text: str

    todo_created = synced_event("v1.TodoCreated", TodoCreated)
    todos = Table("todos", "CREATE TABLE todos (id TEXT PRIMARY KEY, text TEXT NOT NULL)")
    schema = Schema(events=[todo_created], tables=[todos])

    @schema.materializer(todo_created)
    def _(args: TodoCreated) -> list[Write]:
        return [sql("INSERT INTO todos (id, text) VALUES (?, ?)", args.id, args.text)]

Materializers must be pure functions of the event: they are re-run when events are rebased.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

from pydantic import BaseModel

A = TypeVar("A", bound=BaseModel)

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Write(NamedTuple):
    """One SQL statement a materializer wants executed, with its parameters."""

    statement: str
    params: tuple[Any, ...]


def sql(statement: str, *params: Any) -> Write:
    """A :class:`Write`: ``sql("UPDATE todos SET text = ? WHERE id = ?", text, todo_id)``."""
    return Write(statement, params)


@dataclass(frozen=True)
class EventDef(Generic[A]):
    """An event type: a versioned name, a pydantic model of its args, synced or client-only."""

    name: str
    args: type[A]
    client_only: bool = False

    def __call__(self, **kwargs: Any) -> Event:
        """An event of this type, its args validated: ``todo_created(id="a", text="milk")``."""
        return Event(self, self.args(**kwargs))

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


@dataclass(frozen=True)
class Table:
    """A SQLite table of the store's state: its name and its ``CREATE TABLE`` statement."""

    name: str
    create_sql: str
    indexes: Sequence[str] = ()

    def __post_init__(self) -> None:
        if not _TABLE_NAME.fullmatch(self.name) or self.name.startswith("__ss_"):
            raise ValueError(f"invalid table name {self.name!r}")
        if "without rowid" in self.create_sql.lower():
            raise ValueError(f"table {self.name}: WITHOUT ROWID tables cannot be rolled back")


Materializer = Callable[[Any], Iterable[Write]]


@dataclass
class Schema:
    """Events, tables and materializers of a store."""

    events: Sequence[EventDef[Any]]
    tables: Sequence[Table]
    materializers: dict[str, Materializer] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._events_by_name: dict[str, EventDef[Any]] = {}
        for definition in self.events:
            if definition.name in self._events_by_name:
                raise ValueError(f"event {definition.name!r} is defined twice")
            self._events_by_name[definition.name] = definition
        names = [table.name for table in self.tables]
        if len(set(names)) != len(names):
            raise ValueError("table names must be unique")

    def event(self, name: str) -> EventDef[Any] | None:
        """The definition of an event by name, or None for an unknown (newer) event."""
        return self._events_by_name.get(name)

    def materializer(
        self, definition: EventDef[A]
    ) -> Callable[[Callable[[A], Iterable[Write]]], Materializer]:
        """Decorator registering the materializer of ``definition``."""
        if definition.name not in self._events_by_name:
            raise ValueError(f"event {definition.name!r} is not part of this schema")

        def register(function: Callable[[A], Iterable[Write]]) -> Materializer:
            if definition.name in self.materializers:
                raise ValueError(f"event {definition.name!r} already has a materializer")
            self.materializers[definition.name] = function
            return function

        return register

    def writes_for(self, definition: EventDef[Any], args: BaseModel) -> list[Write]:
        """The SQL writes of one event (none if it has no materializer)."""
        materializer = self.materializers.get(definition.name)
        return list(materializer(args)) if materializer is not None else []
