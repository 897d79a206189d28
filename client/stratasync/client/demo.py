"""The todo demo: two local stores sync through a backend; a conflict is resolved by rebase."""

from __future__ import annotations

import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from stratasync.client.store import Store
from stratasync.client.todos import schema, todo_completed, todo_created, todos


def run_demo(url: str, out: TextIO = sys.stdout, store_id: str | None = None) -> bool:
    """Run the demo against a sync-cf backend at ``url``; True if both stores converged."""

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    store_id = store_id or new_demo_store_id()
    say(f"\nTodo demo: store {store_id!r} at {url}")
    with tempfile.TemporaryDirectory(prefix="stratasync-demo-") as folder:
        alice = Store(schema, store_id, str(Path(folder) / "alice.db"), backend_url=url)
        bob = Store(schema, store_id, str(Path(folder) / "bob.db"), backend_url=url)
        with alice, bob:
            changes: list[int] = []
            bob.subscribe(todos.count(), changes.append)

            alice.commit(todo_created(id="a1", text="buy milk"), todo_created(id="a2", text="walk the dog"))
            bob.commit(todo_created(id="b1", text="call mum"), todo_completed(id="b1"))
            say("  alice and bob each commit offline: both logs start at seqNum 1")
            say(f"    alice pending: {_describe(alice.pending_events())}")
            say(f"    bob   pending: {_describe(bob.pending_events())}")

            alice.sync()
            say(f"  alice syncs: her 2 events are confirmed (upstream head {alice.upstream_head})")
            bob.sync()
            say(
                "  bob syncs: his push is refused (ServerAheadError), he pulls alice's events, rolls back"
                " his own,\n    applies hers and re-applies his on top: rebase generation"
                f" {bob.rebase_generation},"
                f" now {_describe(bob.events(after=2))}"
            )
            alice.sync()
            say("  alice syncs again and receives bob's events")

            rows_alice = alice.query(todos.order_by("id"))
            rows_bob = bob.query(todos.order_by("id"))
            for todo in rows_alice:
                say(f"    [{'x' if todo.completed else ' '}] {todo.text}")
            say(f"  bob's subscription saw the todo count go {' -> '.join(map(str, changes))}")
            same = rows_alice == rows_bob and _log(alice) == _log(bob) and not alice.pending_events()
            say("  both stores hold the same eventlog and tables: " + ("yes" if same else "NO"))
            return same


def new_demo_store_id() -> str:
    """A fresh store id (letters, digits and ``-``: one the LiveStore web app can open too)."""
    return f"todo-demo-{secrets.token_hex(3)}"


def _describe(events: list[Any]) -> str:
    return ", ".join(f"#{event.seq_num} {event.name}({event.args.get('id')})" for event in events) or "-"


def _log(store: Store) -> list[tuple[int, str, str, Any]]:
    return [(event.seq_num, event.name, event.client_id, event.args) for event in store.events()]
