"""The todo app's schema (LiveStore's TodoMVC event names), used by the demo, tests and benchmarks."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from stratasync.client.schema import Schema, Table, Write, client_only_event, sql, synced_event


class TodoCreated(BaseModel):
    id: str
    text: str


class TodoId(BaseModel):
    id: str


class TodoDeleted(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    deleted_at: str = Field(alias="deletedAt")


class UiState(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    new_todo_text: str = Field(default="", alias="newTodoText")
    filter: str = "all"


class Todo(BaseModel):
    """A row of the ``todos`` table."""

    id: str
    text: str
    completed: bool
    deleted_at: str | None


todo_created = synced_event("v1.TodoCreated", TodoCreated)
todo_completed = synced_event("v1.TodoCompleted", TodoId)
todo_uncompleted = synced_event("v1.TodoUncompleted", TodoId)
todo_deleted = synced_event("v1.TodoDeleted", TodoDeleted)
ui_state_set = client_only_event("v1.UiStateSet", UiState)

todos = Table(
    "todos",
    "CREATE TABLE todos (id TEXT PRIMARY KEY, text TEXT NOT NULL, completed INTEGER NOT NULL DEFAULT 0,"
    " deleted_at TEXT)",
)
ui_state = Table(
    "ui_state",
    "CREATE TABLE ui_state (id INTEGER PRIMARY KEY CHECK (id = 1), new_todo_text TEXT, filter TEXT)",
)

schema = Schema(
    events=[todo_created, todo_completed, todo_uncompleted, todo_deleted, ui_state_set],
    tables=[todos, ui_state],
)


@schema.materializer(todo_created)
def _created(args: TodoCreated) -> list[Write]:
    # A plain INSERT: applying one event twice fails loudly on the primary key.
    return [sql("INSERT INTO todos (id, text) VALUES (?, ?)", args.id, args.text)]


@schema.materializer(todo_completed)
def _completed(args: TodoId) -> list[Write]:
    return [sql("UPDATE todos SET completed = 1 WHERE id = ?", args.id)]


@schema.materializer(todo_uncompleted)
def _uncompleted(args: TodoId) -> list[Write]:
    return [sql("UPDATE todos SET completed = 0 WHERE id = ?", args.id)]


@schema.materializer(todo_deleted)
def _deleted(args: TodoDeleted) -> list[Write]:
    return [sql("UPDATE todos SET deleted_at = ? WHERE id = ?", args.deleted_at, args.id)]


@schema.materializer(ui_state_set)
def _ui_state(args: UiState) -> list[Write]:
    return [
        sql(
            "INSERT INTO ui_state (id, new_todo_text, filter) VALUES (1, ?, ?) ON CONFLICT (id)"
            " DO UPDATE SET new_todo_text = excluded.new_todo_text, filter = excluded.filter",
            args.new_todo_text,
            args.filter,
        )
    ]
