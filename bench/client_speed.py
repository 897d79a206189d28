"""Client speed (issue 14), in one run: bootstrap against the SQLite floor, where the time goes,
catch-up through the protocol, commit latency; and the plot of time against N.

* **Bootstrap**: for N = 10k, 100k and 1M todo events of about 200 bytes, appended the production
  way and sealed by the real Archiver into segments of 10,000 (bench/bootstrap.py), a fresh
  file-backed client in its own process runs ``Store.bootstrap()`` then ``sync()``
  (bench/bootstrap_client.py: wall time, peak RSS).
* **The floor**, next to each: the same rows (the eventlog rows and the ``todos`` rows) inserted
  with ``executemany`` in one transaction into the same two tables, on a connection with the
  store's settings (WAL, ``synchronous=NORMAL``, 64 MB cache), rows built beforehand (untimed).
* **Where the time goes**: each stage of a bootstrap timed on its own over the largest archive,
  one page at a time, single-threaded: download (the presigned GETs, SHA-256 included),
  decompression, splitting the lines, JSON decoding, validation (pydantic), materializers
  (building the writes), and the SQLite work (the floor).
* **Catch-up through the protocol**: a store whose events are all hot, pulled from the sync
  handler (the real Lambda handler over moto); the pages as pulled are then materialized into a
  fresh store (``apply_pulled``, what a sync does with each response), timed without the network.
* **Commits**: one event per commit, ``synchronous=NORMAL`` (bench/client.py).

``python -m bench client-speed`` runs this alone (a few minutes); ``python -m bench`` runs it with
everything else. Either writes ``bench/results/client_speed.{json,md}`` and
``bench/results/client_speed.png``.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import client as client_bench
from bench.bootstrap import BUCKET, CREATED_AT, TABLE, _Backend, _event_json, populate
from stratasync.client import Store, jsoncodec
from stratasync.client.localdb import INTERNAL_DDL
from stratasync.client.todos import schema, todos
from stratasync.client.transport import SyncHttpTransport
from stratasync.devserver.embedded_moto import EmbeddedMoto
from stratasync.protocol.segment_format import iter_segment_pages
from stratasync.storage.dynamodb import create_table, make_client
from stratasync.storage.s3 import ensure_bucket, make_s3_client

SIZES = (10_000, 100_000, 1_000_000)
SEGMENT_EVENTS = 10_000
CATCH_UP_EVENTS = 100_000
PAGE_EVENTS = 5_000
TARGETS = {
    "bootstrap_seconds_1m": 5.0,
    "bootstrap_peak_rss_mb": 300,
    "ratio_to_floor": 2.5,
    "catch_up_events_per_second": 200_000,
    "commit_p99_ms": 0.5,
}


def _load() -> float:
    return round(os.getloadavg()[0], 2)


# -- the floor -------------------------------------------------------------------------------


def _rows(events: int) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]]]:
    """The eventlog rows and todos rows a bootstrap of ``events`` writes (bench/bootstrap.py's events)."""
    log, todo_rows = [], []
    for seq in range(1, events + 1):
        text = _event_json(seq)
        args = json.loads(text)["args"]
        log.append((seq, seq - 1, "v1.TodoCreated", text, "bench1", "sess01", 0, CREATED_AT))
        todo_rows.append((args["id"], args["text"]))
    return log, todo_rows


def floor_seconds(events: int, folder: str) -> float:
    """``executemany`` of the same rows in one transaction into the eventlog and todos tables."""
    log, todo_rows = _rows(events)
    path = os.path.join(folder, f"floor-{events}.db")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute(next(ddl for ddl in INTERNAL_DDL if "__ss_eventlog" in ddl))
        conn.execute(todos.create_sql)
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO __ss_eventlog (seq, parent, name, event, client_id, session_id, pending, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            log,
        )
        conn.executemany('INSERT INTO "todos" ("id", "text") VALUES (?, ?)', todo_rows)
        conn.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)


# -- bootstrap in a fresh process ----------------------------------------------------------------


def _bootstrap_child(url: str, store_id: str, python: str = sys.executable, cwd: str | None = None) -> Any:
    child = subprocess.run(
        [python, "-m", "bench.bootstrap_client", url, store_id],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=cwd,
    )
    if child.returncode != 0:
        raise RuntimeError(f"bench.bootstrap_client failed: {child.stderr[-2000:]}")
    return json.loads(child.stdout)


# -- where the time goes ---------------------------------------------------------------------


