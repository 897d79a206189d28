"""The operations suite: every ``stratasync backend`` subcommand through the CLI, on whatever
storage a subclass names (moto in the fast lane; DynamoDB Local with SeaweedFS in the emulator tier).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path

import pytest

from stratasync.core.service import SyncService
from stratasync.operations import Target, connect
from stratasync.protocol.errors import BackendIdMismatchError
from stratasync.protocol.messages import Cursor
from stratasync.storage import StoreLostError
from stratasync.storage.segments import StoreManifest, segments_prefix
from tests.operations.helpers import (
    all_events,
    cli,
    cli_json,
    delete_keeping_archive,
    event,
    fill,
    filled_and_archived,
    items_of,
    new_store,
    options,
    push,
    versions_of,
)


class OperationsSuite(ABC):
    """What every backend the CLI can operate on must show."""

    @abstractmethod
    def target(self) -> Target: ...

    @pytest.fixture
    def t(self) -> Target:
        return self.target()

    # -- list, inspect, tail -----------------------------------------------------------------------

    def test_list_and_inspect(self, t: Target, capsys: pytest.CaptureFixture[str]) -> None:
        store_id = new_store()
        filled_and_archived(connect(t), store_id, 75)
        listed = cli_json(capsys, "backend", "list", *options(t))
        [row] = [row for row in listed["stores"] if row["storeId"] == store_id]
        assert row["head"] == 75
        assert row["events"] == 75
        assert row["archive"]["segments"] >= 3
        assert row["archive"]["bytes"] > 0
        assert row["hot"]["events"] + row["archive"]["lastSealedSeqNum"] == 75
        report = cli_json(capsys, "backend", "inspect", "--store", store_id, "--verify", *options(t))
        assert report["consistent"], report["problems"]
        assert report["verifiedSegments"] == report["archive"]["segments"]
        assert report["backendId"] == connect(t).storage.backend_id(store_id)
        assert report["lastCommitAt"]
        code, out, _ = cli(capsys, "backend", "inspect", "--store", store_id, *options(t))
        assert code == 0
        assert "consistent" in out
        assert "seqNum 75 (75 events)" in out

    def test_inspect_verify_finds_a_corrupt_segment(
        self, t: Target, capsys: pytest.CaptureFixture[str]
    ) -> None:
        store_id = new_store()
        conn = connect(t)
        filled_and_archived(conn, store_id, 45)
        segment = next(conn.admin.segments(store_id))
        body, metadata = conn.segments.get_with_metadata(segment.key)
        self.overwrite(t, segment.key, body[:-3] + b"xyz", metadata)
        code, out, _ = cli(capsys, "backend", "inspect", "--store", store_id, "--verify", *options(t))
        assert code == 3
        assert "NOT CONSISTENT" in out
        assert "SHA-256 does not match" in out

    def overwrite(self, t: Target, key: str, body: bytes, metadata: dict[str, str]) -> None:
        connect(t).segments._client.put_object(Bucket=t.bucket, Key=key, Body=body, Metadata=metadata)

    def test_tail(self, t: Target, capsys: pytest.CaptureFixture[str]) -> None:
        store_id = new_store()
        stored = filled_and_archived(connect(t), store_id, 40)
        code, out, _ = cli(
            capsys, "backend", "tail", "--store", store_id, "--after", "5", "--json", *options(t)
        )
        assert code == 0
        assert out.splitlines() == stored[5:]  # archived and hot, in order
        code, out, _ = cli(capsys, "backend", "tail", "--store", store_id, *options(t))
        assert [line.split()[0] for line in out.splitlines()] == [f"#{seq}" for seq in range(31, 41)]

    def test_tail_follow_prints_events_as_they_commit(self, t: Target) -> None:
        from stratasync.operations.transfer import tail

        store_id = new_store()
        conn = connect(t)
        fill(conn, store_id, 3)
        seen: list[int] = []
        polls = iter(range(3))

        def keep_going() -> bool:
            step = next(polls, None)
            if step == 0:
                fill(conn, store_id, 2, start=3)
            return step is not None

        last = tail(
            conn,
            store_id,
            after=None,
            follow=True,
            on_event=lambda stored: seen.append(stored.seq_num),
            keep_going=keep_going,
            sleep=lambda seconds: None,
        )
        assert seen == [4, 5]
        assert last == 5

    # -- export and import ---------------------------------------------------------------------

    def test_export_then_import_into_a_new_store_gives_the_same_log(
        self, t: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        source, copy = new_store(), new_store()
        stored = filled_and_archived(connect(t), source, 130)
        dump = tmp_path / "dump.ndjson"
        code, _, err = cli(capsys, "backend", "export", "--store", source, "--output", str(dump), *options(t))
        assert code == 0, err
        assert dump.read_text().splitlines() == stored
        assert [json.loads(line)["seqNum"] for line in dump.read_text().splitlines()] == list(range(1, 131))
        result = cli_json(capsys, "backend", "import", "--store", copy, str(dump), *options(t))
        assert result["imported"] == 130
        assert result["segmentsSealed"] >= 1  # a big import lands in S3 as segments
        conn = connect(t)
        assert all_events(conn, copy) == stored
        assert list(conn.admin.segments(copy))
        again = tmp_path / "again.ndjson"
        cli(capsys, "backend", "export", "--store", copy, "-o", str(again), *options(t))
        assert again.read_bytes() == dump.read_bytes()  # byte for byte
        report = cli_json(capsys, "backend", "inspect", "--store", copy, "--verify", *options(t))
        assert report["consistent"]
        # and it syncs like any store: pull, then push on top of it
        service = SyncService(connect(t).log)
        pulled = service.pull(copy, None)
        assert sum(len(page.items) for page in pulled.pages) == 130
        assert push(service, copy, [event(131)], backend_id=pulled.backend_id).head == 131

    def test_export_to_stdout(self, t: Target, capsys: pytest.CaptureFixture[str]) -> None:
        store_id = new_store()
        stored = fill(connect(t), store_id, 9)
        code, out, err = cli(capsys, "backend", "export", "--store", store_id, *options(t))
        assert code == 0
        assert out.splitlines() == stored
        assert "exported 9 events" in err

    @pytest.mark.parametrize(
        ("bad", "message"),
        [
            (json.dumps({**event(302), "parentSeqNum": 301}), "line 301: the chain is broken"),
            ("not json", "line 301: not JSON"),
            (json.dumps({"name": "x", "seqNum": 301, "parentSeqNum": 300}), "line 301: not an event"),
            (json.dumps({**event(301), "args": {"v": float("nan")}}), "line 301: not JSON"),
            ("", "line 301: an empty line"),
            (json.dumps({**event(301), "args": {"text": "x" * 1_000_000}}), "line 301: the event is"),
            (json.dumps({**event(301), "seqNum": 300}), "line 301: seqNum 300 is not after its parent"),
        ],
    )
    def test_a_broken_file_is_refused_and_nothing_is_written(
        self, t: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str, message: str
    ) -> None:
        """The break comes after several batches' worth of good events: still nothing is written."""
        store_id = new_store()
        path = tmp_path / "broken.ndjson"
        good = [json.dumps(event(seq)) for seq in range(1, 301)]
        path.write_text("\n".join([*good, bad, json.dumps(event(302))]) + "\n")
        code, _, err = cli(capsys, "backend", "import", "--store", store_id, str(path), *options(t))
        assert code == 1
        assert message in err
        assert "nothing was written" in err
        conn = connect(t)
        assert items_of(conn, store_id) == []
        assert versions_of(conn, store_id) == []

    def test_a_file_whose_first_event_does_not_start_the_chain_is_refused(
        self, t: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        store_id = new_store()
        path = tmp_path / "late.ndjson"
        path.write_text(json.dumps({**event(5), "parentSeqNum": 4}) + "\n")
        code, _, err = cli(capsys, "backend", "import", "--store", store_id, str(path), *options(t))
        assert code == 1
        assert "line 1: the chain is broken" in err
        assert "the first event's parent must be 0" in err
        assert items_of(connect(t), store_id) == []

    def test_import_refuses_a_store_with_other_events(
        self, t: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        store_id = new_store()
        fill(connect(t), store_id, 3)
        path = tmp_path / "other.ndjson"
        path.write_text("".join(json.dumps(event(seq, text="other")) + "\n" for seq in range(1, 6)))
        code, _, err = cli(capsys, "backend", "import", "--store", store_id, str(path), *options(t))
        assert code == 1
        assert "not empty" in err
        assert len(all_events(connect(t), store_id)) == 3

    def test_import_with_a_backend_id(
        self, t: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        store_id = new_store()
        path = tmp_path / "e.ndjson"
        path.write_text("".join(json.dumps(event(seq)) + "\n" for seq in range(1, 4)))
        result = cli_json(
            capsys, "backend", "import", "--store", store_id, str(path), "--backend-id", "b-123", *options(t)
        )
        assert result["backendId"] == "b-123"
        assert connect(t).storage.backend_id(store_id) == "b-123"

    # -- delete and reset ------------------------------------------------------------------------

    def test_delete_leaves_no_item_and_no_object_version(
        self, t: Target, capsys: pytest.CaptureFixture[str]
    ) -> None:
        store_id = new_store()
        conn = connect(t)
        filled_and_archived(conn, store_id, 80, per_batch=30)  # batches with parts, too
        # a versioned bucket: an overwritten segment leaves a noncurrent version, a delete a marker
        segment = next(conn.admin.segments(store_id))
        body, metadata = conn.segments.get_with_metadata(segment.key)
        conn.segments.put(segment.key, body, sha256=segment.sha256, metadata=metadata)
        conn.segments._client.put_object(Bucket=t.bucket, Key=f"{segments_prefix(store_id)}stray", Body=b"x")
        conn.segments._client.delete_object(Bucket=t.bucket, Key=f"{segments_prefix(store_id)}stray")
        assert any(version.delete_marker for version in versions_of(conn, store_id))
        other = new_store()
        fill(conn, other, 2)

        code, _, err = cli(capsys, "backend", "delete", "--store", store_id, *options(t))
        assert code == 1
        assert "--yes" in err
        result = cli_json(
            capsys, "backend", "delete", "--store", store_id, "--yes", "--grace", "0", *options(t)
        )
        assert result["itemsLeft"] == 0
        assert result["objectVersionsLeft"] == 0
        assert result["deleteMarkersDeleted"] >= 1
        assert result["objectVersionsDeleted"] >= 4
        assert result["journal"]["remaining"] == []
        assert items_of(conn, store_id) == []
        assert versions_of(conn, store_id) == []
        assert len(all_events(conn, other)) == 2  # nothing of another store
        listed = cli_json(capsys, "backend", "list", *options(t))
        assert store_id not in [row["storeId"] for row in listed["stores"]]

    def test_reset_starts_over_with_a_new_backend_id(
        self, t: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        store_id = new_store()
        conn = connect(t)
        stored = filled_and_archived(conn, store_id, 50)
        old = conn.storage.backend_id(store_id)
        dump = tmp_path / "before-reset.ndjson"
        result = cli_json(
            capsys,
            "backend",
            "reset",
            "--store",
            store_id,
            "--yes",
            "--grace",
            "0",
            "--export",
            str(dump),
            *options(t),
        )
        assert result["backendId"] == old
        new = result["newBackendId"]
        assert new not in (None, old)
        assert dump.read_text().splitlines() == stored
        assert result["export"]["events"] == 50
        after = connect(t)
        assert items_of(after, store_id) == ["meta"]
        assert versions_of(after, store_id) == []
        assert after.storage.backend_id(store_id) == new
        service = SyncService(after.log)
        with pytest.raises(BackendIdMismatchError):
            service.pull(store_id, Cursor(backendId=old, eventSequenceNumber=50))
        assert push(service, store_id, [event(1)], backend_id=new).head == 1

    # -- restore --------------------------------------------------------------------------------

    def test_restore_keeps_the_backend_id_and_says_what_is_lost(
        self, t: Target, capsys: pytest.CaptureFixture[str]
    ) -> None:
        store_id = new_store()
        conn = connect(t)
        stored = filled_and_archived(conn, store_id, 95)
        backend_id = conn.storage.backend_id(store_id)
        sealed = conn.storage.last_segment(store_id)
        assert sealed is not None
        code, _, err = cli(capsys, "backend", "restore", "--store", store_id, *options(t))
        assert code == 1
        assert "nothing to restore" in err
        delete_keeping_archive(capsys, store_id, t)
        assert items_of(conn, store_id) == []
        with pytest.raises(StoreLostError):  # until restored, no request starts it afresh
            SyncService(connect(t).log).pull(store_id, None)
        assert next(
            row
            for row in cli_json(capsys, "backend", "list", *options(t))["stores"]
            if row["storeId"] == store_id
        )["archiveOnly"]

        code, out, err = cli(capsys, "backend", "restore", "--store", store_id, *options(t))
        assert code == 0, err
        assert f"LOST: the events after seqNum {sealed.last_seq_num}" in out
        restored = connect(t)
        assert restored.storage.backend_id(store_id) == backend_id
        assert all_events(restored, store_id) == stored[: sealed.last_position]
        report = cli_json(capsys, "backend", "inspect", "--store", store_id, "--verify", *options(t))
        assert report["consistent"], report["problems"]
        # a client at a cursor within the archive goes on, pull and push, without a reset
        service = SyncService(restored.log)
        cursor = Cursor(backendId=backend_id, eventSequenceNumber=sealed.last_seq_num - 3)
        pulled = service.pull(store_id, cursor)
        assert sum(len(page.items) for page in pulled.pages) == 3
        assert push(service, store_id, [event(sealed.last_seq_num + 1)], backend_id=backend_id).head == (
            sealed.last_seq_num + 1
        )
        # a client past it (it holds lost events) is told to start over
        with pytest.raises(BackendIdMismatchError):
            service.pull(store_id, Cursor(backendId=backend_id, eventSequenceNumber=95))
        # the archiver goes on from the restored index
        fill(restored, store_id, 40, start=sealed.last_seq_num + 1)
        assert restored.archiver().archive(store_id).sealed
        assert cli_json(capsys, "backend", "inspect", "--store", store_id, "--verify", *options(t))[
            "consistent"
        ]

    def test_restore_refuses_a_corrupt_segment_or_a_broken_chain(
        self, t: Target, capsys: pytest.CaptureFixture[str]
    ) -> None:
        conn = connect(t)
        for damage in ("corrupt", "missing"):
            store_id = new_store()
            filled_and_archived(conn, store_id, 70)
            segments = list(conn.admin.segments(store_id))
            assert len(segments) >= 3
            delete_keeping_archive(capsys, store_id, t)
            middle = segments[1]
            if damage == "corrupt":
                body, metadata = conn.segments.get_with_metadata(middle.key)
                self.overwrite(t, middle.key, body[:-4] + b"\x00\x00\x00\x00", metadata)
                expected = "do not match its checksum"
            else:
                for version in versions_of(conn, store_id):
                    if version.key == middle.key:
                        conn.segments.delete_versions([version])
                expected = "do not chain"
            code, _, err = cli(capsys, "backend", "restore", "--store", store_id, *options(t))
            assert code == 1
            assert expected in err
            assert "nothing was written" in err
            assert items_of(conn, store_id) == []

    def test_the_archiver_writes_the_manifest_restore_reads(self, t: Target) -> None:
        store_id = new_store()
        conn = connect(t)
        filled_and_archived(conn, store_id, 30)
        manifest = StoreManifest.decode(conn.segments.get(StoreManifest.key(store_id)))
        assert manifest.store_id == store_id
        assert manifest.backend_id == conn.storage.backend_id(store_id)
