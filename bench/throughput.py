"""Push and pull throughput end to end through ``stratasync dev`` (HTTP, API Gateway event, Lambda
worker process, DynamoDB), in events per second, against batch size.

* push: one client pushes a fresh store's log in batches of 1, 10, 50 or 100 events, each push
  waiting for its answer (as the sync engine does); events/s = events / wall time.
* pull: from a store of ``PULL_STORE_EVENTS`` events, one pull request of the last N events
  (N = 1 ... ``PULL_STORE_EVENTS``), answered in chunks of at most 100 events; events/s = N / latency.

Each figure is the median of ``runs`` runs, all batch sizes measured in the same run of the bench.
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

from stratasync.client import SyncHttpTransport

PUSH_BATCHES = (1, 10, 50, 100)
PULL_SIZES = (1, 10, 100, 1_000, 5_000)
PULL_STORE_EVENTS = 5_000


def _events(first_seq: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "name": "v1.TodoCreated",
            "args": {"id": uuid.uuid4().hex, "text": f"todo number {seq}, of a typical length for a todo"},
            "seqNum": seq,
            "parentSeqNum": seq - 1,
            "clientId": "bench",
            "sessionId": "throughput",
        }
        for seq in range(first_seq, first_seq + count)
    ]


def _push_run(url: str, batch: int, events: int) -> float:
    """Push ``events`` events in batches of ``batch`` into a fresh store; events per second."""
    store_id = f"throughput-push-{uuid.uuid4().hex[:8]}"
    log = _events(1, events)
    with SyncHttpTransport(url, store_id) as transport:
        backend_id = transport.pull(None)[-1].backend_id  # creates the store; not timed
        started = time.perf_counter()
        for start in range(0, events, batch):
            transport.push(log[start : start + batch], backend_id)
        seconds = time.perf_counter() - started
    return events / seconds


def _events_for(batch: int) -> int:
    return max(100, batch * 20)  # at least 100 events and 20 pushes per run


def measure(url: str, runs: int = 5) -> dict[str, Any]:
    push_samples: dict[int, list[float]] = {batch: [] for batch in PUSH_BATCHES}
    for _ in range(runs):  # interleaved, so a slow moment of the machine hits every batch size
        for batch in PUSH_BATCHES:
            push_samples[batch].append(_push_run(url, batch, _events_for(batch)))
    push = [
        {
            "batch_events": batch,
            "events_per_run": _events_for(batch),
            "runs": runs,
            "events_per_second": round(statistics.median(samples)),
            "pushes_per_second": round(statistics.median(samples) / batch, 1),
            "min_events_per_second": round(min(samples)),
            "max_events_per_second": round(max(samples)),
        }
        for batch, samples in push_samples.items()
    ]

    store_id = f"throughput-pull-{uuid.uuid4().hex[:8]}"
    pull = []
    with SyncHttpTransport(url, store_id) as transport:
        backend_id = transport.pull(None)[-1].backend_id
        log = _events(1, PULL_STORE_EVENTS)
        for start in range(0, PULL_STORE_EVENTS, 100):
            transport.push(log[start : start + 100], backend_id)
        pull_samples: dict[int, list[float]] = {size: [] for size in PULL_SIZES}
        for _ in range(runs):
            for size in PULL_SIZES:
                started = time.perf_counter()
                pages = transport.pull((backend_id, PULL_STORE_EVENTS - size))
                seconds = time.perf_counter() - started
                received = sum(len(page.events) for page in pages)
                assert received == size, (received, size)
                pull_samples[size].append(seconds)
        for size, samples in pull_samples.items():
            median = statistics.median(samples)
            pull.append(
                {
                    "events_per_response": size,
                    "chunks": -(-size // 100),
                    "runs": runs,
                    "median_ms": round(median * 1000, 2),
                    "events_per_second": round(size / median),
                }
            )
    return {"push": push, "pull": pull}
