"""The Store: commit, query, subscribe, persistence, merge and rebase, policies."""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import pytest

from stratasync.client import RetryPolicy, Store, UnknownEventError
from stratasync.client.todos import (
    Todo,
    schema,
    todo_completed,
    todo_created,
    todo_deleted,
    ui_state_set,
)
from stratasync.core import SyncService
from stratasync.storage import EventBatch
from stratasync.storage.memory import InMemoryStorage
from tests.client.fakes import InProcessTransport, engine

FAST = RetryPolicy(initial_seconds=0.001, max_seconds=0.01)


@pytest.fixture
def service() -> SyncService:
    return SyncService(InMemoryStorage())


def make_store(service: SyncService, path: str = ":memory:", store_id: str = "todos", **kw: Any) -> Store:
    return Store(schema, store_id, path, transport=InProcessTransport(service, store_id), retry=FAST, **kw)


def texts(store: Store) -> list[str]:
    return [row["text"] for row in store.query("SELECT text FROM todos ORDER BY rowid")]


def log(store: Store) -> list[tuple[int, str, Any]]:
    return [(event.seq_num, event.name, event.args) for event in store.events()]


def test_commit_materializes_and_logs_in_one_go(service: SyncService) -> None:
    with make_store(service) as store:
        store.commit(todo_created(id="a", text="milk"), todo_completed(id="a"))
        assert store.query("SELECT * FROM todos", model=Todo) == [
            Todo(id="a", text="milk", completed=True, deleted_at=None)
        ]
        assert [(e.seq_num, e.parent_seq_num, e.pending) for e in store.pending_events()] == [
            (1, 0, True),
            (2, 1, True),
        ]
        assert store.pending_events()[0].encoded() == {
            "name": "v1.TodoCreated",
            "args": {"id": "a", "text": "milk"},
            "seqNum": 1,
            "parentSeqNum": 0,
            "clientId": store.client_id,
            "sessionId": store.session_id,
        }
        assert len(store.client_id) == 6


def test_failed_materializer_commits_nothing(service: SyncService) -> None:
    with make_store(service) as store:
        store.commit(todo_created(id="a", text="milk"))
        with pytest.raises(sqlite3.IntegrityError):
            store.commit(todo_created(id="b", text="eggs"), todo_created(id="a", text="again"))
        assert texts(store) == ["milk"]
        assert len(store.pending_events()) == 1


def test_event_args_use_wire_aliases(service: SyncService) -> None:
    with make_store(service) as store:
        store.commit(
            todo_created(id="a", text="x"), todo_deleted(id="a", deletedAt="2026-01-01T10:00:00+02:00")
        )
        assert store.pending_events()[1].args == {"id": "a", "deletedAt": "2026-01-01T08:00:00.000Z"}


def test_client_only_events_are_never_pushed(service: SyncService) -> None:
    with make_store(service) as store:
        store.commit(ui_state_set(newTodoText="typing", filter="active"))
        assert store.query("SELECT new_todo_text, filter FROM ui_state")[0]["filter"] == "active"
        assert store.pending_events() == []
        store.sync()
        assert service.store.head("todos") == 0


def test_subscriptions_fire_only_when_their_tables_change(service: SyncService) -> None:
    with make_store(service) as store:
        seen: list[list[str]] = []
        subscription = store.subscribe(
            "SELECT text FROM todos WHERE completed = 0 ORDER BY text",
            lambda rows: seen.append([r[0] for r in rows]),
        )
        assert seen == [[]]
        store.commit(todo_created(id="a", text="milk"))
        store.commit(ui_state_set(newTodoText="x", filter="all"))  # another table: no call
        store.commit(todo_created(id="b", text="bread"))
        assert seen == [[], ["milk"], ["bread", "milk"]]
        subscription.unsubscribe()
        store.commit(todo_created(id="c", text="cheese"))
        assert len(seen) == 3


def test_reopened_store_continues_with_pending_events(service: SyncService, tmp_path: Path) -> None:
    path = str(tmp_path / "store.db")
    with make_store(service, path) as store:
        client_id = store.client_id
        store.commit(todo_created(id="a", text="milk"))
    with make_store(service, path) as store:
        assert store.client_id == client_id
        assert [e.seq_num for e in store.pending_events()] == [1]
        store.commit(todo_created(id="b", text="bread"))
        store.sync()
        assert store.pending_events() == []
        assert store.upstream_head == 2
    with make_store(service, path) as store:
        assert texts(store) == ["milk", "bread"]
        assert store.pending_events() == []


def test_a_file_holds_one_store(service: SyncService, tmp_path: Path) -> None:
    path = str(tmp_path / "store.db")
    make_store(service, path).close()
    with pytest.raises(ValueError, match="holds store 'todos'"):
        make_store(service, path, store_id="other")


