"""The Python client and the real LiveStore JS client write into one store through
``stratasync dev`` at the same time; both end with the same ordered eventlog."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from stratasync.client import RetryPolicy, Store
from stratasync.client.todos import schema, todo_created
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
