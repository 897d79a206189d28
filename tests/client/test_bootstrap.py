"""Fast bootstrap from the S3 archive: presigned segment downloads, checksums, progress, then pulls."""

from __future__ import annotations

import subprocess
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