def breakdown(url: str, store_id: str, folder: str) -> dict[str, Any]:
    """Each stage of a bootstrap of ``store_id`` timed on its own, page by page, in this thread."""
    transport = SyncHttpTransport(url, store_id, timeout=60)
    segments: list[dict[str, Any]] = []
    after = 0
    while True:
        manifest = transport.archive_manifest(after)
        assert manifest is not None
        segments += manifest["segments"]
        if not manifest.get("more") or not manifest["segments"]:
            break
        after = manifest["segments"][-1]["lastSeqNum"]

    def fetch(segment: dict[str, Any]) -> bytes:
        sink = _Sink()
        transport.download(segment["url"], sink)
        body = b"".join(sink.parts)
        assert hashlib.sha256(body).hexdigest() == segment["sha256"]
        return body

    started = time.perf_counter()
    bodies = [fetch(segment) for segment in segments]
    download_sequential = time.perf_counter() - started
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(fetch, segments))
    download_parallel = time.perf_counter() - started

    stages = dict.fromkeys(
        ("decompression", "line splitting", "JSON decoding", "validation", "materializers", "eventlog rows"),
        0.0,
    )
    definition = schema.event("v1.TodoCreated")
    assert definition is not None
    validate = definition.args.__pydantic_validator__.validate_python
    materializer = schema.materializers["v1.TodoCreated"]
    events = 0
    was_enabled = gc.isenabled()
    gc.disable()  # as a bootstrap does (and this process holds moto's data: collections are slow)
    for body in bodies:
        started = time.perf_counter()
        zlib.decompress(body, 31)
        stages["decompression"] += time.perf_counter() - started
        started = time.perf_counter()
        pages = list(iter_segment_pages(_reader(body), PAGE_EVENTS))
        stages["line splitting"] += time.perf_counter() - started  # less the decompression, below
        for stamps, texts in pages:
            events += len(texts)
            started = time.perf_counter()
            decoded = jsoncodec.loads_many(texts)
            stages["JSON decoding"] += time.perf_counter() - started
            started = time.perf_counter()
            models = [validate(event["args"]) for event in decoded]
            stages["validation"] += time.perf_counter() - started
            started = time.perf_counter()
            for model in models:
                materializer(model)
            stages["materializers"] += time.perf_counter() - started
            started = time.perf_counter()
            [
                (e["seqNum"], e["parentSeqNum"], e["name"], t, e["clientId"], e["sessionId"], 0, s)
                for e, t, s in zip(decoded, texts, stamps, strict=True)
            ]
            stages["eventlog rows"] += time.perf_counter() - started
    if was_enabled:
        gc.enable()
    stages["line splitting"] = max(0.0, stages["line splitting"] - stages["decompression"])
    stages["SQLite (the floor)"] = floor_seconds(events, folder)
    return {
        "events": events,
        "segments": len(segments),
        "download_seconds_sequential": round(download_sequential, 3),
        "download_seconds_4_parallel": round(download_parallel, 3),
        "stage_seconds": {name: round(seconds, 3) for name, seconds in stages.items()},
        "stage_microseconds_per_event": {
            name: round(seconds / events * 1e6, 2) for name, seconds in stages.items()
        },
    }


class _Sink:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self.parts.append(bytes(data))
        return len(data)


def _reader(body: bytes) -> Any:
    import io

    return io.BytesIO(body)


# -- catch-up through the protocol ---------------------------------------------------------------


def catch_up(url: str, store_id: str, folder: str) -> dict[str, Any]:
    """Sync a fresh store from the hot tier (recording the pages), then materialize those pages
    into another fresh store, timed alone."""
    transport = SyncHttpTransport(url, store_id, timeout=120)
    responses: list[tuple[list[dict[str, Any]], list[str | None]]] = []
    real_pull = transport.pull

    def recording_pull(cursor: Any) -> Any:
        pages = real_pull(cursor)
        events = [event for page in pages for event in page.events]
        if events:
            responses.append(
                ([dict(event) for event in events], [stamp for page in pages for stamp in page.created_at])
            )
        return pages

    transport.pull = recording_pull  # type: ignore[method-assign]
    with Store(schema, store_id, os.path.join(folder, "catchup-sync.db"), transport=transport) as store:
        started = time.perf_counter()
        store.sync(timeout=600)
        sync_seconds = time.perf_counter() - started
        total = store.upstream_head
    pages_file = os.path.join(folder, "catchup-pages.json")
    with open(pages_file, "w") as out:
        json.dump(responses, out)
    paths = [os.path.join(folder, f"catchup-apply-{run}.db") for run in range(3)]
    samples = [_child("apply", pages_file, path) for path in paths]
    seconds = statistics.median(samples)
    floor = floor_seconds(total, folder)
    return {
        "floor_seconds": round(floor, 3),
        "ratio_to_floor": round(seconds / floor, 2),
        "events": total,
        "responses": len(responses),
        "events_per_response": round(total / max(1, len(responses))),
        "materialize_seconds_median_of_3": round(seconds, 3),
        "events_per_second_materialized": round(total / seconds),
        "sync_seconds_end_to_end": round(sync_seconds, 2),
        "events_per_second_end_to_end": round(total / sync_seconds),
    }


