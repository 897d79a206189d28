"""A crash after every step (and inside the long ones) of import, delete, reset and restore:
the journal says what was done, and running the same operation again finishes the job."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from stratasync.operations import Connection, Journal, Target, connect
from stratasync.operations import erase as erase_module
from stratasync.operations import transfer as transfer_module
from stratasync.operations.erase import DELETE_STEPS, RESET_STEPS, erase
from stratasync.operations.restore import RESTORE_STEPS, restore
from stratasync.operations.transfer import IMPORT_STEPS, import_file
from stratasync.storage.s3 import S3SegmentStorage
from tests.conftest import TABLE
from tests.operations.helpers import (
    all_events,
    cli,
    event,
    filled_and_archived,
    items_of,
    new_store,
    options,
    target,
    versioned_bucket,
    versions_of,
)

#: CI runs a crash after a few representative steps of each operation (CI's time budget);
#: STRATASYNC_CRASH_MATRIX=full runs one after every step and inside every long one.
FULL_MATRIX = os.environ.get("STRATASYNC_CRASH_MATRIX") == "full"


def matrix(steps: Sequence[object], representative: Sequence[object]) -> list[Any]:
    skip = [] if FULL_MATRIX else [pytest.mark.skip(reason="STRATASYNC_CRASH_MATRIX=full runs it")]
    return [
        pytest.param(
            *(step if isinstance(step, tuple) else (step,)), marks=[] if step in representative else skip
        )
        for step in steps
    ]


class Crash(Exception):  # noqa: N818 - a test signal
    pass


@pytest.fixture
def t(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Target:
    versioned_bucket(moto_endpoint)
    # small rounds, so that a small store crosses several (and the tests stay fast)
    monkeypatch.setattr(erase_module, "ERASE_ITEMS_CHUNK", 8)
    monkeypatch.setattr(erase_module, "ERASE_VERSIONS_CHUNK", 2)
    monkeypatch.setattr(transfer_module, "IMPORT_BATCH_EVENTS", 10)
    return target(moto_endpoint, moto_endpoint, TABLE, segment_events=10)


def crash_at(step: str, nth: int = 1) -> Callable[[str], None]:
    seen = {"count": 0}

    def checkpoint(name: str) -> None:
        if name == step:
            seen["count"] += 1
            if seen["count"] == nth:
                raise Crash(step)

    return checkpoint


def crashed(journal: Journal, run: Callable[[Journal], Any], step: str) -> None:
    with pytest.raises(Crash):
        run(journal)
    said = journal.stopped(Crash(step))
    assert "run the same command again" in said
    done = [name for name, _ in journal.done]
    if ":" not in step:
        assert done[-1] == step  # the step it crashed after is reported done
    assert journal.remaining() == [name for name in journal.steps if name not in done]


@pytest.mark.parametrize(
    "step",
    matrix(
        [*DELETE_STEPS, "erase-items:progress", "erase-objects:progress"],
        ["erase-items:progress", "erase-objects:progress"],
    ),
)
def test_delete_crashing_after_each_step_finishes_on_a_rerun(t: Target, step: str) -> None:
    store_id = new_store()
    conn = connect(t)
    filled_and_archived(conn, store_id, 36, per_batch=3)  # > 8 items, > 2 versions: several rounds

    def run(journal: Journal) -> Any:
        return erase(connect(t), store_id, journal, kind="delete", grace_seconds=0)

    crashed(Journal("delete", store_id, DELETE_STEPS, checkpoint=crash_at(step)), run, step)
    result = run(Journal("delete", store_id, DELETE_STEPS))
    assert items_of(conn, store_id) == []
    assert versions_of(conn, store_id) == []
    assert result.items_left == 0


@pytest.mark.parametrize("step", matrix([*RESET_STEPS, "erase-items:progress"], ["export"]))
def test_reset_crashing_after_each_step_finishes_on_a_rerun(t: Target, tmp_path: Path, step: str) -> None:
    store_id = new_store()
    conn = connect(t)
    stored = filled_and_archived(conn, store_id, 36, per_batch=3)
    old = conn.storage.backend_id(store_id)
    dump = tmp_path / "dump.ndjson"

    def run(journal: Journal) -> Any:
        return erase(connect(t), store_id, journal, kind="reset", grace_seconds=0, export_path=str(dump))

    first = Journal("reset", store_id, RESET_STEPS, checkpoint=crash_at(step))
    crashed(first, run, step)
    planned = conn.admin.meta(store_id)
    result = run(Journal("reset", store_id, RESET_STEPS))
    new = result.new_backend_id
    assert new != old
    if planned is not None and "newBackendId" in planned:
        assert new == planned["newBackendId"]["S"]  # the id the first run chose
    assert dump.read_text().splitlines() == stored
    assert items_of(conn, store_id) == ["meta"]
    assert versions_of(conn, store_id) == []
    assert connect(t).storage.backend_id(store_id) == new


@pytest.mark.parametrize("step", matrix(RESTORE_STEPS, ["index"]))
def test_restore_crashing_after_each_step_finishes_on_a_rerun(t: Target, step: str) -> None:
    store_id = new_store()
    conn = connect(t)
    stored = filled_and_archived(conn, store_id, 36, per_batch=3)
    backend_id = conn.storage.backend_id(store_id)
    sealed = conn.storage.last_segment(store_id)
    assert sealed is not None
    erase(
        conn,
        store_id,
        Journal("delete", store_id, DELETE_STEPS),
        kind="delete",
        grace_seconds=0,
        keep_archive=True,
    )

    def run(journal: Journal) -> Any:
        return restore(connect(t), store_id, journal)

    crashed(Journal("restore", store_id, RESTORE_STEPS, checkpoint=crash_at(step)), run, step)
    run(Journal("restore", store_id, RESTORE_STEPS))
    after = connect(t)
    assert after.storage.backend_id(store_id) == backend_id
    assert all_events(after, store_id) == stored[: sealed.last_position]
    from stratasync.operations.inspect import inspect_store

    assert inspect_store(after, store_id, verify=True).consistent


@pytest.mark.parametrize(
    ("step", "nth"),
    matrix(
        [
            ("check-file", 1),
            ("check-store", 1),
            ("append:progress", 1),
            ("append:progress", 4),
            ("append", 1),
            ("archive", 1),
        ],
        [("append:progress", 4)],
    ),
)
def test_import_crashing_after_each_step_finishes_on_a_rerun(
    t: Target, tmp_path: Path, step: str, nth: int
) -> None:
    store_id = new_store()
    path = tmp_path / "events.ndjson"
    lines = [json.dumps(event(seq)) for seq in range(1, 66)]
    path.write_text("\n".join(lines) + "\n")

    def run(journal: Journal) -> Any:
        return import_file(connect(t), store_id, str(path), journal)

    crashed(Journal("import", store_id, IMPORT_STEPS, checkpoint=crash_at(step, nth)), run, step)
    result = run(Journal("import", store_id, IMPORT_STEPS))
    conn: Connection = connect(t)
    assert [json.loads(text) for text in all_events(conn, store_id)] == [json.loads(line) for line in lines]
    if step == "append:progress":
        assert result.already_there == nth * 10
    from stratasync.operations.inspect import inspect_store

    assert inspect_store(conn, store_id, verify=True).consistent


def test_the_cli_says_what_was_done_and_what_is_left_when_a_delete_stops(
    t: Target, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store_id = new_store()
    filled_and_archived(connect(t), store_id, 40)
    original = S3SegmentStorage.delete_versions

    def refused(self: S3SegmentStorage, versions: object) -> None:
        from stratasync.storage import StorageError

        raise StorageError("S3 DeleteObjects failed: AccessDenied")

    monkeypatch.setattr(S3SegmentStorage, "delete_versions", refused)
    code, _, err = cli(capsys, "backend", "delete", "--store", store_id, "--yes", "--grace", "0", *options(t))
    assert code == 1
    assert "stopped on store" in err
    assert "AccessDenied" in err
    assert "done so far: marked the store" in err
    assert "deleted " in err  # the DynamoDB items went
    assert "not done: erase-objects, unfence, finish" in err
    assert "run the same command again to finish it" in err
    monkeypatch.setattr(S3SegmentStorage, "delete_versions", original)
    code, _, err = cli(capsys, "backend", "delete", "--store", store_id, "--yes", "--grace", "0", *options(t))
    assert code == 0, err
    assert items_of(connect(t), store_id) == []
    assert versions_of(connect(t), store_id) == []
