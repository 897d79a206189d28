"""``stratasync store info|events`` on a real store file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from stratasync.client import Store
from stratasync.client.todos import schema, todo_created
from stratasync.core import SyncService
from stratasync.storage.memory import InMemoryStorage
from tests.client.fakes import InProcessTransport
from tests.devserver_process import STRATASYNC


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(STRATASYNC), *args], capture_output=True, text=True, timeout=60, check=False)


def test_store_info_and_events(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    service = SyncService(InMemoryStorage())
    with Store(schema, "cli-store", path, transport=InProcessTransport(service, "cli-store")) as store:
        store.commit(todo_created(id="a", text="milk"))
        store.sync()
        store.commit(todo_created(id="b", text="bread"))
        client_id = store.client_id

    info = json.loads(run("store", "info", path, "--json").stdout)
    assert info == {
        "store_id": "cli-store",
        "client_id": client_id,
        "backend_id": service.store.backend_id("cli-store"),
        "upstream_head": 1,
        "local_head": 2,
        "events": 2,
        "pending": 1,
        "rebase_generation": 0,
    }
    text = run("store", "events", path).stdout
    assert "#1      synced" in text
    assert "#2      pending  " + client_id in text
    assert '"text": "bread"' in text
    pending = [
        json.loads(line) for line in run("store", "events", path, "--pending", "--json").stdout.splitlines()
    ]
    assert [event["seqNum"] for event in pending] == [2]


def test_store_commands_explain_bad_paths(tmp_path: Path) -> None:
    missing = run("store", "info", str(tmp_path / "nope.db"))
    assert missing.returncode != 0
    assert "no such file" in missing.stderr
    other = tmp_path / "other.db"
    other.write_text("not sqlite")
    assert "is not a stratasync store" in run("store", "events", str(other)).stderr