# -- in a fresh process (a small heap, as a client's: the bench's own holds moto's data) ----------


def _child(*argv: str) -> Any:
    child = subprocess.run(
        [sys.executable, "-m", "bench.client_speed", "child", *argv],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"bench.client_speed child {argv[0]} failed: {child.stderr[-2000:]}")
    return json.loads(child.stdout)


def _child_main(argv: list[str]) -> None:
    if argv[0] == "apply":  # materialize recorded pull responses into a fresh store; print the seconds
        with open(argv[1]) as source:
            responses = json.load(source)
        with Store(schema, "catch-up", argv[2]) as fresh:
            started = time.perf_counter()
            for events, stamps in responses:
                fresh._apply_upstream(events, stamps)
            print(json.dumps(time.perf_counter() - started))
    elif argv[0] == "commits":
        print(json.dumps(client_bench.commit_latency()))


# -- the run -----------------------------------------------------------------------------------


def measure(sizes: tuple[int, ...] = SIZES, *, runs: int = 3, baseline: str | None = None) -> dict[str, Any]:
    """Everything above in one run; ``baseline``: a checkout whose client also bootstraps the
    largest archive (its own ``.venv``), for a before/after in the same run."""
    report: dict[str, Any] = {"load_average": {"start": _load()}, "targets": TARGETS}
    with EmbeddedMoto() as moto, tempfile.TemporaryDirectory() as folder:
        create_table(make_client(moto.endpoint), TABLE)
        ensure_bucket(make_s3_client(moto.endpoint), BUCKET)
        stores = {}
        started = time.perf_counter()
        for size in sizes:
            stores[size] = f"speed-{size}"
            populate(moto.endpoint, size, SEGMENT_EVENTS, store_id=stores[size])
        populate(moto.endpoint, CATCH_UP_EVENTS, 1_000, store_id="speed-hot", archive=False)
        report["populate_seconds"] = round(time.perf_counter() - started, 1)
        backend = _Backend(moto.endpoint)
        rows = []
        for size in sizes:
            print(f"client speed: bootstrap and floor, N = {size:,} ...", file=sys.stderr)
            ours, floors, rss, total = [], [], [], []
            for _ in range(runs if size < 1_000_000 else max(1, runs - 1)):
                floors.append(floor_seconds(size, folder))
                result = _bootstrap_child(backend.url, stores[size])
                ours.append(result["bootstrap_seconds"])
                total.append(result["total_seconds"])
                rss.append(result["peak_rss_mb"])
            row = {
                "events": size,
                "runs": len(ours),
                "bootstrap_seconds": statistics.median(ours),
                "caught_up_seconds": statistics.median(total),
                "floor_seconds": round(statistics.median(floors), 3),
                "ratio_to_floor": round(statistics.median(ours) / statistics.median(floors), 2),
                "bootstrap_events_per_second": round(size / statistics.median(ours)),
                "peak_rss_mb": max(rss),
                "load_average_after": _load(),
            }
            rows.append(row)
            print(f"  {row}", file=sys.stderr)
        report["bootstrap"] = rows
        if baseline:
            print(
                f"client speed: the baseline ({baseline}) bootstraps N = {sizes[-1]:,} ...", file=sys.stderr
            )
            result = _bootstrap_child(
                backend.url,
                stores[sizes[-1]],
                python=os.path.join(baseline, ".venv/bin/python"),
                cwd=baseline,
            )
            report["baseline"] = {
                "checkout": baseline,
                "events": sizes[-1],
                "bootstrap_seconds": result["bootstrap_seconds"],
                "peak_rss_mb": result["peak_rss_mb"],
                "floor_seconds": round(floor_seconds(sizes[-1], folder), 3),
            }
        print("client speed: where the time goes ...", file=sys.stderr)
        report["breakdown"] = breakdown(backend.url, stores[sizes[-1]], folder)
        print("client speed: catch-up through the protocol ...", file=sys.stderr)
        report["catch_up"] = catch_up(backend.url, "speed-hot", folder)
        backend.http.shutdown()
    print("client speed: commit latency ...", file=sys.stderr)
    report["commit_latency"] = _child("commits")
    report["load_average"]["end"] = _load()
    report["verdict"] = verdict(report)
    return report


