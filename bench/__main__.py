"""Run the benchmarks: ``.venv/bin/python -m bench`` writes bench/results/backend.{json,md}."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from stratasync.devserver import DevServer, DevServerConfig
from stratasync.devserver.embedded_moto import ensure_fake_credentials

RESULTS = Path(__file__).parent / "results"


def _markdown(report: dict[str, Any]) -> str:
    lines = [f"# Backend benchmarks ({report['date']}, {report['machine']})", ""]
    capacity = report.get("dynamodb_capacity")
    if capacity:
        lines += [
            "## DynamoDB units per event (DynamoDB Local, ReturnConsumedCapacity=TOTAL)",
            "",
            "| events/batch | event bytes | WCU/event | WCU/batch | RCU/batch (push) | RCU/event (pull) "
            "| RCU idle poll | USD per 1M events pushed |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in capacity["rows"]:
            lines.append(
                f"| {row['batch_events']} | {row['event_json_bytes']} | {row['write_units_per_event']} "
                f"| {row['write_units_per_batch']} | {row['push_read_units_per_batch']} "
                f"| {row['pull_read_units_per_event']} | {row['idle_poll_read_units']} "
                f"| {row['usd_per_million_events_pushed']} |"
            )
        stale = capacity["stale_push"]
        lines += ["", f"A refused (stale) push: {stale['write_units']} WCU, {stale['read_units']} RCU.", ""]
    else:
        lines += ["DynamoDB capacity: not measured (" + report.get("dynamodb_capacity_skipped", "") + ")", ""]
    client = report["client"]
    rate, rebase = client["materialization"], client["rebase"]
    lines += [
        "## Python client (file-backed SQLite store)",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| materialization rate catching up ({rate['events']:,} events in pages of {rate['page']:,}) "
        f"| {rate['events_per_second']:,} events/s | >= 50,000 events/s |",
        f"| rebase of {rebase['pending']} pending over {rebase['upstream']:,} upstream"
        f" (median of {rebase['runs']}) "
        f"| {rebase['median_ms']} ms | <= 50 ms |",
    ]
    for key in ("commit_latency", "commit_latency_fsync"):
        row = client[key]
        lines.append(
            f"| commit of one event, synchronous={row['synchronous']} (n={row['commits']:,}) "
            f"| p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms | |"
        )
    lines.append("")
    for backend, figures in report["latency"].items():
        lines += [
            f"## Latency through `stratasync dev` ({backend})",
            "",
            "| operation | n | p50 ms | p99 ms | mean ms |",
            "|---|---|---|---|---|",
        ]
        for name, row in figures.items():
            lines.append(f"| {name} | {row['n']} | {row['p50_ms']} | {row['p99_ms']} | {row['mean_ms']} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    from bench import capacity, client, latency
    from tests import emulators

    ensure_fake_credentials()
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "latency": {},
    }
    print("measuring the Python client ...", file=sys.stderr)
    report["client"] = client.measure()
    jar = emulators.dynamodb_local_jar()
    if jar is None:
        report["dynamodb_capacity_skipped"] = "DynamoDB Local is not installed; run bash scripts/test.sh once"
        print("skipping DynamoDB Local figures: not installed", file=sys.stderr)
        endpoints: list[tuple[str, str | None]] = [("embedded moto", None)]
        local_context = None
    else:
        local_context = emulators.dynamodb_local()
        local_endpoint = local_context.__enter__()
        print("measuring DynamoDB units on DynamoDB Local ...", file=sys.stderr)
        report["dynamodb_capacity"] = capacity.measure(local_endpoint)
        endpoints = [("embedded moto", None), ("DynamoDB Local", local_endpoint)]
    try:
        for name, endpoint in endpoints:
            print(f"measuring latency through the dev server on {name} ...", file=sys.stderr)
            config = DevServerConfig(
                port=0, workers=2, dynamodb_endpoint=endpoint, table_name="bench-latency"
            )
            with DevServer(config, out=sys.stderr) as server:
                report["latency"][name] = latency.measure(server.url)
    finally:
        if local_context is not None:
            local_context.__exit__(None, None, None)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backend.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "backend.md").write_text(_markdown(report) + "\n")
    print(_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
