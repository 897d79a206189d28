"""Errors that retrying cannot fix stop syncing with a typed error naming the event, reach the app
through ``on_sync_error`` / ``last_sync_error``, and leave the store consistent (issue 9)."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest

from stratasync.client import MaterializerError, PushRefusedError, RetryPolicy, Store, sql
from stratasync.client.schema import Schema
from stratasync.client.todos import schema, todo_completed, todo_created
from stratasync.core import SyncService
from stratasync.protocol.errors import InvalidRequestError
from stratasync.storage.memory import InMemoryStorage
from tests.client.fakes import InProcessTransport, ScriptedTransport, engine, wire_event

FAST = RetryPolicy(initial_seconds=0.001, max_seconds=0.01)


@pytest.fixture
def service() -> SyncService:
    return SyncService(InMemoryStorage())


def make_store(service: SyncService, app_schema: Schema = schema, **kw: Any) -> Store:
    return Store(app_schema, "todos", transport=InProcessTransport(service, "todos"), retry=FAST, **kw)


def rows(store: Store) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in store.query("SELECT * FROM todos ORDER BY id")]


def replayed(store: Store) -> list[tuple[Any, ...]]:
    """The todos table rebuilt by replaying the store's eventlog: equal to rows() if they agree."""
    with Store(store.schema, store.store_id) as fresh:
        with fresh._db.transaction():
            for event in store.events():
                fresh._rebaser.materialize(event.encoded(), None)
        return rows(fresh)


def assert_consistent(store: Store) -> None:
    assert rows(store) == replayed(store)
    undo = {row[0] for row in store._db.conn.execute("SELECT DISTINCT seq FROM __ss_undo")}
    assert undo <= {event.seq_num for event in store.pending_events()}
    seqs = [event.seq_num for event in store.events()]
    assert seqs == list(range(1, len(seqs) + 1))


def test_offline_creates_of_one_id_stop_with_a_materializer_error_naming_it(service: SyncService) -> None:
    errors: list[Exception] = []
    with make_store(service) as alice, make_store(service, on_sync_error=errors.append) as bob:
        alice.commit(todo_created(id="x", text="alice's"))
        alice.sync()
        bob.commit(todo_created(id="y", text="bob first"))
        bob.commit(todo_created(id="x", text="bob's"), todo_completed(id="x"))
        before = rows(bob)
        with pytest.raises(MaterializerError) as raised:
            bob.sync()
        error = raised.value
        assert (error.name, error.seq_num, error.client_id, error.pending) == (
            "v1.TodoCreated",
            2,
            bob.client_id,
            True,
        )
        assert isinstance(error.cause, sqlite3.IntegrityError)
        assert "UNIQUE" in str(error)
        assert "#2" in str(error)
        assert "rebasing" in str(error)
        assert errors == [error]
        assert bob.last_sync_error is error
        # The merge was rolled back as a whole: bob is where he was, and consistent.
        assert rows(bob) == before
        assert bob.upstream_head == 0
        assert [e.seq_num for e in bob.pending_events()] == [1, 2, 3]
        assert_consistent(bob)
        with pytest.raises(MaterializerError):  # and it stays stopped, it does not half-apply
            bob.sync()
        assert rows(bob) == before
        # What the app can do: drop that pending event; the one after it now applies to alice's todo.
        dropped = bob.discard_pending(error.seq_num)
        assert dropped.args == {"id": "x", "text": "bob's"}
        assert [(e.seq_num, e.name) for e in bob.pending_events()] == [
            (1, "v1.TodoCreated"),
            (2, "v1.TodoCompleted"),
        ]
        assert_consistent(bob)
        bob.sync()
        alice.sync()
        assert bob.last_sync_error is None
        assert [e.encoded() for e in bob.events()] == [e.encoded() for e in alice.events()]
        assert rows(bob) == rows(alice) == [("x", "alice's", 1, None), ("y", "bob first", 0, None)]
        assert_consistent(bob)


def test_background_sync_stops_on_a_materializer_error_and_reports_it_from_its_thread(
    service: SyncService,
) -> None:
    reported = threading.Event()
    seen: list[tuple[Exception, str]] = []

    def on_sync_error(error: Exception) -> None:
        seen.append((error, threading.current_thread().name))
        reported.set()

    with make_store(service) as alice, make_store(service, on_sync_error=on_sync_error) as bob:
        alice.commit(todo_created(id="x", text="alice's"))
        alice.sync()
        bob.commit(todo_created(id="x", text="bob's"))
        bob.start_sync()
        assert reported.wait(10)
        thread = engine(bob)._thread
        assert thread is not None
        thread.join(10)
        assert not thread.is_alive()  # stopped, not retrying forever
        [(error, thread_name)] = seen
        assert isinstance(error, MaterializerError)
        assert thread_name == "stratasync-todos"
        assert bob.last_sync_error is error
        assert_consistent(bob)


def fragile_schema() -> Schema:
    """The todo schema, except that this app version's materializer breaks on some todos."""
    created = schema.materializers["v1.TodoCreated"]

    def refuse_poison(args: Any) -> Any:
        if args.text == "poison":
            return sql("INSERT INTO no_such_table VALUES (?)", args.id)
        return created(args)

    return schema.extend(materializers={todo_created: refuse_poison})


