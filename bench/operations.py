"""Timings of ``stratasync backend`` on a 100k-event store (issue 12).

``.venv/bin/python -m bench.operations [--events N] [--backend moto|dynamodb-local]`` writes
bench/results/operations.{json,md}: import of an N-event NDJSON file (batches of a push's size, the
archiver sealing segments as it goes), export, inspect --verify, delete --keep-archive (the items
only, a restore drill), restore from S3, and delete (every item and object version). Each through
the same functions the CLI runs, timed on the wall clock, in one process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
BUCKET = "stratasync-ops-bench"
TABLE = "stratasync-ops-bench"


@contextmanager
def _endpoints(backend: str) -> Iterator[tuple[str, str]]:
    from stratasync.devserver.embedded_moto import EmbeddedMoto, ensure_fake_credentials

    ensure_fake_credentials()
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if backend == "moto":
        with EmbeddedMoto() as moto:
            yield moto.endpoint, moto.endpoint
        return
    from tests import emulators

    with emulators.dynamodb_local() as dynamodb, emulators.seaweedfs() as s3:
        yield dynamodb, s3


def _write_file(path: Path, events: int) -> int:
    with path.open("w", encoding="utf-8") as out:
        for seq in range(1, events + 1):
            event = {
                "name": "v1.TodoCreated",
                "args": {"id": f"todo-{seq}", "text": f"Todo number {seq}: buy milk, walk the dog"},
                "seqNum": seq,
                "parentSeqNum": seq - 1,
                "clientId": "bench-client",
                "sessionId": "bench-session",
            }
            out.write(json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n")
    return path.stat().st_size


def _timed(name: str, timings: dict[str, Any], run: Callable[[], Any]) -> Any:
    print(f"  {name} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    result = run()
    seconds = round(time.perf_counter() - start, 2)
    timings[name] = {"seconds": seconds}
    print(f"  {name}: {seconds} s", file=sys.stderr, flush=True)
    return result


def measure(events: int, backend: str) -> dict[str, Any]:
    from stratasync.operations import Journal, Target, connect
    from stratasync.operations.erase import DELETE_STEPS, erase
    from stratasync.operations.inspect import inspect_store
    from stratasync.operations.restore import RESTORE_STEPS, restore
    from stratasync.operations.transfer import IMPORT_STEPS, export_store, import_file
    from stratasync.storage.dynamodb import create_table, make_client
    from stratasync.storage.s3 import ensure_bucket, make_s3_client

    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, CPython {platform.python_version()}, {os.cpu_count()} CPUs",
        "backend": "embedded moto (server mode)" if backend == "moto" else "DynamoDB Local + SeaweedFS",
        "events": events,
        "load_average_start": round(os.getloadavg()[0], 2),
    }
    store_id = "bench-ops"
    with _endpoints(backend) as (dynamodb, s3), tempfile.TemporaryDirectory() as work:
        create_table(make_client(dynamodb), TABLE)
        s3_client = make_s3_client(s3)
        ensure_bucket(s3_client, BUCKET)
        s3_client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        target = Target(table=TABLE, bucket=BUCKET, dynamodb_endpoint=dynamodb, s3_endpoint=s3)
        source = Path(work) / "events.ndjson"
        report["file_bytes"] = _write_file(source, events)
        timings: dict[str, Any] = {}
        conn = connect(target)

        imported = _timed(
            "import",
            timings,
            lambda: import_file(conn, store_id, str(source), Journal("import", store_id, IMPORT_STEPS)),
        )
        timings["import"].update(batches=imported.batches, segments_sealed=imported.segments_sealed)
        dump = Path(work) / "export.ndjson"
        exported = _timed("export", timings, lambda: export_store(conn, store_id, str(dump), sys.stdout))
        timings["export"].update(bytes=exported.bytes, same_bytes=dump.read_bytes() == source.read_bytes())
        report_ = _timed("inspect --verify", timings, lambda: inspect_store(conn, store_id, verify=True))
        timings["inspect --verify"].update(consistent=report_.consistent, segments=report_.segments)
        _timed(
            "delete --keep-archive",
            timings,
            lambda: erase(
                conn,
                store_id,
                Journal("delete", store_id, DELETE_STEPS),
                kind="delete",
                grace_seconds=0,
                keep_archive=True,
            ),
        )
        restored = _timed(
            "restore",
            timings,
            lambda: restore(connect(target), store_id, Journal("restore", store_id, RESTORE_STEPS)),
        )
        timings["restore"].update(segments=restored.segments, events=restored.head.events)
        deleted = _timed(
            "delete",
            timings,
            lambda: erase(
                connect(target),
                store_id,
                Journal("delete", store_id, DELETE_STEPS),
                kind="delete",
                grace_seconds=0,
            ),
        )
        timings["delete"].update(
            items=sum(deleted.items_deleted.values()),
            object_versions=deleted.versions_deleted,
            items_left=deleted.items_left,
            versions_left=deleted.versions_left,
        )
        report["timings"] = timings
    report["load_average_end"] = round(os.getloadavg()[0], 2)
    return report


def markdown(reports: list[dict[str, Any]]) -> str:
    lines = ["# `stratasync backend` on a large store", ""]
    for report in reports:
        lines += [
            f"## {report['events']:,} events, {report['backend']} ({report['date']}, {report['machine']})",
            "",
            f"File: {report['file_bytes']:,} bytes of NDJSON. 1-minute load average"
            f" {report['load_average_start']} at the start, {report['load_average_end']} at the end"
            " (the machine was shared).",
            "",
            "| command | seconds | events/s | details |",
            "|---|---|---|---|",
        ]
        for name, row in report["timings"].items():
            details = ", ".join(
                f"{key.replace('_', ' ')} {value}" for key, value in row.items() if key != "seconds"
            )
            rate = f"{report['events'] / row['seconds']:,.0f}" if row["seconds"] else "-"
            lines.append(f"| {name} | {row['seconds']} | {rate} | {details} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--backend", choices=("moto", "dynamodb-local"), action="append")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "operations.json"
    reports: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
    for backend in args.backend or ["moto"]:
        print(f"{args.events} events on {backend}:", file=sys.stderr)
        fresh = measure(args.events, backend)
        reports = [r for r in reports if (r["backend"], r["events"]) != (fresh["backend"], fresh["events"])]
        reports.append(fresh)
        path.write_text(json.dumps(reports, indent=2) + "\n")
        (RESULTS / "operations.md").write_text(markdown(reports))
    print((RESULTS / "operations.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
