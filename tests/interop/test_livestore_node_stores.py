"""Two real LiveStore stores (``@livestore/livestore`` with ``@livestore/adapter-node`` 0.4.0, each
syncing with ``makeWsSync``) and a live Python ``Store`` (``transport="ws"``) on one store id through
``stratasync dev``: all three commit at once and converge on the same todos and the same eventlog.

``livestore_node_stores.mjs`` runs the two LiveStore stores in one node process (see README.md): A
and B commit todos in the same tick on the same head (so one of them has to rebase), then toggle
completions of each other's todos and delete one, and the script waits until both todos tables are
exactly the expected table (Python's todos included), nothing is pending, and both eventlogs are
e1..eN with each seqNum once and the same on both. The Python store commits its events while the
node stores are connected, then has to reach the same table and the same eventlog.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from stratasync.client import RetryPolicy, Store
from stratasync.client.todos import schema, todo_completed, todo_created, todos
from stratasync.devserver import DevServer
from tests.client.wsfake import wait_until
from tests.emulators import missing

SCRIPT = Path(__file__).parent / "livestore_node_stores.mjs"
NODE_MODULES = Path(__file__).parent / "node_modules"
RETRY = RetryPolicy(initial_seconds=0.01, max_seconds=0.5)

#: The Python store's todos, as the node stores must end up holding them, and its event count.
PYTHON_TODOS = [
    {"id": "py-0", "text": "from Python 0", "completed": True},
    {"id": "py-1", "text": "from Python 1", "completed": False},
]
PYTHON_EVENTS = 3

pytestmark = pytest.mark.interop


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        missing("node is not installed, so the real LiveStore stores cannot run")
    for package in ("livestore", "adapter-node", "sync-cf"):
        if not (NODE_MODULES / "@livestore" / package).exists():
            missing(f"@livestore/{package} is not installed (npm ci in tests/interop)")
    assert node is not None
    return node


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _rows(store: Store) -> list[dict[str, Any]]:
    return [
        {"id": row.id, "text": row.text, "completed": bool(row.completed), "deletedAt": _iso(row.deleted_at)}
        for row in store.query(todos.order_by("id"))
    ]


def _eventlog(store: Store) -> list[dict[str, Any]]:
    return [
        {"seqNum": event.seq_num, "name": event.name, "id": event.args["id"], "clientId": event.client_id}
        for event in store.events()
    ]


def test_two_adapter_node_stores_and_a_python_store_converge_over_websocket(
    dev_server: DevServer, tmp_path: Path
) -> None:
    node = _node()
    api = dev_server.websocket
    if api is None:
        pytest.skip("this dev server runs without WebSocket")
    store_id = f"node-stores-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        # boot and convergence; loading LiveStore (4-20 s on 2 loaded cores) comes before
        "NODE_STORES_TIMEOUT_MS": "40000",
        "NODE_STORES_EXTRA_TODOS": json.dumps(PYTHON_TODOS),
        "NODE_STORES_EXTRA_EVENTS": str(PYTHON_EVENTS),
    }
    started = time.monotonic()
    with Store(
        schema,
        store_id,
        str(tmp_path / "py.db"),
        backend_url=dev_server.url,
        transport="ws",
        retry=RETRY,
        poll_interval=600,  # live only: no polling to paper over a missed live event
    ) as store:
        store.start_sync()
        wait_until(lambda: store.live, 30, "the Python store live")
        before = len(api.connection_ids())
        process = subprocess.Popen(
            [node, str(SCRIPT), dev_server.url, store_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

        concurrent: list[bool] = []

        def commit_once_the_node_stores_are_connected() -> None:
            # While A and B sync (their two sockets open); at the latest once node has exited.
            while len(api.connection_ids()) < before + 2 and process.poll() is None:
                time.sleep(0.02)
            concurrent.append(process.poll() is None)
            store.commit(
                todo_created(id="py-0", text="from Python 0"), todo_created(id="py-1", text="from Python 1")
            )
            store.commit(todo_completed(id="py-0"))

        committer = threading.Thread(target=commit_once_the_node_stores_are_connected, daemon=True)
        committer.start()
        try:
            stdout, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        committer.join(timeout=10)
        try:
            report: dict[str, Any] = json.loads(stdout)
        except ValueError:
            pytest.fail(
                f"the script printed no JSON (exit {process.returncode}):\n{stdout}\n{stderr[-3000:]}"
            )
        assert report["ok"], json.dumps(report, indent=2) + stderr[-3000:]
        assert process.returncode == 0

        # Both LiveStore stores hold every todo (theirs and Python's) and the same eventlog.
        head = report["head"]
        assert head == 4 * report["todosPerStore"] + 5 + PYTHON_EVENTS
        assert [event["seqNum"] for event in report["eventlog"]] == list(range(1, head + 1))
        assert {todo["id"] for todo in report["todos"]} >= {"py-0", "py-1", "a-0", "b-0"}
        clients = {event["clientId"] for event in report["eventlog"]}
        assert clients == {report["clientIds"]["a"], report["clientIds"]["b"], store.client_id}
        # They committed on the same head at once: one of them had to rebase (the session's local
        # head got a new rebase generation).
        assert max(report["rebaseGenerations"].values()) >= 1

        # The Python store converges on the same table and the very same eventlog.
        wait_until(
            lambda: store.upstream_head == head and not store.pending_events(),
            20,
            "the Python store at the LiveStore stores' head",
        )
        assert _rows(store) == report["todos"]
        assert _eventlog(store) == report["eventlog"]
    print(
        f"node stores: load {report['loadMs']} ms, boot {report['bootMs']} ms, converge "
        f"{report['convergeMs']} ms; Python committed while they synced: {concurrent == [True]}; "
        f"whole test {time.monotonic() - started:.1f} s"
    )
