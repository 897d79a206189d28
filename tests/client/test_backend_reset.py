"""A backend reset (new backendId) keeps the events committed here and not yet confirmed: they are
rebased onto the new backend's log and pushed, and the app is told (issue 9)."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from stratasync.client import BackendReset, BackendResetError, RetryPolicy, Store
from stratasync.client.todos import schema, todo_completed, todo_created, ui_state_set
from stratasync.core import SyncService
from stratasync.storage.memory import InMemoryStorage
from tests.client.fakes import InProcessTransport

FAST = RetryPolicy(initial_seconds=0.001, max_seconds=0.01)
ROOT = Path(__file__).parents[2]


def make_store(service: SyncService, path: str, **kw: Any) -> Store:
    return Store(schema, "todos", path, transport=InProcessTransport(service, "todos"), retry=FAST, **kw)


def texts(store: Store) -> list[str]:
    return [row["text"] for row in store.query("SELECT text FROM todos ORDER BY rowid")]


def offline_commits_then_reset(tmp_path: Path) -> tuple[str, SyncService, SyncService]:
    """A store file with one confirmed event on the first backend and two pending ones, and a
    second backend (another backend id) that already holds another client's event."""
    first = SyncService(InMemoryStorage())
    path = str(tmp_path / "s.db")
    with make_store(first, path) as store:
        store.commit(todo_created(id="a", text="old world"))
        store.sync()
        store.commit(ui_state_set(newTodoText="draft", filter="active"))
        store.commit(todo_created(id="b", text="offline 1"), todo_completed(id="b"))
        store.commit(todo_created(id="c", text="offline 2"))
        assert [event.seq_num for event in store.pending_events()] == [2, 3, 4]
    second = SyncService(InMemoryStorage())
    with make_store(second, ":memory:") as writer:
        writer.commit(todo_created(id="z", text="new world"))
        writer.sync()
    return path, first, second


def test_backend_reset_keeps_pending_commits_and_pushes_them_to_the_new_backend(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, _, second = offline_commits_then_reset(tmp_path)
    resets: list[BackendReset] = []
    with make_store(second, path, on_backend_reset=resets.append) as store:
        old_backend = store.backend_id
        with caplog.at_level(logging.WARNING, logger="stratasync.client"):
            store.sync()
        assert texts(store) == ["new world", "offline 1", "offline 2"]
        assert store.query("SELECT completed FROM todos WHERE id = 'b'")[0][0] == 1
        assert [(e.seq_num, e.name, e.args.get("id")) for e in store.events()] == [
            (1, "v1.TodoCreated", "z"),
            (2, "v1.TodoCreated", "b"),
            (3, "v1.TodoCompleted", "b"),
            (4, "v1.TodoCreated", "c"),
        ]
        assert store.pending_events() == []
        assert store.backend_id == second.store.backend_id("todos")
        assert store.query("SELECT filter FROM ui_state")[0][0] == "active"  # UI state survives too
        [reset] = resets
        assert reset.backend_id == old_backend
        assert reset.new_backend_id == second.store.backend_id("todos")
        assert [(e.seq_num, e.args["id"]) for e in reset.pending] == [(2, "b"), (3, "b"), (4, "c")]
        assert [(e.seq_num, e.args["id"]) for e in reset.kept] == [(1, "b"), (2, "b"), (3, "c")]
        assert "the backend was reset" in caplog.text
        assert "kept 3 pending" in caplog.text
    assert [event.seq_num for event in second.store.read("todos", 0)] == [1, 2, 3, 4]
    with make_store(second, ":memory:") as reader:  # everyone else sees the kept commits
        reader.sync()
        assert texts(reader) == ["new world", "offline 1", "offline 2"]


def test_default_reset_policy_also_keeps_pending_commits(tmp_path: Path) -> None:
    path, _, second = offline_commits_then_reset(tmp_path)
    with make_store(second, path) as store:
        store.sync()
        assert texts(store) == ["new world", "offline 1", "offline 2"]
        assert store.pending_events() == []


def test_fail_policy_raises_with_the_pending_events_and_changes_nothing(tmp_path: Path) -> None:
    path, first, second = offline_commits_then_reset(tmp_path)
    errors: list[Exception] = []
    with make_store(second, path, on_backend_reset="fail", on_sync_error=errors.append) as store:
        with pytest.raises(BackendResetError, match="3 pending") as raised:
            store.sync()
        assert errors == [raised.value]
        assert [(e.seq_num, e.args["id"]) for e in raised.value.pending] == [(2, "b"), (3, "b"), (4, "c")]
        assert raised.value.backend_id == first.store.backend_id("todos")
        assert raised.value.new_backend_id == second.store.backend_id("todos")
        assert texts(store) == ["old world", "offline 1", "offline 2"]
        assert [e.seq_num for e in store.pending_events()] == [2, 3, 4]
        store.on_backend_reset = "reset"  # the app decides to go on with the new backend
        store.sync()
        assert texts(store) == ["new world", "offline 1", "offline 2"]


CRASHING_CHILD = textwrap.dedent(
    """
    import os, sys
    from stratasync.client import Store
    from stratasync.client.todos import schema as todos
    from tests.client.fakes import ScriptedTransport

    created = todos.materializers["v1.TodoCreated"]

    def crash_on_c(args):
        if args.id == "c":  # the last pending event, in the middle of the reset's transaction
            print("crashing", flush=True)
            os._exit(3)
        return created(args)

    crashing = todos.extend(materializers={"v1.TodoCreated": crash_on_c})
    store = Store(crashing, "todos", sys.argv[1], transport=ScriptedTransport(backend_id="another"))
    store.sync(timeout=10)
    """
)


def test_a_crash_in_the_middle_of_a_reset_loses_no_pending_event(tmp_path: Path) -> None:
    path, first, second = offline_commits_then_reset(tmp_path)
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_CHILD, path], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 3, child.stderr
    assert "crashing" in child.stdout
    with make_store(second, path) as store:  # as before the reset: nothing half done
        assert store.backend_id == first.store.backend_id("todos")
        assert store.upstream_head == 1
        assert [(e.seq_num, e.args["id"]) for e in store.pending_events()] == [(2, "b"), (3, "b"), (4, "c")]
        assert texts(store) == ["old world", "offline 1", "offline 2"]
        store.sync()  # and the real reset then keeps them
        assert texts(store) == ["new world", "offline 1", "offline 2"]
        assert store.pending_events() == []
