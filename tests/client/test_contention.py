"""Contention through ``stratasync dev``: 8 clients commit into one store, some flat out, some with
pauses, so commits land during rebases; all converge and every event is applied exactly once."""

from __future__ import annotations

import io
import random
import threading
import time
import uuid
from pathlib import Path

from stratasync.client import RetryPolicy, Store
from stratasync.client.demo import run_demo
from stratasync.client.todos import schema, todo_created
from stratasync.devserver import DevServer


def test_eight_clients_converge_with_every_event_applied_once(dev_server: DevServer, tmp_path: Path) -> None:
    store_id = f"contention-{uuid.uuid4().hex[:8]}"
    clients, commits_each = 8, 25
    stores = [
        Store(
            schema,
            store_id,
            str(tmp_path / f"c{index}.db"),
            backend_url=dev_server.url,
            poll_interval=0.2,
            retry=RetryPolicy(initial_seconds=0.01, max_seconds=0.2),
        )
        for index in range(clients)
    ]
    rng = random.Random(7)
    try:
        for store in stores:
            store.start_sync()

        def writer(index: int) -> None:
            store = stores[index]
            for number in range(commits_each):
                store.commit(todo_created(id=f"c{index}-{number}", text=f"client {index} todo {number}"))
                if index % 2:  # half of them pause a little, so their commits land during rebases
                    time.sleep(rng.uniform(0.0, 0.02))

        threads = [threading.Thread(target=writer, args=(index,)) for index in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        started = time.monotonic()
        for store in stores:
            store.stop_sync()
            store.sync(timeout=60)  # every client pushes what it has left and pulls the rest
        for store in stores:
            store.sync(timeout=60)  # and now everyone has everyone's events
        converge_seconds = time.monotonic() - started
        logs = [[(e.seq_num, e.client_id, e.args["id"]) for e in store.events()] for store in stores]
        assert all(log == logs[0] for log in logs)
        assert [entry[0] for entry in logs[0]] == list(range(1, clients * commits_each + 1))
        ids = sorted(entry[2] for entry in logs[0])
        assert ids == sorted(f"c{i}-{n}" for i in range(clients) for n in range(commits_each))
        tables = [store.query("SELECT id, text FROM todos ORDER BY id") for store in stores]
        assert all([tuple(row) for row in table] == [tuple(row) for row in tables[0]] for table in tables)
        assert len(tables[0]) == clients * commits_each
        assert all(not store.pending_events() for store in stores)
        assert sum(store.rebase_generation for store in stores) > 0  # the race really happened
        print(f"converged in {converge_seconds:.2f} s after the writers stopped")
    finally:
        for store in stores:
            store.close()


def test_todo_demo_converges(dev_server: DevServer) -> None:
    output = io.StringIO()
    assert run_demo(dev_server.url, output)
    assert "ServerAheadError" in output.getvalue()