def verdict(report: dict[str, Any]) -> dict[str, bool]:
    largest = report["bootstrap"][-1]
    return {
        "bootstrap_1m_within_5_s": largest["events"] >= 1_000_000
        and largest["bootstrap_seconds"] <= TARGETS["bootstrap_seconds_1m"],
        "peak_rss_within_300_mb": largest["peak_rss_mb"] <= TARGETS["bootstrap_peak_rss_mb"],
        "within_2_5x_the_floor": largest["ratio_to_floor"] <= TARGETS["ratio_to_floor"],
        "catch_up_200k_per_s": report["catch_up"]["events_per_second_materialized"]
        >= TARGETS["catch_up_events_per_second"],
        "commit_p99_within_0_5_ms": report["commit_latency"]["p99_ms"] <= TARGETS["commit_p99_ms"],
    }


def markdown(report: dict[str, Any]) -> list[str]:
    load = report["load_average"]
    lines = [
        "## Client speed (bench/client_speed.py)",
        "",
        f"1-minute load average {load['start']} at the start and {load['end']} at the end "
        f"({os.cpu_count()} CPUs).",
        "",
        "| events | bootstrap s (ours) | floor s (executemany) | ours / floor | events/s | peak RSS MB "
        "| runs | load after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["bootstrap"]:
        lines.append(
            f"| {row['events']:,} | {row['bootstrap_seconds']} | {row['floor_seconds']} "
            f"| {row['ratio_to_floor']}x | {row['bootstrap_events_per_second']:,} | {row['peak_rss_mb']} "
            f"| {row['runs']} | {row['load_average_after']} |"
        )
    baseline = report.get("baseline")
    if baseline:
        lines += [
            "",
            f"Before (the client of `{baseline['checkout']}`, same run): {baseline['events']:,} events in "
            f"{baseline['bootstrap_seconds']} s, peak RSS {baseline['peak_rss_mb']} MB "
            f"(floor {baseline['floor_seconds']} s: "
            f"{baseline['bootstrap_seconds'] / baseline['floor_seconds']:.2f}x).",
        ]
    data = report["breakdown"]
    lines += [
        "",
        f"Where the time goes ({data['events']:,} events, each stage alone, single-threaded): download of "
        f"{data['segments']} segments {data['download_seconds_sequential']} s one at a time, "
        f"{data['download_seconds_4_parallel']} s four at a time (overlapped with the rest in a bootstrap).",
        "",
        "| stage | seconds | us/event |",
        "|---|---|---|",
    ]
    for name, seconds in data["stage_seconds"].items():
        lines.append(f"| {name} | {seconds} | {data['stage_microseconds_per_event'][name]} |")
    catch = report["catch_up"]
    commit = report["commit_latency"]
    lines += [
        "",
        "| figure | measured | target |",
        "|---|---|---|",
        f"| catch-up through the protocol: {catch['events']:,} hot events in {catch['responses']} pull "
        f"responses, materialized | {catch['events_per_second_materialized']:,} events/s "
        f"({catch['ratio_to_floor']}x the floor of {catch['floor_seconds']} s) | >= 200,000 events/s |",
        f"| the same, end to end (HTTP, handler, moto) "
        f"| {catch['events_per_second_end_to_end']:,} events/s | |",
        f"| commit of one event, synchronous=NORMAL (n={commit['commits']:,}) | p50 {commit['p50_ms']} ms, "
        f"p99 {commit['p99_ms']} ms | p99 <= 0.5 ms |",
        "",
        "Verdict: "
        + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in report["verdict"].items()),
        "",
    ]
    return lines


def write(report: dict[str, Any], folder: Path) -> list[Path]:
    from bench import plots  # matplotlib only when writing

    folder.mkdir(exist_ok=True)
    (folder / "client_speed.json").write_text(json.dumps(report, indent=2) + "\n")
    (folder / "client_speed.md").write_text("\n".join(["# Client speed", "", *markdown(report)[2:]]) + "\n")
    return [folder / "client_speed.json", folder / "client_speed.md", *plots.client_speed(report, folder)]


def main(argv: list[str]) -> int:
    if argv[:1] == ["child"]:
        _child_main(argv[1:])
        return 0
    baseline = None
    if "--baseline" in argv:
        baseline = argv[argv.index("--baseline") + 1]
    sizes = SIZES
    if "--sizes" in argv:
        sizes = tuple(int(size) for size in argv[argv.index("--sizes") + 1].split(","))
    report = measure(sizes, baseline=baseline)
    for path in write(report, Path(__file__).parent / "results"):
        print(f"wrote {path}", file=sys.stderr)
    print("\n".join(markdown(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
