"""The demo's web part: a Python agent and the LiveStore web app (``/app/``) in one store.

The agent is a :class:`~stratasync.client.Store` on its own SQLite file, syncing in the background
through the same dev server as the page. It commits a todo now and then, and prints every event
that another client (the page, or a second tab) syncs into the store.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from stratasync.client.events import LoggedEvent
from stratasync.client.store import Store
from stratasync.client.todos import schema, todo_created, todos

#: What the agent writes, one every ``interval`` seconds.
AGENT_TODOS = (
    "water the plants",
    "book the dentist",
    "renew the passport",
    "back up the laptop",
    "plan the weekend",
)


def describe(store: Store, event: LoggedEvent) -> str:
    """One event in words: ``+ "buy bread"``, ``[x] "buy bread"``, ``deleted "buy bread"``."""
    todo_id = event.args.get("id")
    if event.name == "v1.TodoCreated":
        return f'+ "{event.args.get("text")}"'
    row = store.query(todos.where(id=todo_id).first())
    text = f'"{row.text}"' if row is not None else repr(todo_id)
    verbs = {"v1.TodoCompleted": "[x]", "v1.TodoUncompleted": "[ ]", "v1.TodoDeleted": "deleted"}
    return f"{verbs.get(event.name, event.name)} {text}"


def run_web_agent(
    sync_url: str,
    app_url: str,
    store_id: str,
    *,
    seconds: float | None = None,
    interval: float = 5.0,
    agent_todos: tuple[str, ...] = AGENT_TODOS,
    out: TextIO = sys.stdout,
    stop: threading.Event | None = None,
    folder: str | None = None,
) -> None:
    """Run the agent until ``seconds`` pass, ``stop`` is set, or Ctrl-C; with ``folder`` its
    SQLite file (``agent.db``) is kept there, for a caller to inspect after the run."""
    stop = stop or threading.Event()

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    page_url = f"{app_url}?storeId={store_id}"
    say(f"\nWeb app: {page_url}")
    say("  Open it in a browser on this machine: LiveStore's TodoMVC, on this dev server.")
    say("  A Python agent writes into the same store; what you do in the page shows here.")
    say("  Ctrl-C to stop.")
    with tempfile.TemporaryDirectory(prefix="stratasync-agent-") as scratch:
        path = str(Path(folder or scratch) / "agent.db")
        with Store(schema, store_id, path, backend_url=sync_url, poll_interval=0.5) as agent:
            agent.sync()
            cursor = agent.upstream_head
            say(f"  agent (client {agent.client_id}) joined: {len(agent.query(todos))} todos in the store")
            agent.start_sync()
            deadline = None if seconds is None else time.monotonic() + seconds
            next_write = time.monotonic() + min(interval, 2.0)
            queue = list(agent_todos)
            try:
                while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                    now = time.monotonic()
                    if queue and now >= next_write:
                        text = queue.pop(0)
                        agent.commit(todo_created(id=uuid.uuid4().hex[:12], text=text))
                        say(f'  agent  + "{text}"')
                        next_write = now + interval
                        if not queue:
                            say("  agent: that was the last of its todos; it keeps watching the store")
                    cursor = _print_others(agent, cursor, say)
                    stop.wait(0.2)
            except KeyboardInterrupt:
                say("  stopped")
            _print_others(agent, cursor, say)


def _print_others(agent: Store, cursor: int, say: Callable[[str], None]) -> int:
    """Print the confirmed events after ``cursor`` that other clients made; the new cursor."""
    for event in agent.events(after=cursor):
        if event.pending:
            break
        cursor = event.seq_num
        if event.client_id != agent.client_id:
            say(f"  page   {describe(agent, event)}   (client {event.client_id})")
    return cursor
