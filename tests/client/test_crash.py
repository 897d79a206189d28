"""kill -9 a store process while it materializes or rebases: reopening gives a consistent store
that then syncs to the same state as everyone else."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from stratasync.client import RetryPolicy, Store
from stratasync.client.todos import schema, todo_created
from stratasync.devserver import DevServer


def replayed_tables(store: Store) -> list[tuple[object, ...]]:
    """The todos table rebuilt from scratch by replaying the store's own eventlog."""
    fresh = Store(schema, store.store_id)
    with fresh._db.transaction():
        for event in store.events():
            fresh._rebaser.materialize(event.encoded(), None)
    rows = [tuple(row) for row in fresh.query("SELECT * FROM todos ORDER BY id")]
    fresh.close()
    return rows


def test_kill_during_materialize_or_rebase_leaves_a_consistent_store(
    dev_server: DevServer, tmp_path: Path
) -> None:
    store_id = f"crash-{uuid.uuid4().hex[:8]}"
    path = str(tmp_path / "victim.db")
    rng = random.Random(11)
    stop = threading.Event()
    peer = Store(
        schema,
        store_id,
        str(tmp_path / "peer.db"),
        backend_url=dev_server.url,
        retry=RetryPolicy(initial_seconds=0.01, max_seconds=0.1),
    )

    def peer_writes() -> None:  # keeps the victim rebasing
        number = 0
        while not stop.is_set():
            peer.commit(todo_created(id=f"peer-{number}", text=f"peer {number}"))
            number += 1
            peer.sync(timeout=30)
            time.sleep(0.01)

    peer_thread = threading.Thread(target=peer_writes)
    peer_thread.start()
    kills_inside_a_transaction = 0
    try:
        # At least 6 kills, and more (up to 20) until 2 of them landed inside a transaction: where
        # a kill lands depends on the machine's speed, and a busy machine shifts it.
        for attempt in range(20):
            if attempt >= 6 and kills_inside_a_transaction >= 2:
                break
            worker = subprocess.Popen(
                [sys.executable, "-m", "tests.client.crash_worker", dev_server.url, path, store_id, "victim"],
                stdout=subprocess.PIPE,
                text=True,
                cwd=Path(__file__).parents[2],
            )
            assert worker.stdout is not None
            opened = worker.stdout.readline()  # wait until it runs, however slow the machine is
            assert opened.startswith("opened"), opened
            time.sleep(rng.uniform(0.3, 1.0))
            os.kill(worker.pid, signal.SIGKILL)
            output, _ = worker.communicate(timeout=10)
            lines = [opened.strip(), *output.splitlines()]
            print("killed at:", lines[-1])
            if lines[-1].startswith("begin"):
                kills_inside_a_transaction += 1

            with Store(schema, store_id, path) as reopened:  # consistent right after the crash
                assert [tuple(row) for row in reopened.query("SELECT * FROM todos ORDER BY id")] == (
                    replayed_tables(reopened)
                )
                pending = [event.seq_num for event in reopened.pending_events()]
                undo_seqs = [
                    row[0] for row in reopened._db.conn.execute("SELECT DISTINCT seq FROM __ss_undo")
                ]
                assert set(undo_seqs) <= set(pending)
                seqs = [event.seq_num for event in reopened.events()]
                assert seqs == list(range(1, len(seqs) + 1))
        stop.set()
        peer_thread.join()
        with Store(schema, store_id, path, backend_url=dev_server.url) as survivor:
            survivor.sync(timeout=60)
            peer.sync(timeout=60)
            assert [e.encoded() for e in survivor.events()] == [e.encoded() for e in peer.events()]
            assert [tuple(r) for r in survivor.query("SELECT * FROM todos ORDER BY id")] == [
                tuple(r) for r in peer.query("SELECT * FROM todos ORDER BY id")
            ]
            victim_todos = survivor.query("SELECT COUNT(*) FROM todos WHERE id LIKE 'victim-%'")[0][0]
            assert victim_todos > 0
        assert kills_inside_a_transaction >= 2, "the kills should land inside commits or merges"
    finally:
        stop.set()
        peer_thread.join()
        peer.close()