def test_two_stores_converge_through_rebase(service: SyncService) -> None:
    with make_store(service) as alice, make_store(service) as bob:
        alice.commit(todo_created(id="a1", text="alice 1"), todo_created(id="a2", text="alice 2"))
        bob.commit(todo_created(id="b1", text="bob 1"), todo_completed(id="b1"))
        alice.sync()
        bob.sync()  # bob's push is refused, he pulls, rolls back, applies alice's, re-applies his
        alice.sync()
        assert log(alice) == log(bob)
        assert [entry[0] for entry in log(alice)] == [1, 2, 3, 4]
        assert texts(alice) == texts(bob) == ["alice 1", "alice 2", "bob 1"]
        assert bob.rebase_generation == 1
        assert alice.query("SELECT completed FROM todos WHERE id = 'b1'")[0][0] == 1


def test_commit_during_rebase_is_neither_lost_nor_doubled(service: SyncService) -> None:
    # A subscription fires inside bob's rebase notification and commits: the commit lands on top.
    with make_store(service) as alice, make_store(service) as bob:
        alice.commit(todo_created(id="a", text="alice"))
        alice.sync()
        bob.commit(todo_created(id="b", text="bob"))
        fired: list[int] = []

        def commit_once(rows: list[Any]) -> None:
            if not fired and len(rows) == 2:
                fired.append(1)
                bob.commit(todo_created(id="c", text="during rebase"))

        bob.subscribe("SELECT id FROM todos", commit_once)
        bob.sync()
        alice.sync()
        assert log(alice) == log(bob)
        assert sorted(texts(bob)) == ["alice", "bob", "during rebase"]


def test_lost_push_response_is_recovered_without_duplicates(service: SyncService) -> None:
    with make_store(service) as alice:
        transport = alice._transport
        assert isinstance(transport, InProcessTransport)
        alice.commit(todo_created(id="a", text="milk"))
        alice.sync()  # learns the backend id
        alice.commit(todo_created(id="b", text="bread"))
        transport.lose_next_response = True  # this time the pull response gets lost...
        alice.sync()
        transport.lose_next_response = False
        alice.commit(todo_created(id="c", text="cheese"))
        engine(alice).pull_until_current()
        transport.lose_next_response = True
        with pytest.raises(Exception, match="lost"):
            engine(alice).push_pending()  # the backend committed, the client never heard
        alice.sync()
        assert [e.seq_num for e in alice.events()] == [1, 2, 3]
        assert alice.pending_events() == []
        assert [event.seq_num for event in service.store.read("todos", 0)] == [1, 2, 3]


def test_unknown_events_policies(service: SyncService) -> None:
    with make_store(service) as writer:
        writer.commit(todo_created(id="a", text="milk"))
        writer.sync()
    newer = {
        "name": "v2.TodoArchived",
        "args": {"id": "a"},
        "seqNum": 2,
        "parentSeqNum": 1,
        "clientId": "new",
        "sessionId": "s",
    }
    service.store.append("todos", EventBatch(1, [(2, json.dumps(newer))], "2026-11-23T00:00:00.000Z"))
    with make_store(service) as store:
        with pytest.warns(UserWarning, match="unknown event 'v2.TodoArchived'"):
            store.sync()
        assert [e.name for e in store.events()] == ["v1.TodoCreated", "v2.TodoArchived"]
        assert texts(store) == ["milk"]
    with make_store(service, unknown_events="ignore") as store, warnings.catch_warnings():
        warnings.simplefilter("error")
        store.sync()
    seen: list[str] = []
    with make_store(service, unknown_events=lambda event: seen.append(event["name"])) as store:
        store.sync()
    assert seen == ["v2.TodoArchived"]
    with make_store(service, unknown_events="fail") as store:
        with pytest.raises(UnknownEventError, match=r"v2\.TodoArchived"):
            store.sync()
        assert texts(store) == []  # the failing pull changed nothing


def test_backend_reset_resets_the_local_store(tmp_path: Path) -> None:
    first = SyncService(InMemoryStorage())
    path = str(tmp_path / "s.db")
    with make_store(first, path) as store:
        store.commit(todo_created(id="a", text="old world"))
        store.sync()
    second = SyncService(InMemoryStorage())  # a new backend: another backend id
    second_writer = make_store(second)
    second_writer.commit(todo_created(id="z", text="new world"))
    second_writer.sync()
    with make_store(second, path) as store:
        store.sync()
        assert texts(store) == ["new world"]
        assert store.backend_id == second.store.backend_id("todos")
    with make_store(first, path, on_backend_reset="fail") as store, pytest.raises(Exception, match="reset"):
        store.sync()


def test_refusals_stop_syncing_at_once_instead_of_retrying() -> None:
    from stratasync.auth import AccessControl, TokenVerifier
    from stratasync.protocol.errors import UnauthorizedError

    guarded = SyncService(InMemoryStorage(), access=AccessControl(TokenVerifier(hs256_secret="x" * 32)))
    with make_store(guarded) as store:
        store.commit(todo_created(id="a", text="milk"))
        with pytest.raises(UnauthorizedError, match="a token is required"):
            store.sync(timeout=30)
        assert store._transport is not None
        transport = store._transport
        assert isinstance(transport, InProcessTransport)
        assert transport.requests == 1  # refused once, not retried for 30 s
        store.last_sync_error = None
        store.start_sync()  # the background thread stops by itself on a refusal
        thread = engine(store)._thread
        assert thread is not None
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert isinstance(store.last_sync_error, UnauthorizedError)
