"""Commit-to-visible latency Python → Python through ``stratasync dev``: WebSocket vs HTTP polling.

A writer store commits one event at a time (its background sync pushes it at once); a reader store
has a subscription on the table; a sample is the time from ``commit()`` until the reader's
callback runs (in the reader's sync thread). The reader syncs once over WebSocket
(``transport="ws"``, pushes over HTTP) and once by polling over HTTP every ``poll_interval``.

    .venv/bin/python -m bench.live_latency [--url http://127.0.0.1:8787/] [--samples 200]

writes bench/results/live_latency.{json,md}; without ``--url`` it starts ``stratasync dev``, and
``--in-process`` and ``--memory`` ones for the WebSocket rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from stratasync.client import RetryPolicy, Store
from stratasync.client.todos import schema, todo_created, todos

RESULTS = Path(__file__).parent / "results"


def latency_summary(samples: list[float]) -> dict[str, Any]:
    """n, p50/p90/p99, max and mean in ms of ``samples`` in seconds."""
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p90_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))] * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 1),
    }


def measure(
    url: str, reader_transport: Literal["ws", "http"], samples: int, poll_interval: float = 5.0
) -> dict[str, Any]:
    """``samples`` commits on a live writer, each timed until the reader's subscription saw it."""
    store_id = f"live-latency-{uuid.uuid4().hex[:8]}"
    retry = RetryPolicy(initial_seconds=0.01, max_seconds=0.5)
    writer = Store(schema, store_id, backend_url=url, transport="ws", retry=retry)
    options: dict[str, Any] = {"retry": retry, "poll_interval": poll_interval}
    reader = Store(schema, store_id, backend_url=url, transport=reader_transport, **options)
    arrived = threading.Event()
    seen_at: list[float] = []
    expected = 0

    def changed(count: int) -> None:
        if count >= expected:
            seen_at.append(time.perf_counter())
            arrived.set()

    try:
        writer.start_sync()
        reader.start_sync()
        deadline = time.monotonic() + 30
        while not (writer.live and (reader.live or reader_transport == "http")):
            if time.monotonic() > deadline:
                raise RuntimeError("the stores did not go live (does the server accept WebSocket upgrades?)")
            time.sleep(0.01)
        reader.subscribe(todos.count(), changed)
        latencies = []
        for number in range(1, samples + 1):
            expected = number
            arrived.clear()
            started = time.perf_counter()
            writer.commit(todo_created(id=f"lat-{number}", text="x" * 100))
            if not arrived.wait(poll_interval * 3 + 10):
                raise RuntimeError(f"commit {number} never reached the reader")
            latencies.append(seen_at[-1] - started)
            time.sleep(0.02)
        return {"reader": reader_transport, "poll_interval_s": poll_interval, **latency_summary(latencies)}
    finally:
        reader.close()
        writer.close()


@contextmanager
def dev_server_unless(
    url: str | None, *, in_process: bool = False, memory: bool = False, table_name: str = "stratasync"
) -> Iterator[tuple[str, str | None]]:
    """``url``, or else a ``stratasync dev`` (embedded moto, 2 workers) started for the bench and
    stopped after it; yields its URL and a label for the report (None: the URL was given).

    The worker-process server runs in this process (its functions in their own); an
    ``in_process`` one (``memory``: ``--memory``, its tables in memory) runs as ``stratasync dev
    --in-process`` in a process of its own, as a user runs it: in this one its functions would
    share the GIL with the bench's own clients. Two servers of this process share moto's state, so
    each needs its own ``table_name``."""
    if url is not None:
        yield url, None
        return
    if in_process or memory:
        from tests.devserver_process import running_dev_server

        option, label = (
            ("--memory", "stratasync dev --memory (tables in memory, 2 threads a function)")
            if memory
            else ("--in-process", "stratasync dev --in-process (embedded moto, 2 threads a function)")
        )
        with running_dev_server(option, "--table", table_name) as (started, _):
            yield started, label
        return
    from stratasync.devserver import DevServer, DevServerConfig
    from stratasync.devserver.embedded_moto import ensure_fake_credentials

    ensure_fake_credentials()
    config = DevServerConfig(port=0, workers=2, table_name=table_name)
    server = DevServer(config, out=open(os.devnull, "w"))  # noqa: SIM115
    try:
        yield server.start().url, "stratasync dev (embedded moto, 2 worker processes)"
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        help="a running stratasync dev (default: start one, an --in-process one and a --memory one)",
    )
    parser.add_argument("--samples", type=int, default=200, help="samples over WebSocket")
    parser.add_argument("--poll-samples", type=int, default=20, help="samples with HTTP polling")
    parser.add_argument("--poll-interval", type=float, default=5.0)
    parser.add_argument("--label", help="what the server is, for the report (default: its URL)")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    with dev_server_unless(args.url) as (url, started):
        server = args.label or started or url
        rows = [{"server": server, **measure(url, "ws", args.samples)}]
        if args.url is None:
            with dev_server_unless(None, in_process=True, table_name="bench-in-process") as (fast, label):
                rows.append({"server": label, **measure(fast, "ws", args.samples)})
            with dev_server_unless(None, memory=True, table_name="bench-memory") as (fastest, label):
                rows.append({"server": label, **measure(fastest, "ws", args.samples)})
        rows.append({"server": server, **measure(url, "http", args.poll_samples, args.poll_interval)})
    load_end = os.getloadavg()[0]
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, CPython {platform.python_version()}, {os.cpu_count()} CPUs",
        "load_average": {"start": round(load_start, 2), "end": round(load_end, 2)},
        "server": server,
        "results": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "live_latency.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# Commit-to-visible latency, Python to Python ({report['date']}, {report['machine']})",
        "",
        f"1-minute load average {report['load_average']['start']} at the start, "
        f"{report['load_average']['end']} at the end. A sample: `commit()` on a writer store "
        "(live, pushing over HTTP at once) until a subscription callback on a reader store ran.",
        "",
        "| server | reader | n | p50 | p90 | p99 | max | mean |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        name = f"HTTP polling every {row['poll_interval_s']} s"
        if row["reader"] == "ws":
            name = "live pull over WebSocket"
        lines.append(
            f"| {row['server']} | {name} | {row['n']} | {row['p50_ms']} ms | {row['p90_ms']} ms "
            f"| {row['p99_ms']} ms | {row['max_ms']} ms | {row['mean_ms']} ms |"
        )
    (RESULTS / "live_latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
