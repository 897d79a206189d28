"""Fast bootstrap from the S3 archive: presigned segment downloads, checksums, progress, then pulls."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from stratasync.cli import main
from stratasync.client import SegmentChecksumError, Store
from stratasync.client.bootstrap import BootstrapProgress
from stratasync.client.todos import schema, todo_completed, todo_created
from stratasync.client.transport import SyncHttpTransport
from stratasync.devserver import DevServer
from tests.client.test_crash import replayed_tables
from tests.devserver_process import STRATASYNC


def seal(dev_server: DevServer, store_id: str) -> None:
    endpoints = [
        "--dynamodb-endpoint",
        str(dev_server.dynamodb_endpoint),
        "--s3-endpoint",
        str(dev_server.s3_endpoint),
    ]
    assert main(["archive", "--store", store_id, *endpoints, "--segment-events", "50"]) == 0


@pytest.fixture
def archived_store(dev_server: DevServer, tmp_path: Path) -> tuple[str, Store]:
    """A store of 420 events, most of them sealed in 50-event segments, the rest hot."""
    store_id = f"boot-{uuid.uuid4().hex[:8]}"
    writer = Store(schema, store_id, str(tmp_path / "writer.db"), backend_url=dev_server.url)
    for chunk in range(20):
        writer.commit(*(todo_created(id=f"t{chunk}-{n}", text=f"todo {chunk}/{n}") for n in range(20)))
        writer.sync()
    seal(dev_server, store_id)
    writer.commit(*(todo_completed(id=f"t{chunk}-0") for chunk in range(20)))
    writer.sync()
    return store_id, writer


def table(store: Store) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in store.query("SELECT * FROM todos ORDER BY id")]


def test_bootstrap_reads_segments_then_pulls_the_hot_tail(
    dev_server: DevServer, archived_store: tuple[str, Store], tmp_path: Path
) -> None:
    store_id, writer = archived_store
    seen: list[BootstrapProgress] = []
    with Store(schema, store_id, str(tmp_path / "fresh.db"), backend_url=dev_server.url) as fresh:
        state = fresh.bootstrap(progress=lambda progress: seen.append(BootstrapProgress(**vars(progress))))
        # 20-event batches sealed into segments of at least 50 events (whole batches: 60 each);
        # the newest batch always stays hot.
        assert state.segments_done >= 5
        assert state.events >= 300
        assert state.events == fresh.upstream_head == state.last_seq_num
        assert state.bytes_downloaded > 0
        assert [p.events for p in seen] == sorted(p.events for p in seen)
        fresh.sync()
        assert [e.encoded() for e in fresh.events()] == [e.encoded() for e in writer.events()]
        assert table(fresh) == table(writer)
        assert fresh.bootstrap().events == 0  # caught up: nothing more to download
    writer.close()


def test_a_corrupted_download_is_refused_and_nothing_applied(
    dev_server: DevServer, archived_store: tuple[str, Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_id, writer = archived_store
    real_download = SyncHttpTransport.download

    class Flipper:
        def __init__(self, sink: Any) -> None:
            self.sink = sink
            self.first = True

        def write(self, data: bytes, /) -> int:
            if self.first:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
                self.first = False
            return int(self.sink.write(data))

    monkeypatch.setattr(
        SyncHttpTransport, "download", lambda self, url, sink: real_download(self, url, Flipper(sink))
    )
    with Store(schema, store_id, str(tmp_path / "victim.db"), backend_url=dev_server.url) as fresh:
        with pytest.raises(SegmentChecksumError, match="SHA-256"):
            fresh.bootstrap()
        assert fresh.upstream_head == 0
        assert table(fresh) == []
    writer.close()


def test_cli_sync_shows_progress_and_catches_up(
    dev_server: DevServer, archived_store: tuple[str, Store], tmp_path: Path
) -> None:
    store_id, writer = archived_store
    path = str(tmp_path / "cli.db")
    completed = subprocess.run(
        [str(STRATASYNC), "store", "sync", path, "--url", dev_server.url, "--store", store_id],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "archive" in completed.stderr
    assert "events" in completed.stderr  # the progress bar
    assert f"then synced to seqNum {writer.upstream_head}" in completed.stdout
    with Store(schema, store_id, path) as synced:
        assert table(synced) == table(writer)
    writer.close()


def test_a_bootstrap_killed_mid_way_reopens_consistent_and_resumes(
    dev_server: DevServer, archived_store: tuple[str, Store], tmp_path: Path
) -> None:
    """SIGKILL a process while it bootstraps (its materializers slow, so most kills land inside a
    page's transaction): each time the store reopens consistent (whole pages only, tables
    matching the eventlog), the next bootstrap resumes where it stopped, and the end state is
    that of a clean bootstrap."""
    store_id, writer = archived_store
    path = str(tmp_path / "killed.db")
    rng = random.Random(14)
    heads = [0]
    finished = False
    for _ in range(12):
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.client.bootstrap_crash_worker", dev_server.url, path, store_id],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parents[2],
        )
        assert worker.stdout is not None
        opened = worker.stdout.readline()  # wait until it runs, however slow the machine is
        assert opened == f"opened {heads[-1]}\n", opened
        # Let it apply 0, 1 or 2 pages, then kill it a moment later: a page (a segment of 60
        # events at 4 ms each) takes at least 240 ms, so the kill lands inside the next page.
        lines = [worker.stdout.readline() for _ in range(rng.randint(0, 2))]
        time.sleep(rng.uniform(0.0, 0.2))
        os.kill(worker.pid, signal.SIGKILL)
        output, _ = worker.communicate(timeout=10)
        finished = "done\n" in lines or "done" in output.splitlines()
        with Store(schema, store_id, path) as reopened:
            assert reopened.query("PRAGMA integrity_check")[0][0] == "ok"
            seqs = [event.seq_num for event in reopened.events()]
            assert seqs == list(range(1, len(seqs) + 1))
            assert reopened.upstream_head == len(seqs)
            assert table(reopened) == replayed_tables(reopened)
            heads.append(reopened.upstream_head)
        if finished:
            break
    print("upstream head after each kill:", heads)
    assert heads == sorted(heads)
    assert any(0 < head < heads[-1] for head in heads), heads  # it stopped mid-way, and resumed
    with Store(schema, store_id, path, backend_url=dev_server.url) as resumed:
        resumed.bootstrap()
        resumed.sync()
        with Store(schema, store_id, str(tmp_path / "clean.db"), backend_url=dev_server.url) as clean:
            clean.bootstrap()
            clean.sync()
            assert [e.encoded() for e in resumed.events()] == [e.encoded() for e in clean.events()]
            assert table(resumed) == table(clean)
            assert resumed.upstream_head == clean.upstream_head == writer.upstream_head
    writer.close()
