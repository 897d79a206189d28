"""The Python client and the real LiveStore JS client write into one store through
``stratasync dev`` at the same time; both end with the same ordered eventlog."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from stratasync.client import RetryPolicy, Store, jsoncodec
from stratasync.client.todos import (
    Todo,
    schema,
    todo_completed,
    todo_created,
    todo_deleted,
    todo_uncompleted,
    todos,
)
from stratasync.devserver import DevServer
from tests.emulators import missing

INTEROP = Path(__file__).parents[1] / "interop"

pytestmark = pytest.mark.interop


def test_python_and_livestore_clients_share_one_store(dev_server: DevServer, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (INTEROP / "node_modules" / "@livestore" / "sync-cf").exists():
        missing("node and the LiveStore client (npm ci in tests/interop) are needed")
    assert node is not None
    store_id = f"mixed-{uuid.uuid4().hex[:8]}"
    result: dict[str, object] = {}

    def run_js() -> None:
        completed = subprocess.run(
            [node, str(INTEROP / "livestore_driver.mjs"), dev_server.url, "writer", store_id],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
            env={**os.environ, "DRIVER_WRITER_EVENTS": "40", "DRIVER_WRITER_EXPECT": "80"},
        )
        result["js"] = completed

    js = threading.Thread(target=run_js)
    with Store(
        schema,
        store_id,
        str(tmp_path / "py.db"),
        backend_url=dev_server.url,
        retry=RetryPolicy(initial_seconds=0.01, max_seconds=0.2),
    ) as store:
        js.start()
        for number in range(40):
            store.commit(todo_created(id=f"py-{number}", text=f"from Python {number}"))
            if number % 4 == 3:
                store.sync(timeout=60)
        js.join()
        store.sync(timeout=60)
        completed = result["js"]
        assert isinstance(completed, subprocess.CompletedProcess)
        report = json.loads(completed.stdout)
        assert report["ok"], completed.stdout + completed.stderr
        store.sync(timeout=60)
        python_log = [event.encoded() for event in store.events()]
    js_log = report["log"]
    assert len(python_log) == 80
    assert js_log == python_log  # the same events in the same order, seen from both clients
    ids = sorted(event["args"]["id"] for event in python_log)
    assert ids == sorted([f"py-{n}" for n in range(40)] + [f"js-{n}" for n in range(40)])
    assert [event["seqNum"] for event in python_log] == list(range(1, 81))


def test_the_todo_example_shares_a_store_with_livestores_todomvc_schemas(
    dev_server: DevServer, tmp_path: Path
) -> None:
    """Golden: the Python todo example and LiveStore's TodoMVC event schemas (Schema.Struct, Schema.Date)
    read each other's events, and encode the same args to the same JSON."""
    node = shutil.which("node")
    if node is None or not (INTEROP / "node_modules" / "@livestore" / "common").exists():
        missing("node and the LiveStore client (npm ci in tests/interop) are needed")
    assert node is not None
    store_id = f"todomvc-{uuid.uuid4().hex[:8]}"
    deleted_at = dt.datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=dt.UTC)
    with Store(schema, store_id, str(tmp_path / "py.db"), backend_url=dev_server.url) as store:
        store.commit(
            todo_created(id="py-1", text="from Python é ✓"),
            todo_completed(id="py-1"),
            todo_uncompleted(id="py-1"),
            todo_deleted(id="py-1", deleted_at=deleted_at),
        )
        store.sync(timeout=60)
        completed = subprocess.run(
            [node, str(INTEROP / "livestore_driver.mjs"), dev_server.url, "todomvc", store_id],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        report = json.loads(completed.stdout)
        assert report["ok"], completed.stdout + completed.stderr
        # LiveStore decodes every Python event, and encodes its args back to the same JSON.
        ours = [event.encoded() for event in store.events()]
        assert [d["ok"] for d in report["decoded"]] == [True] * 4, report["decoded"]
        assert [d["reencoded"] for d in report["decoded"]] == [event["args"] for event in ours]
        assert ours[3]["args"] == {"id": "py-1", "deletedAt": "2026-02-03T04:05:06.789Z"}
        # Python decodes and materializes LiveStore's events into the typed table.
        store.sync(timeout=60)
        assert [event.encoded() for event in store.events()[4:]] == report["pushed"]
        js_todo = store.query(todos.where(id="js-1").first())
        assert js_todo == Todo(
            id="js-1",
            text="from LiveStore",
            completed=False,
            deleted_at=dt.datetime(2026, 5, 6, 7, 8, 9, 10000, tzinfo=dt.UTC),
        )
        assert store.query(todos.where(deleted_at=None).count()) == 0
    # The same inputs give byte-identical JSON on both sides.
    golden_created = todo_created(id="g", text="golden ✓ \u00e9")
    golden_deleted = todo_deleted(id="g", deleted_at=dt.datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=dt.UTC))
    for event in (golden_created, golden_deleted):
        python_json = jsoncodec.dumps(event.definition.encode_args(event.args))
        assert python_json == jsoncodec.dumps(report["golden"][event.name]), event.name
