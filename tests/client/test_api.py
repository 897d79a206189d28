"""The issue-15 API: typed tables and queries, the immutable schema and its next version, events with
camelCase wire names and ISO dates, subscriptions (changed results only, delivered where asked),
lifecycle and status, store ids, and one error hierarchy."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import stratasync.client as client
from stratasync.client import (
    EventArgs,
    Inbox,
    Insert,
    IsoDateTime,
    RetryPolicy,
    Schema,
    Store,
    StoreStatus,
    Table,
    col,
    sql,
    synced_event,
)
from stratasync.client.todos import Todo, schema, todo_completed, todo_created, todo_deleted, todos
from stratasync.protocol import errors as protocol_errors
from tests.client.fakes import ScriptedTransport

FAST = RetryPolicy(initial_seconds=0.001, max_seconds=0.01)
UTC = dt.UTC


class Note(EventArgs):
    id: str
    body: str
    tags: list[str] = []
    pinned_at: IsoDateTime | None = None


note_added = synced_event("v1.NoteAdded", Note)
notes = Table(
    "notes",
    {
        "id": col.text(primary_key=True),
        "body": col.text(),
        "rank": col.integer(default=0),
        "score": col.real(default=0.5),
        "pinned": col.boolean(default=False),
        "tags": col.json(default=[]),
        "pinned_at": col.datetime(nullable=True),
    },
)
notes_schema = Schema(
    events=[note_added],
    tables=[notes],
    materializers={
        note_added: lambda e: notes.insert(
            id=e.id, body=e.body, tags=e.tags, pinned=e.pinned_at is not None, pinned_at=e.pinned_at
        )
    },
)


def test_a_typed_table_generates_its_ddl_and_gives_typed_rows() -> None:
    assert notes.create_sql == (
        'CREATE TABLE "notes" ("id" TEXT PRIMARY KEY NOT NULL, "body" TEXT NOT NULL, "rank" INTEGER NOT NULL'
        ' DEFAULT 0, "score" REAL NOT NULL DEFAULT 0.5, "pinned" INTEGER NOT NULL DEFAULT 0, "tags" TEXT NOT'
        " NULL DEFAULT '[]', \"pinned_at\" TEXT)"
    )
    when = dt.datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
    with Store(notes_schema, "n") as store:
        store.commit(note_added(id="a", body="hi", tags=["x"], pinned_at=when), note_added(id="b", body="yo"))
        first = store.query(notes.order_by("id").first())
        assert first == notes.Row(
            id="a", body="hi", rank=0, score=0.5, pinned=True, tags=["x"], pinned_at=when
        )
        assert first.pinned is True
        assert isinstance(first.pinned_at, dt.datetime)
        assert repr(first).startswith("NotesRow(id='a', body='hi'")
        assert store.query(notes.where(pinned=False)) == [store.query(notes.where(id="b").first())]
        assert store.query(notes.count()) == 2
        assert store.query(notes.where(pinned_at=None).count()) == 1
        assert [row.id for row in store.query(notes.where(id=["a", "b"]).order_by("id", "desc"))] == [
            "b",
            "a",
        ]
        assert [r.id for r in store.query(notes.where("body", "LIKE", "h%"))] == ["a"]
        assert store.query(notes.where(id="zz").first()) is None
        assert [r.id for r in store.query(notes.order_by("id").limit(1).offset(1))] == ["b"]
        raw = store.query(sql("SELECT id, pinned, pinned_at FROM notes WHERE id = ?", "a"))
        assert repr(raw) == "[Row(id='a', pinned=1, pinned_at='2026-03-04T05:06:07.890Z')]"
        assert store.query("SELECT COUNT(*) FROM notes WHERE rank = ?", params=(0,))[0][0] == 2


def test_builders_refuse_what_the_table_cannot_take() -> None:
    with pytest.raises(ValueError, match="no column 'nope'"):
        notes.where(nope=1)
    with pytest.raises(ValueError, match="'body' is required"):
        notes.insert(id="a")
    with pytest.raises(ValueError, match="unknown operator"):
        notes.where("id", "DROP", 1)
    with pytest.raises(ValueError, match="naive datetime"):
        notes.update(pinned_at=dt.datetime(2026, 1, 1))
    raw = Table("raw", "CREATE TABLE raw (x)")
    with pytest.raises(TypeError, match="raw SQL"):
        raw.where(x=1)


def test_writes_compile_to_bound_sql() -> None:
    assert notes.update(pinned=True).where(id="a").to_sql() == (
        'UPDATE "notes" SET "pinned" = ? WHERE "id" = ?',
        (1, "a"),
    )
    assert notes.delete().where("rank", ">", 3).to_sql() == ('DELETE FROM "notes" WHERE "rank" > ?', (3,))
    upsert = notes.insert(id="a", body="b").on_conflict("id", "update", body="c").to_sql()
    assert upsert == (
        'INSERT INTO "notes" ("id", "body") VALUES (?, ?) ON CONFLICT ("id") DO UPDATE SET "body" = ?',
        ("a", "b", "c"),
    )


def test_an_insert_behaves_as_an_immutable_value_and_its_shape_is_checked_once() -> None:
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    first = notes.insert(id="a", body="b", tags=["x"], pinned_at=when)
    again = notes.insert(id="a", body="b", tags=["x"], pinned_at=when)  # the remembered shape
    assert first == again
    assert hash(first) == hash(again)
    assert first != notes.insert(id="a", body="c", tags=["x"], pinned_at=when)
    assert first.values == (("id", "a"), ("body", "b"), ("tags", '["x"]'), ("pinned_at", first.values[3][1]))
    assert isinstance(first.values[3][1], str)  # stored through the column's to_sql
    assert first.to_sql() == (
        'INSERT INTO "notes" ("id", "body", "tags", "pinned_at") VALUES (?, ?, ?, ?)',
        ("a", "b", '["x"]', first.values[3][1]),
    )
    assert Insert(notes, first.values) == first  # the public constructor
    assert "Insert(table=Table('notes')" in repr(first)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.table = notes
    with pytest.raises(ValueError, match="'body' is required"):
        notes.insert(id="a")  # a refused shape is refused every time
    with pytest.raises(ValueError, match="'body' is required"):
        notes.insert(id="a")
    with pytest.raises(ValueError, match="no column 'nope'"):
        notes.insert(id="a", body="b", nope=1)
    assert first.on_conflict("id", "ignore").to_sql()[0].endswith('ON CONFLICT ("id") DO NOTHING')
    assert first.conflict is None  # on_conflict made a new Insert


def test_the_schema_is_immutable_and_extends_into_a_newer_version(tmp_path: Path) -> None:
    with pytest.raises(AttributeError, match="immutable"):
        schema.tables = ()
    with pytest.raises(TypeError, match="immutable"):
        schema.materializer(todo_created)
    with pytest.raises(ValueError, match="not part of this schema"):
        Schema(events=[], tables=[], materializers={todo_created: lambda e: None})
    path = str(tmp_path / "s.db")
    with Store(schema, "s", path) as store:
        store.commit(todo_created(id="a", text="milk"), todo_completed(id="a"))

    class TodoArchived(EventArgs):
        id: str

    todo_archived = synced_event("v2.TodoArchived", TodoArchived)
    archived_todos = Table(  # v2 adds a column to todos: the store rebuilds it from its eventlog
        "todos", {**todos.columns, "archived": col.boolean(default=False)}, row_name="Todo"
    )
    v2 = schema.extend(
        events=[todo_archived],
        tables=[archived_todos],
        materializers={
            todo_created: lambda e: archived_todos.insert(id=e.id, text=e.text),
            todo_completed: lambda e: archived_todos.update(completed=True).where(id=e.id),
            todo_archived: lambda e: archived_todos.update(archived=True).where(id=e.id),
        },
    )
    assert [e.name for e in v2.events][-1] == "v2.TodoArchived"
    assert schema.event("v2.TodoArchived") is None
    with Store(v2, "s", path) as store:
        store.commit(todo_archived(id="a"))
        [row] = store.query(archived_todos)
        assert (row.completed, row.archived) == (True, True)
        assert len(store.pending_events()) == 3


def test_event_args_have_camel_case_wire_names_and_iso_dates() -> None:
    event = todo_deleted(id="a", deleted_at=dt.datetime(2026, 1, 2, 3, 4, 5, 6789, tzinfo=UTC))
    assert event.definition.encode_args(event.args) == {"id": "a", "deletedAt": "2026-01-02T03:04:05.006Z"}
    assert todo_deleted(id="a", deletedAt="2026-01-02T03:04:05.006Z").args == event.args.model_copy(
        update={"deleted_at": dt.datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)}
    )
    for bad in ("yesterday", "2026-01-02T03:04:05", "", "2026-13-01"):
        with pytest.raises(ValidationError):
            todo_deleted(id="a", deleted_at=bad)


def test_store_ids_livestore_cannot_open_are_refused() -> None:
    for bad in ("my store", "a/b", "ü", "", "a.b"):
        with pytest.raises(ValueError, match="LiveStore opens only"):
            Store(schema, bad)
    Store(schema, "Good_id-1").close()


def test_subscriptions_fire_only_when_the_result_changed() -> None:
    with Store(schema, "s") as store:
        seen: list[list[Any]] = []
        store.subscribe(todos.where(completed=False).order_by("text"), seen.append)
        store.commit(todo_created(id="a", text="milk"))
        store.commit(todo_completed(id="a"))  # no open todo left: a change
        store.commit(
            todo_deleted(id="a", deleted_at="2026-01-01T00:00:00Z")
        )  # the table changed, the result not
        assert [[t.text for t in rows] for rows in seen] == [[], ["milk"], []]
        counts: list[int] = []
        store.subscribe(todos.count(), counts.append)
        store.commit(todo_completed(id="a"))  # count unchanged
        assert counts == [1]


def test_subscriptions_are_delivered_to_an_inbox_or_an_asyncio_loop() -> None:
    with Store(schema, "s") as store:
        inbox = Inbox()
        seen: list[tuple[int, str]] = []
        store.subscribe(
            todos.count(), lambda n: seen.append((n, threading.current_thread().name)), deliver=inbox
        )
        worker = threading.Thread(target=store.commit, args=(todo_created(id="a", text="x"),), name="worker")
        worker.start()
        worker.join()
        assert seen == []
        assert inbox.run_pending() == 2
        assert seen == [(0, "MainThread"), (1, "MainThread")]

        async def watch() -> list[int]:
            results: list[int] = []
            async for count in store.watch(todos.count()):
                results.append(count)
                if count == 1:
                    threading.Thread(target=store.commit, args=(todo_created(id="b", text="y"),)).start()
                if count == 2:
                    return results
            return results

        assert asyncio.run(asyncio.wait_for(watch(), 10)) == [1, 2]


def test_status_and_on_shutdown() -> None:
    finals: list[StoreStatus] = []
    transport = ScriptedTransport()
    store = Store(schema, "s", transport=transport, retry=FAST, on_shutdown=finals.append)
    store.commit(todo_created(id="a", text="x"))
    status = store.status
    assert (status.upstream_head, status.local_head, status.pending, status.syncing) == (0, 1, 1, False)
    store.sync()
    assert (store.status.upstream_head, store.status.pending, store.status.last_error) == (1, 0, None)
    store.close()
    store.close()
    assert len(finals) == 1
    assert finals[0].closed
    assert finals[0].upstream_head == 1
    assert store.closed


def test_one_error_hierarchy_importable_from_the_client() -> None:
    for name in (
        "ProtocolError",
        "ServerAheadError",
        "BackendIdMismatchError",
        "UnknownError",
        "InvalidRequestError",
        "UnauthorizedError",
        "ForbiddenError",
        "BackendUnavailableError",
        "TransportError",
        "SegmentChecksumError",
        "SyncError",
        "MaterializerError",
        "PushRefusedError",
        "BackendResetError",
        "UnknownEventError",
    ):
        error = getattr(client, name)
        assert issubclass(error, client.StratasyncError), name
    assert client.StratasyncError is protocol_errors.StratasyncError
    assert client.ServerAheadError is protocol_errors.ServerAheadError


def test_todo_rows_compare_with_the_row_model() -> None:
    with Store(schema, "s") as store:
        store.commit(todo_created(id="a", text="milk"))
        assert store.query(todos) == [Todo(id="a", text="milk", completed=False, deleted_at=None)]
