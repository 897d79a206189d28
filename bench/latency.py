"""Push and pull latency through ``stratasync dev`` (HTTP, API Gateway event, Lambda worker, storage)."""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

from stratasync.client import SyncHttpTransport


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


def _event(seq: int, client: str) -> dict[str, Any]:
    return {
        "name": "v1.TodoCreated",
        "args": {"id": uuid.uuid4().hex, "text": "x" * 150},
        "seqNum": seq,
        "parentSeqNum": seq - 1,
        "clientId": client,
        "sessionId": "bench",
    }


def measure(url: str, pushes: int = 300) -> dict[str, Any]:
    """Single-event push latency, idle pull latency, and the latency of pulling 100 and 1,000 events."""
    store_id = f"latency-{uuid.uuid4().hex[:8]}"
    with SyncHttpTransport(url, store_id) as transport:
        transport.ping()
        backend_id = transport.pull(None)[-1].backend_id
        push_samples = []
        for seq in range(1, pushes + 1):
            started = time.perf_counter()
            transport.push([_event(seq, "bench")], backend_id)
            push_samples.append(time.perf_counter() - started)
        idle = []
        for _ in range(100):
            started = time.perf_counter()
            transport.pull((backend_id, pushes))
            idle.append(time.perf_counter() - started)
        pull_100 = []
        for _ in range(30):
            started = time.perf_counter()
            pages = transport.pull((backend_id, pushes - 100))
            pull_100.append(time.perf_counter() - started)
        assert sum(len(page.events) for page in pages) == 100
        ping = []
        for _ in range(100):
            started = time.perf_counter()
            transport.ping()
            ping.append(time.perf_counter() - started)
    return {
        "push_1_event": _percentiles(push_samples),
        "pull_idle_at_head": _percentiles(idle),
        "pull_100_events": _percentiles(pull_100),
        "ping": _percentiles(ping),
    }
