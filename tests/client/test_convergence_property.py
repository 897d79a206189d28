"""Property: for any interleaving of commits on several clients, sync steps, lost responses and
network failures, all clients end with the same eventlog order and tables, and no event is lost
or doubled (checked against a small reference model of the todo app)."""

from __future__ import annotations

import contextlib
import itertools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratasync.client import RetryPolicy, Store, TransportError
from stratasync.client.todos import schema, todo_completed, todo_created
from stratasync.core import SyncService
from stratasync.protocol import ServerAheadError
from stratasync.storage.memory import InMemoryStorage
from tests.client.fakes import InProcessTransport, engine

FAST = RetryPolicy(initial_seconds=0.0, max_seconds=0.0)

action = st.one_of(
    st.tuples(st.just("commit"), st.integers(0, 3), st.integers(1, 3)),
    st.tuples(st.just("complete"), st.integers(0, 3), st.integers(0, 50)),
    st.tuples(st.sampled_from(["pull", "push", "round"]), st.integers(0, 3), st.just(0)),
    st.tuples(st.sampled_from(["lose", "fail"]), st.integers(0, 3), st.sampled_from([0, 1])),
)


def reference_tables(log: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """The todos table the backend's log must produce (a model independent of SQLite)."""
    todos: dict[str, list[Any]] = {}
    for event in log:
        if event["name"] == "v1.TodoCreated":
            assert event["args"]["id"] not in todos, "an event was applied twice"
            todos[event["args"]["id"]] = [event["args"]["text"], 0]
        elif event["name"] == "v1.TodoCompleted" and event["args"]["id"] in todos:
            todos[event["args"]["id"]][1] = 1
    return sorted((todo_id, text, done) for todo_id, (text, done) in todos.items())


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clients=st.integers(3, 4), actions=st.lists(action, max_size=40))
def test_any_interleaving_converges(clients: int, actions: list[tuple[str, int, int]]) -> None:
    service = SyncService(InMemoryStorage())
    transports = [InProcessTransport(service, "prop") for _ in range(clients)]
    stores = [Store(schema, "prop", transport=transport, retry=FAST) for transport in transports]
    counter = itertools.count()
    created: list[str] = []
    try:
        for kind, who, value in actions:
            index = who % clients
            store, transport = stores[index], transports[index]
            if kind == "commit":
                ids = [f"t{next(counter)}" for _ in range(value)]
                store.commit(*(todo_created(id=todo_id, text=f"{todo_id} by {index}") for todo_id in ids))
                created.extend(ids)
            elif kind == "complete":
                known = [row[0] for row in store.query("SELECT id FROM todos")]
                if known:
                    store.commit(todo_completed(id=known[value % len(known)]))
            else:
                if kind == "lose":
                    transport.lose_next_response = True
                elif kind == "fail":
                    transport.fail_next = True
                step = {
                    "pull": engine(store).pull_until_current,
                    "push": engine(store).push_pending,
                    "round": engine(store).round,
                }.get(kind) or (
                    engine(store).pull_until_current if value == 0 else engine(store).push_pending
                )
                with contextlib.suppress(TransportError, ServerAheadError):
                    step()
                transport.lose_next_response = transport.fail_next = False
        for store in stores:
            store.sync(timeout=30)
        for store in stores:
            store.sync(timeout=30)

        backend_log = [json.loads(event.event_json) for event in service.store.read("prop", 0)]
        created_on_backend = [e["args"]["id"] for e in backend_log if e["name"] == "v1.TodoCreated"]
        assert sorted(created_on_backend) == sorted(created)  # nothing lost, nothing doubled
        assert [e["seqNum"] for e in backend_log] == list(range(1, len(backend_log) + 1))
        expected = reference_tables(backend_log)
        for store in stores:
            assert [e.encoded() for e in store.events()] == backend_log
            assert not store.pending_events()
            rows = store.query("SELECT id, text, completed FROM todos ORDER BY id")
            assert sorted(tuple(row) for row in rows) == expected
    finally:
        for store in stores:
            store.close()
