"""The real LiveStore client over WebSocket through ``stratasync dev``: commit-to-visible latency,
and the catch-up of a fresh client (10,000 events) over WebSocket against HTTP.

    .venv/bin/python -m bench.livestore_ws [--url http://127.0.0.1:8787/] [--samples 100]
        [--events 10000]

runs ``tests/interop/livestore_ws_driver.mjs`` (LiveStore 0.4.0's ``makeWsSync`` on node; ``npm ci``
in tests/interop first) and writes bench/results/live_latency_livestore_ws.{json,md} and
catchup_livestore_ws.json; without ``--url`` it starts ``stratasync dev`` (embedded moto).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from bench.live_latency import RESULTS, dev_server_unless, latency_summary

DRIVER = Path(__file__).parent.parent / "tests" / "interop" / "livestore_ws_driver.mjs"


def run_driver(url: str, scenario: str, store_id: str, env: dict[str, str]) -> dict[str, Any]:
    """One scenario of the driver; its one JSON line, or RuntimeError when it failed."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed")
    completed = subprocess.run(
        [node, str(DRIVER), url, scenario, store_id],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=DRIVER.parent,
        timeout=1200,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    result: dict[str, Any] = (
        json.loads(lines[-1]) if lines else {"ok": False, "error": completed.stderr[-2000:]}
    )
    if not result.get("ok"):
        raise RuntimeError(f"the driver's {scenario} failed: {result.get('error')}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running stratasync dev (default: start one)")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--events", type=int, default=10_000, help="events for the catch-up")
    args = parser.parse_args()
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
    with dev_server_unless(args.url) as (url, started):
        label = started or url
        load_start = os.getloadavg()[0]
        print(f"latency: {args.samples} samples ...", flush=True)
        latency = run_driver(
            url, "latency", f"bench-lat-{uuid.uuid4().hex[:8]}", {"DRIVER_SAMPLES": str(args.samples)}
        )
        store_id = f"bench-catchup-{uuid.uuid4().hex[:8]}"
        env = {"DRIVER_CATCHUP_EVENTS": str(args.events), "DRIVER_TIMEOUT_MS": "900000"}
        print(f"catch-up: filling a store with {args.events} events ...", flush=True)
        fill = run_driver(url, "fill", store_id, env)
        print("catch-up: a fresh client over WebSocket, then over HTTP ...", flush=True)
        catchup = run_driver(url, "catchup", store_id, env)
        load_end = os.getloadavg()[0]
    samples: list[float] = latency["samples"]  # ms
    load = f"1-minute load average {load_start:.2f} at the start, {load_end:.2f} at the end"
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{machine} ({load})",
        "server": label,
        "client": "real LiveStore 0.4.0 makeWsSync on node (tests/interop/livestore_ws_driver.mjs latency)",
        "sample": "push on connection A (over WebSocket) until the event arrives on connection B's live pull",
        **latency_summary([sample / 1000 for sample in samples]),
        "samples_ms": samples,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "live_latency_livestore_ws.json").write_text(json.dumps(report, indent=2) + "\n")
    catchup_report = {
        "date": report["date"],
        "machine": report["machine"],
        "server": label,
        "client": "real LiveStore 0.4.0 makeWsSync / makeHttpSync on node (driver: fill, catchup)",
        "events": catchup["events"],
        "fill_ms": fill.get("durationMs"),
        "ws_live_pull_until_NoMore_ms": catchup["wsMs"],
        "ws_messages": catchup["wsMessages"],
        "http_pull_ms": catchup["httpMs"],
        "http_requests": catchup["httpRequests"],
        "note": "HTTP: the driver pulls again at once while the server says MoreKnown",
    }
    (RESULTS / "catchup_livestore_ws.json").write_text(json.dumps(catchup_report, indent=2) + "\n")
    lines = [
        f"# Commit-to-visible latency, LiveStore to LiveStore over WebSocket ({report['date']})",
        "",
        f"The real `makeWsSync` (LiveStore 0.4.0, node) through {label}; a sample is a push on",
        "connection A (over WebSocket) until the event arrives on connection B's live pull.",
        f"{machine}, {load}.",
        "",
        "    .venv/bin/python -m bench.livestore_ws",
        "",
        "| n | p50 | p90 | p99 | max | mean |",
        "|---|---|---|---|---|---|",
        f"| {report['n']} | {report['p50_ms']} ms | {report['p90_ms']} ms | {report['p99_ms']} ms "
        f"| {report['max_ms']} ms | {report['mean_ms']} ms |",
        "",
        f"Catch-up of a fresh client, {catchup['events']} events: {catchup['wsMs']:.0f} ms over WebSocket "
        f"({catchup['wsMessages']} messages until `NoMore`), {catchup['httpMs']:.0f} ms over HTTP "
        f"({catchup['httpRequests']} request(s)).",
    ]
    (RESULTS / "live_latency_livestore_ws.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
