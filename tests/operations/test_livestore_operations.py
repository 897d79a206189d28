"""The real LiveStore client (tests/interop/livestore_driver.mjs) and the Python client against
stores the operator's commands changed, through ``stratasync dev`` on the same storage the
commands work on: embedded moto, and DynamoDB Local with SeaweedFS.

* export -> import into a new store -> a pull by the LiveStore client gives exactly the file's
  events (and the original's);
* the restore drill: the store's items deleted, restored from S3, and a LiveStore client and a
  Python client go on from their cursors without a reset.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stratasync.client import RetryPolicy, Store
from stratasync.client.todos import schema, todo_created
from stratasync.devserver import DevServer, DevServerConfig
from stratasync.operations import Target, connect
from tests.conftest import TABLE
from tests.emulators import missing
from tests.operations.helpers import (
    BUCKET,
    all_events,
    cli,
    cli_json,
    delete_keeping_archive,
    fill,
    filled_and_archived,
    items_of,
    new_store,
    options,
    target,
    versioned_bucket,
)

INTEROP = Path(__file__).parents[1] / "interop"

pytestmark = pytest.mark.interop


@pytest.fixture(
    scope="module",
    params=[
        "moto",
        pytest.param("dynamodb-local+seaweedfs", marks=[pytest.mark.dynamodb_local, pytest.mark.seaweedfs]),
    ],
)
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Target, DevServer]]:
    """A target and a dev server on it (its own archiver off: the tests seal segments themselves)."""
    if request.param == "moto":
        endpoint = request.getfixturevalue("moto_endpoint")
        dynamodb, s3 = endpoint, endpoint
    else:
        dynamodb = request.getfixturevalue("dynamodb_local_endpoint")
        s3 = request.getfixturevalue("seaweedfs_endpoint")
    versioned_bucket(s3)
    t = target(dynamodb, s3, TABLE)
    config = DevServerConfig(
        port=0,
        workers=1,
        dynamodb_endpoint=dynamodb,
        s3_endpoint=s3,
        table_name=TABLE,
        bucket=BUCKET,
        segment_events=1_000_000,
    )
    with DevServer(config, out=open(os.devnull, "w")) as server:
        yield t, server


def livestore(url: str, scenario: str, store_id: str, **env: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (INTEROP / "node_modules" / "@livestore" / "sync-cf").exists():
        missing("node and the LiveStore client (npm ci in tests/interop) are needed")
    assert node is not None
    completed = subprocess.run(
        [node, str(INTEROP / "livestore_driver.mjs"), url, scenario, store_id],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, **env},
    )
    try:
        result: dict[str, Any] = json.loads(completed.stdout)
    except ValueError:
        pytest.fail(
            f"driver printed no JSON (exit {completed.returncode}):\n{completed.stdout}\n{completed.stderr}"
        )
    assert result["ok"], json.dumps(result, indent=2)
    return result


def test_livestore_pulls_exactly_the_imported_events(
    served: tuple[Target, DevServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t, server = served
    source, copy = new_store(), new_store()
    filled_and_archived(connect(t), source, 250, per_batch=25)
    dump = tmp_path / "export.ndjson"
    code, _, err = cli(capsys, "backend", "export", "--store", source, "-o", str(dump), *options(t))
    assert code == 0, err
    imported = cli_json(capsys, "backend", "import", "--store", copy, str(dump), *options(t))
    assert imported["segmentsSealed"] >= 2  # most of it is in S3 now

    file_events = [json.loads(line) for line in dump.read_text(encoding="utf-8").splitlines()]
    pulled_copy = livestore(server.url, "dump", copy)
    assert pulled_copy["events"] == file_events
    assert pulled_copy["backendId"] == imported["backendId"]
    # (the file is the source's log: the suite checks export against what was pushed)


def test_the_restore_drill_livestore_and_python_clients_go_on_without_a_reset(
    served: tuple[Target, DevServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t, server = served
    store_id = new_store()
    conn = connect(t)
    path = str(tmp_path / "python-client.db")
    retry = RetryPolicy(initial_seconds=0.01, max_seconds=0.2)

    def python_client() -> Store:  # a reset would raise: on_backend_reset="fail"
        return Store(schema, store_id, path, backend_url=server.url, retry=retry, on_backend_reset="fail")

    with python_client() as store:
        for number in range(12):
            store.commit(todo_created(id=f"py-{number}", text=f"from Python {number}"))
        store.sync(timeout=60)
        backend_id = store.backend_id
        assert backend_id is not None
        assert store.upstream_head == 12
    fill(conn, store_id, 48, per_batch=4, start=12)  # other clients go on meanwhile: head 60
    conn.archiver().archive(store_id)
    sealed = conn.storage.last_segment(store_id)
    assert sealed is not None
    assert 20 <= sealed.last_seq_num < 60
    before = [json.loads(text) for text in all_events(conn, store_id)]  # what a pull returns

    # the drill: the store's DynamoDB items are lost ...
    delete_keeping_archive(capsys, store_id, t)
    assert items_of(conn, store_id) == []
    # ... and restored from S3, under the same backend id
    code, out, err = cli(capsys, "backend", "restore", "--store", store_id, *options(t))
    assert code == 0, err
    assert f"backend id {backend_id} (kept" in out
    assert f"LOST: the events after seqNum {sealed.last_seq_num}" in out

    # a LiveStore client that had synced up to seqNum 15 pulls on and pushes, no reset
    resumed = livestore(server.url, "resume", store_id, DRIVER_BACKEND_ID=backend_id, DRIVER_CURSOR="15")
    assert resumed.get("pullError") is None
    assert resumed["pushError"] is None
    assert resumed["events"] == before[15 : sealed.last_seq_num]
    assert resumed["pushedSeqNum"] == sealed.last_seq_num + 1
    assert resumed["backendId"] == backend_id

    # the Python client (cursor 12) commits offline, syncs: its event goes on top, no reset
    with python_client() as store:
        store.commit(todo_created(id="py-after", text="after the restore"))
        store.sync(timeout=60)
        assert store.backend_id == backend_id
        assert store.rebase_generation >= 1  # it rebased onto the events it had not seen
        log = [event.encoded() for event in store.events()]
    assert [event["seqNum"] for event in log] == list(range(1, sealed.last_seq_num + 3))
    assert log[: sealed.last_seq_num] == before[: sealed.last_seq_num]
    assert log[-1]["args"]["id"] == "py-after"
    assert livestore(server.url, "dump", store_id)["events"] == log
