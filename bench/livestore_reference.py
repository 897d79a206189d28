"""LiveStore's own sync server beside ``stratasync dev``, on one machine in one run: commit-to-visible
latency of the real client (LiveStore 0.4.0's ``makeWsSync`` on node) through each, alternating;
``stratasync dev`` with its worker processes, ``--in-process`` and ``--memory``.

    .venv/bin/python -m bench.livestore_reference [--samples 100] [--rounds 2]

The reference is LiveStore 0.4.0's Durable Object and worker (``@livestore/sync-cf/cf-worker``,
bench/reference-server/src/worker.ts) under ``wrangler dev --local`` (workerd, no Cloudflare
account); ``npm ci`` runs in bench/reference-server on first use (about 400 MB). Each server gets
a short warm-up run first (not counted), then ``--rounds`` runs of ``--samples`` each, taking turns.
Writes bench/results/livestore_reference.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.live_latency import RESULTS, dev_server_unless, latency_summary
from bench.livestore_ws import run_driver

REFERENCE = Path(__file__).parent / "reference-server"
WRANGLER = REFERENCE / "node_modules" / ".bin" / "wrangler"


def ensure_installed() -> None:
    """``npm ci`` in bench/reference-server unless wrangler is there already."""
    if WRANGLER.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: the reference server needs node and npm")
    print("installing LiveStore's reference server (npm ci in bench/reference-server) ...", flush=True)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=REFERENCE, check=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def reference_server(startup_seconds: float = 120) -> Iterator[str]:
    """LiveStore's sync server under ``wrangler dev --local`` on a free port, with fresh state;
    yields its URL and stops it (its whole process group) afterwards."""
    ensure_installed()
    shutil.rmtree(REFERENCE / ".wrangler" / "state", ignore_errors=True)
    port = _free_port()
    log = (REFERENCE / f"wrangler-{port}.log").open("w")
    env = {**os.environ, "WRANGLER_SEND_METRICS": "false", "CI": "1", "NO_COLOR": "1"}
    command = [str(WRANGLER), "dev", "--local", "--port", str(port), "--ip", "127.0.0.1"]
    command += ["--inspector-port", "0", "--show-interactive-dev-session=false"]
    server = subprocess.Popen(
        command, cwd=REFERENCE, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"wrangler exited with {server.returncode}: see {log.name}")
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except urllib.error.HTTPError:
                break  # it answers (with an error for GET /): it is up
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the reference server never answered on {url}: see {log.name}"
                    ) from None
                time.sleep(0.2)
        yield url
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def latency_run(url: str, samples: int) -> list[float]:
    """One run of the driver's ``latency`` scenario on a fresh store: the samples in ms."""
    result = run_driver(url, "latency", f"ref-bench-{uuid.uuid4().hex[:8]}", {"DRIVER_SAMPLES": str(samples)})
    values: list[float] = result["samples"]
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100, help="samples per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs per server, taking turns")
    args = parser.parse_args()
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
    names = ("stratasync", "stratasync_in_process", "stratasync_memory", "livestore")
    runs: dict[str, list[list[float]]] = {name: [] for name in names}
    with (
        dev_server_unless(None) as (ours, label),
        dev_server_unless(None, in_process=True, table_name="bench-in-process") as (fast, fast_label),
        dev_server_unless(None, memory=True, table_name="bench-memory") as (memory, memory_label),
        reference_server() as reference,
    ):
        urls = {
            "stratasync": ours,
            "stratasync_in_process": fast,
            "stratasync_memory": memory,
            "livestore": reference,
        }
        for name, url in urls.items():
            print(f"warming up {name} ...", flush=True)
            latency_run(url, 10)
        load_start = os.getloadavg()[0]
        for number in range(1, args.rounds + 1):
            for name, url in urls.items():
                print(f"round {number}: {name}, {args.samples} samples ...", flush=True)
                runs[name].append(latency_run(url, args.samples))
        load_end = os.getloadavg()[0]
    load = f"1-minute load average {load_start:.2f} at the start, {load_end:.2f} at the end"
    servers = {
        "stratasync": f"{label}, this checkout",
        "stratasync_in_process": f"{fast_label}, this checkout",
        "stratasync_memory": f"{memory_label}, this checkout",
        "livestore": "LiveStore 0.4.0 @livestore/sync-cf/cf-worker under wrangler dev --local (workerd)",
    }
    summaries = {
        name: {
            "server": servers[name],
            **latency_summary([sample / 1000 for run in run_list for sample in run]),
            "p50_ms_per_run": [
                latency_summary([sample / 1000 for sample in run])["p50_ms"] for run in run_list
            ],
            "samples_ms": [sample for run in run_list for sample in run],
        }
        for name, run_list in runs.items()
    }
    ratios = {
        name: round(summaries[name]["p50_ms"] / summaries["livestore"]["p50_ms"], 2)
        for name in names
        if name != "livestore"
    }
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{machine} ({load})",
        "client": "real LiveStore 0.4.0 makeWsSync on node (tests/interop/livestore_ws_driver.mjs latency)",
        "sample": "push on connection A (over WebSocket) until the event arrives on connection B's live pull",
        "rounds": args.rounds,
        **{f"p50_ratio_{name}_to_livestore": ratio for name, ratio in ratios.items()},
        **summaries,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "livestore_reference.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# LiveStore's own sync server beside stratasync dev ({report['date']})",
        "",
        "The real `makeWsSync` (LiveStore 0.4.0, node); a sample is a push on connection A (over",
        "WebSocket) until the event arrives on connection B's live pull. The servers took turns,",
        f"{args.rounds} runs of {args.samples} samples each, after a warm-up run. {machine}, {load}.",
        "",
        "    .venv/bin/python -m bench.livestore_reference",
        "",
        "| server | n | p50 | p90 | p99 | max | p50 of each run |",
        "|---|---|---|---|---|---|---|",
    ]
    for summary in summaries.values():
        per_run = ", ".join(f"{value} ms" for value in summary["p50_ms_per_run"])
        lines.append(
            f"| {summary['server']} | {summary['n']} | {summary['p50_ms']} ms | {summary['p90_ms']} ms "
            f"| {summary['p99_ms']} ms | {summary['max_ms']} ms | {per_run} |"
        )
    lines += [
        "",
        f"p50 ratio to LiveStore's server in this run: {ratios['stratasync']} for `stratasync dev`"
        f" (worker processes), {ratios['stratasync_in_process']} for `stratasync dev --in-process`,"
        f" {ratios['stratasync_memory']} for `stratasync dev --memory`.",
    ]
    (RESULTS / "livestore_reference.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
