"""The todo app's schema: LiveStore's TodoMVC events, typed tables, materializers with the query builder.

Used by the demo, the tests and the benchmarks, and shared with LiveStore apps: the events are
those of LiveStore's ``examples/web-todomvc`` (``v1.TodoCreated {id, text}``, ``v1.TodoCompleted
{id}``, ``v1.TodoUncompleted {id}``, ``v1.TodoDeleted {id, deletedAt}`` with ``deletedAt`` a
``Schema.Date``: ISO-8601 on the wire).
"""

from __future__ import annotations

from typing import Literal

from stratasync.client import columns as col
from stratasync.client.isodate import IsoDateTime
from stratasync.client.query import Table
from stratasync.client.schema import EventArgs, Schema, client_only_event, synced_event


class TodoCreated(EventArgs):
    id: str
    text: str


class TodoId(EventArgs):
    id: str


class TodoDeleted(EventArgs):
    id: str
    deleted_at: IsoDateTime  # "deletedAt" on the wire, as LiveStore's Schema.Date encodes it


class UiState(EventArgs):
    new_todo_text: str = ""  # "newTodoText" on the wire
    filter: Literal["all", "active", "completed"] = "all"


todo_created = synced_event("v1.TodoCreated", TodoCreated)
todo_completed = synced_event("v1.TodoCompleted", TodoId)
todo_uncompleted = synced_event("v1.TodoUncompleted", TodoId)
todo_deleted = synced_event("v1.TodoDeleted", TodoDeleted)
ui_state_set = client_only_event("v1.UiStateSet", UiState)

todos = Table(
    "todos",
    {
        "id": col.text(primary_key=True),
        "text": col.text(default=""),
        "completed": col.boolean(default=False),
        "deleted_at": col.datetime(nullable=True),
    },
    row_name="Todo",
)
ui_state = Table(
    "ui_state",
    {
        "id": col.integer(primary_key=True),
        "new_todo_text": col.text(default=""),
        "filter": col.text(default="all"),
    },
)

#: A row of the ``todos`` table: ``Todo(id=..., text=..., completed=..., deleted_at=...)``.
Todo = todos.Row

schema = Schema(
    events=[todo_created, todo_completed, todo_uncompleted, todo_deleted, ui_state_set],
    tables=[todos, ui_state],
    materializers={
        # A plain INSERT: applying one event twice fails loudly on the primary key.
        todo_created: lambda e: todos.insert(id=e.id, text=e.text),
        todo_completed: lambda e: todos.update(completed=True).where(id=e.id),
        todo_uncompleted: lambda e: todos.update(completed=False).where(id=e.id),
        todo_deleted: lambda e: todos.update(deleted_at=e.deleted_at).where(id=e.id),
        ui_state_set: lambda e: ui_state.insert(
            id=1, new_todo_text=e.new_todo_text, filter=e.filter
        ).on_conflict("id", "replace"),
    },
)
