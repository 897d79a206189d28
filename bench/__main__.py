"""Run the benchmarks: ``.venv/bin/python -m bench`` writes bench/results/backend.{json,md} and the
PNG plots bench/results/throughput.png and cold_import.png (shown in the README), then the client
speed figures (bench/client_speed.py: client_speed.{json,md,png}).

``.venv/bin/python -m bench client-speed [--sizes 10000,100000,1000000] [--baseline CHECKOUT]``
runs the client speed figures alone."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
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
    load = report.get("load_average")
    if load:
        lines += [
            f"1-minute load average {load['start']} at the start and {load.get('end')} at the end "
            f"({os.cpu_count()} CPUs).",
            "",
        ]
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
    lines += _throughput_markdown(report) + _cold_import_markdown(report) + _bootstrap_markdown(report)
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


def _throughput_markdown(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for backend, data in report.get("throughput", {}).items():
        lines += [
            f"## Throughput through `stratasync dev` ({backend}; one client, each request awaited)",
            "",
            "| events per push | events/s (median) | pushes/s | min..max events/s | runs |",
            "|---|---|---|---|---|",
        ]
        for row in data["push"]:
            lines.append(
                f"| {row['batch_events']} | {row['events_per_second']:,} | {row['pushes_per_second']} "
                f"| {row['min_events_per_second']:,}..{row['max_events_per_second']:,} | {row['runs']} |"
            )
        lines += [
            "",
            "| events per pull response | chunks | latency ms (median) | events/s | runs |",
            "|---|---|---|---|---|",
        ]
        for row in data["pull"]:
            lines.append(
                f"| {row['events_per_response']:,} | {row['chunks']} | {row['median_ms']} "
                f"| {row['events_per_second']:,} | {row['runs']} |"
            )
        lines.append("")
    return lines


def _cold_import_markdown(report: dict[str, Any]) -> list[str]:
    data = report.get("cold_import")
    if not data:
        return []
    verdict = "meets" if data["meets_target"] else "MISSES"
    lines = [
        f"## Cold import of the Lambda handler (median of {data['rounds']} fresh processes each)",
        "",
        f"Handler with deployed settings: **{data['ratio']}x** the stack's hello world ({verdict} the "
        f"target of at most {data['target_ratio']}x).",
        "",
        "| import | ms in the import statement | x hello world | ms whole process | min..max ms |",
        "|---|---|---|---|---|",
    ]
    for name, row in data["rows"].items():
        lines.append(
            f"| {name} | {row['import_ms']} | {row['ratio_to_hello_world']} | {row['process_ms']} "
            f"| {row['min_import_ms']}..{row['max_import_ms']} |"
        )
    profile = data["handler_profile"]
    lines += [
        "",
        f"Where the handler's import time goes (`python -X importtime`, self time incl. module bodies,"
        f" one run, {profile['total_ms']} ms in all):",
        "",
        "| package | ms | | module | ms |",
        "|---|---|---|---|---|",
    ]
    for package, module in zip(profile["packages"], profile["modules"], strict=False):
        lines.append(
            f"| {package['name']} | {package['self_ms']} | | {module['name']} | {module['self_ms']} |"
        )
    lines.append("")
    return lines


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [pair for key, child in value.items() for pair in _flatten(child, f"{prefix}{key}.")]
    return [(prefix.rstrip("."), value)]


def _bootstrap_markdown(report: dict[str, Any]) -> list[str]:
    data = report.get("archive_bootstrap")
    if data is None:
        return [
            "## Archive bootstrap",
            "",
            "Not measured: " + report.get("archive_bootstrap_skipped", "no bench/bootstrap.py yet") + ".",
            "",
        ]
    lines = ["## Archive bootstrap (bench/bootstrap.py)", "", "| figure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in _flatten(data)]
    return [*lines, ""]


def _archive_bootstrap(report: dict[str, Any]) -> None:
    """HOOK for the archive issue's bootstrap figure: ``bench/bootstrap.py`` with ``measure() ->
    dict`` (it runs its own backend; e.g. a fresh client's time to catch up through GET /archive
    and S3 segments). Its figures land in the JSON and, flattened, in the Markdown table."""
    if importlib.util.find_spec("bench.bootstrap") is None:
        report["archive_bootstrap_skipped"] = (
            "bench/bootstrap.py (the archive bootstrap figure) does not exist yet"
        )
        return
    bootstrap = importlib.import_module("bench.bootstrap")
    started = time.monotonic()
    report["archive_bootstrap"] = bootstrap.measure()
    report["archive_bootstrap_bench_seconds"] = round(time.monotonic() - started, 1)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["client-speed"]:
        from bench import client_speed

        return client_speed.main(argv[1:])
    from bench import capacity, client, client_speed, coldstart, latency, plots, throughput
    from tests import emulators

    ensure_fake_credentials()
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "latency": {},
        "throughput": {},
        # Other processes skew every figure: the 1-minute load average before and after the run.
        "load_average": {"start": round(os.getloadavg()[0], 2)},
    }
    print("measuring cold imports (fresh processes) ...", file=sys.stderr)
    report["cold_import"] = coldstart.measure()
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
                print(f"measuring throughput through the dev server on {name} ...", file=sys.stderr)
                report["throughput"][name] = throughput.measure(server.url)
    finally:
        if local_context is not None:
            local_context.__exit__(None, None, None)
    print("measuring the archive bootstrap (bench/bootstrap.py) ...", file=sys.stderr)
    _archive_bootstrap(report)
    report["load_average"]["end"] = round(os.getloadavg()[0], 2)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backend.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "backend.md").write_text(_markdown(report) + "\n")
    for path in plots.write_all(report, RESULTS):
        print(f"wrote {path}", file=sys.stderr)
    print(_markdown(report))
    print("measuring the client speed (bench/client_speed.py) ...", file=sys.stderr)
    return client_speed.main([])


if __name__ == "__main__":
    sys.exit(main())