def test_an_upstream_event_whose_materializer_fails_stops_with_the_same_error(service: SyncService) -> None:
    with make_store(service) as writer:
        writer.commit(todo_created(id="a", text="fine"))
        writer.commit(todo_created(id="b", text="poison"))
        writer.sync()
    errors: list[Exception] = []
    with make_store(service, fragile_schema(), on_sync_error=errors.append) as reader:
        reader.commit(todo_created(id="mine", text="pending"))
        with pytest.raises(MaterializerError) as raised:
            reader.sync()
        error = raised.value
        assert (error.name, error.seq_num, error.client_id, error.pending) == (
            "v1.TodoCreated",
            2,
            writer.client_id,
            False,
        )
        assert isinstance(error.cause, sqlite3.OperationalError)
        assert "upstream event #2" in str(error)
        assert errors == [error]
        assert reader.upstream_head == 0  # nothing of that pull applied
        assert rows(reader) == [("mine", "pending", 0, None)]
        assert_consistent(reader)
        reader.start_sync()  # the background loop stops on it too, instead of spinning
        thread = engine(reader)._thread
        assert thread is not None
        thread.join(10)
        assert not thread.is_alive()
        assert len(errors) == 2
        assert isinstance(errors[1], MaterializerError)
    # A fixed app version (the original schema) reads the same file and goes on.


def test_discard_pending_undoes_it_and_renumbers_the_rest(service: SyncService) -> None:
    with make_store(service) as store:
        store.commit(todo_created(id="a", text="one"), todo_created(id="b", text="two"))
        store.commit(todo_completed(id="a"), todo_created(id="c", text="three"))
        with pytest.raises(KeyError):
            store.discard_pending(9)
        dropped = store.discard_pending(2)
        assert dropped.args["id"] == "b"
        assert [(e.seq_num, e.parent_seq_num, e.name) for e in store.pending_events()] == [
            (1, 0, "v1.TodoCreated"),
            (2, 1, "v1.TodoCompleted"),
            (3, 2, "v1.TodoCreated"),
        ]
        assert rows(store) == [("a", "one", 1, None), ("c", "three", 0, None)]
        assert_consistent(store)
        store.sync()
        assert [event.seq_num for event in service.store.read("todos", 0)] == [1, 2, 3]
        with pytest.raises(KeyError):  # confirmed events cannot be discarded
            store.discard_pending(1)


def test_a_push_the_backend_refuses_names_the_event_and_stops(service: SyncService) -> None:
    class Refusing(InProcessTransport):
        pushed: list[list[str]]

        def push(self, batch: Any, backend_id: str | None) -> None:
            self.pushed.append([event["args"]["id"] for event in batch])
            if any(event["args"].get("text") == "refused" for event in batch):
                raise InvalidRequestError("this event breaks a backend rule")
            super().push(batch, backend_id)

    transport = Refusing(service, "todos")
    transport.pushed = []
    errors: list[Exception] = []
    with Store(schema, "todos", transport=transport, retry=FAST, on_sync_error=errors.append) as store:
        store.commit(todo_created(id="a", text="fine"), todo_created(id="b", text="refused"))
        store.commit(todo_created(id="c", text="fine too"))
        with pytest.raises(PushRefusedError) as raised:
            store.sync()
        error = raised.value
        assert (error.event.seq_num, error.event.name, error.event.args["id"]) == (2, "v1.TodoCreated", "b")
        assert "#2" in str(error)
        assert "breaks a backend rule" in str(error)
        assert isinstance(error.cause, InvalidRequestError)
        assert errors == [error]
        # The chunk was split until the refused event stood alone: "a" got through.
        assert transport.pushed == [["a", "b", "c"], ["a"], ["b"]]
        assert store.upstream_head == 1
        requests = transport.requests
        store.start_sync()
        thread = engine(store)._thread
        assert thread is not None
        thread.join(10)
        assert not thread.is_alive()
        assert transport.requests - requests <= 4  # one round, then stopped: no hot loop
        assert isinstance(store.last_sync_error, PushRefusedError)
        store.discard_pending(error.event.seq_num)
        store.sync()
        assert [event.seq_num for event in service.store.read("todos", 0)] == [1, 2]


def test_a_seq_num_the_backend_refuses_stops_syncing_with_the_event_named() -> None:
    # A peer's event sits at 2**53 - 1 (an old backend took it); rebasing puts this client's
    # event past the largest safe integer, and the backend refuses it.
    limit = 2**53 - 1

    def refuse_unsafe(batch: list[dict[str, Any]]) -> None:
        if any(event["seqNum"] > limit for event in batch):
            raise InvalidRequestError(f"seqNum must be at most {limit}")

    transport = ScriptedTransport(
        [wire_event(limit, 0, "v1.TodoCreated", {"id": "far", "text": "far away"})], on_push=refuse_unsafe
    )
    errors: list[Exception] = []
    with Store(schema, "s", transport=transport, retry=FAST, on_sync_error=errors.append) as store:
        store.commit(todo_created(id="a", text="mine"), todo_completed(id="a"))
        with pytest.raises(PushRefusedError, match=f"#{limit + 1}") as raised:
            store.sync(timeout=10)
        assert raised.value.event.seq_num == limit + 1
        assert errors == [raised.value]
        assert len(transport.pushes) == 2  # both events, then the first alone: refused, stop
    # And it never makes such a seqNum itself.
    full = ScriptedTransport([wire_event(limit, 0, "v1.TodoCompleted", {"id": "x"})])
    with Store(schema, "s", transport=full) as store:
        store.sync()
        with pytest.raises(ValueError, match=r"2\*\*53"):
            store.commit(todo_created(id="b", text="no room"))
        assert store.pending_events() == []
