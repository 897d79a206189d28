"""Client benchmarks: materialization rate when catching up, rebase time, commit latency."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from stratasync.client import Store
from stratasync.client.todos import schema, todo_created


def _upstream(first_seq: int, count: int, client: str = "other") -> list[dict[str, Any]]:
    """``count`` upstream events: mostly TodoCreated, every fourth a TodoCompleted of the one before."""
    events = []
    for offset in range(count):
        seq = first_seq + offset
        if offset % 4 == 3:
            name, args = "v1.TodoCompleted", {"id": f"{client}-{seq - 1}"}
        else:
            name, args = (
                "v1.TodoCreated",
                {"id": f"{client}-{seq}", "text": f"todo number {seq} from {client}"},
            )
        events.append(
            {
                "name": name,
                "args": args,
                "seqNum": seq,
                "parentSeqNum": seq - 1,
                "clientId": client,
                "sessionId": "s",
            }
        )
    return events


def materialization_rate(total: int = 200_000, page: int = 1_000) -> dict[str, Any]:
    """Catch up on ``total`` upstream events arriving in pull pages of ``page`` (file-backed store)."""
    events = _upstream(1, total)
    stamps: list[str | None] = ["2026-11-23T00:00:00.000Z"] * page
    with tempfile.TemporaryDirectory() as folder, Store(schema, "bench", str(Path(folder) / "s.db")) as store:
        started = time.perf_counter()
        for start in range(0, total, page):
            store._apply_upstream(events[start : start + page], stamps)
        seconds = time.perf_counter() - started
        assert store.query("SELECT COUNT(*) FROM todos")[0][0] == total - total // 4
    return {
        "events": total,
        "page": page,
        "seconds": round(seconds, 3),
        "events_per_second": round(total / seconds),
    }


def rebase_time(pending: int = 100, upstream: int = 1_000, runs: int = 7) -> dict[str, Any]:
    """Roll back ``pending`` local events, apply ``upstream`` events, re-apply the pending ones."""
    samples = []
    for _ in range(runs):
        with (
            tempfile.TemporaryDirectory() as folder,
            Store(schema, "bench", str(Path(folder) / "s.db")) as store,
        ):
            for number in range(pending):
                store.commit(todo_created(id=f"local-{number}", text=f"local todo {number}"))
            incoming = _upstream(1, upstream)
            started = time.perf_counter()
            store._apply_upstream(incoming, [None] * upstream)
            samples.append(time.perf_counter() - started)
            assert store.rebase_generation == 1
            assert store.pending_events()[0].seq_num == upstream + 1
    return {
        "pending": pending,
        "upstream": upstream,
        "runs": runs,
        "median_ms": round(statistics.median(samples) * 1000, 2),
        "min_ms": round(min(samples) * 1000, 2),
        "max_ms": round(max(samples) * 1000, 2),
    }


def commit_latency(commits: int = 2_000, synchronous: Literal["NORMAL", "FULL"] = "NORMAL") -> dict[str, Any]:
    """One event per commit on a file-backed store in WAL mode (NORMAL: no fsync per commit)."""
    samples = []
    with (
        tempfile.TemporaryDirectory() as folder,
        Store(schema, "bench", str(Path(folder) / "s.db"), synchronous=synchronous) as store,
    ):
        for number in range(commits):
            event = todo_created(id=f"t{number}", text="a todo of typical length")
            started = time.perf_counter()
            store.commit(event)
            samples.append(time.perf_counter() - started)
    ordered = sorted(samples)
    return {
        "synchronous": synchronous,
        "commits": commits,
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 3),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
    }


def measure() -> dict[str, Any]:
    return {
        "materialization": materialization_rate(),
        "rebase": rebase_time(),
        "commit_latency": commit_latency(),
        "commit_latency_fsync": commit_latency(synchronous="FULL"),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=2))
