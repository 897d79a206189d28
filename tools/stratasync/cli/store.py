"""``stratasync store ...``: look into a local store file, or catch one up from a backend."""

from __future__ import annotations

import argparse
import importlib
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any


def _connect(path: str) -> sqlite3.Connection:
    if not Path(path).is_file():
        raise SystemExit(f"stratasync store: no such file: {path}")
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    try:
        connection.execute("SELECT 1 FROM __ss_eventlog LIMIT 1")
    except sqlite3.DatabaseError as error:
        raise SystemExit(f"stratasync store: {path} is not a stratasync store ({error})") from None
    return connection


def store_info(path: str) -> dict[str, Any]:
    """Heads, ids and counts of the store in ``path`` (read-only)."""
    with _connect(path) as connection:
        meta = {row["key"]: row["value"] for row in connection.execute("SELECT key, value FROM __ss_meta")}
        counts = connection.execute(
            "SELECT COUNT(*) AS events, COALESCE(SUM(pending), 0) AS pending, MAX(seq) AS head"
            " FROM __ss_eventlog"
        ).fetchone()
        upstream = int(meta.get("upstream_head", 0))
        return {
            "store_id": meta.get("store_id"),
            "client_id": meta.get("client_id"),
            "backend_id": meta.get("backend_id"),
            "upstream_head": upstream,
            "local_head": max(int(counts["head"] or 0), upstream),
            "events": counts["events"],
            "pending": counts["pending"],
            "rebase_generation": int(meta.get("rebase_generation", 0)),
        }


def store_events(path: str, *, pending_only: bool, after: int, limit: int) -> list[dict[str, Any]]:
    """Events of the store in ``path`` in order (read-only)."""
    with _connect(path) as connection:
        rows = connection.execute(
            "SELECT * FROM __ss_eventlog WHERE seq > ?"
            + (" AND pending = 1" if pending_only else "")
            + " ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
    return [
        {
            "seqNum": row["seq"],
            "parentSeqNum": row["parent"],
            "name": row["name"],
            "args": json.loads(row["event"]).get("args"),
            "clientId": row["client_id"],
            "sessionId": row["session_id"],
            "pending": bool(row["pending"]),
            "createdAt": row["created_at"],
        }
        for row in rows
    ]


def _run_info(args: argparse.Namespace) -> int:
    info = store_info(args.path)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:>18}: {value if value is not None else '-'}")
    return 0


def _run_events(args: argparse.Namespace) -> int:
    events = store_events(args.path, pending_only=args.pending, after=args.after, limit=args.limit)
    for event in events:
        if args.json:
            print(json.dumps(event))
        else:
            state = "pending" if event["pending"] else "synced"
            args_text = json.dumps(event["args"], ensure_ascii=False)
            print(f"#{event['seqNum']:<6} {state:<8} {event['clientId']:<8} {event['name']} {args_text}")
    if not events and not args.json:
        print("(no events)", file=sys.stderr)
    return 0


def _load_schema(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute or "schema")
    except (ImportError, AttributeError) as error:
        raise SystemExit(f"stratasync store sync: cannot load schema {spec!r}: {error}") from None


def _run_sync(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from stratasync.client.bootstrap import BootstrapProgress
    from stratasync.client.store import Store

    payload = {"authToken": args.token} if args.token else None
    with Store(
        _load_schema(args.schema), args.store, args.path, backend_url=args.url, payload=payload
    ) as store:
        bar = tqdm(desc="archive", unit=" events", unit_scale=True, file=sys.stderr, disable=args.quiet)

        def show(progress: BootstrapProgress) -> None:
            bar.update(progress.events - bar.n)
            bar.set_postfix(
                segments=f"{progress.segments_done}/{progress.segments_known}",
                MB=f"{progress.bytes_downloaded / 1e6:.1f}",
                refresh=False,
            )

        started = time.monotonic()
        state = store.bootstrap(progress=show)
        bar.close()
        store.sync(timeout=args.timeout)
        seconds = time.monotonic() - started
        print(
            f"{args.path}: {state.events} events from {state.segments_done} archived segments"
            f" ({state.bytes_downloaded / 1e6:.1f} MB), then synced to seqNum {store.upstream_head}"
            f" in {seconds:.1f} s; {len(store.pending_events())} pending"
        )
    return 0


def add_store_commands(commands: Any) -> None:
    """Register ``stratasync store info|events`` on the main parser's subcommands."""
    store = commands.add_parser("store", help="inspect a local store file")
    actions = store.add_subparsers(dest="store_command", required=True)
    info = actions.add_parser("info", help="store id, client id, backend id, heads, pending count")
    info.add_argument("path", help="the store's SQLite file")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(run=_run_info)
    events = actions.add_parser("events", help="list the eventlog")
    events.add_argument("path", help="the store's SQLite file")
    events.add_argument("--pending", action="store_true", help="only events not yet confirmed by the backend")
    events.add_argument("--after", type=int, default=0, metavar="SEQ", help="only events after this seqNum")
    events.add_argument("--limit", type=int, default=1000, help="at most this many events (default 1000)")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.set_defaults(run=_run_events)
    sync = actions.add_parser(
        "sync", help="catch a local store up: archived segments straight from S3 (progress bar), then pulls"
    )
    sync.add_argument("path", help="the store's SQLite file (created if missing)")
    sync.add_argument("--url", required=True, help="the backend URL (as for makeHttpSync)")
    sync.add_argument("--store", required=True, help="the store id")
    sync.add_argument(
        "--schema",
        default="stratasync.client.todos:schema",
        help="MODULE:ATTRIBUTE of the app's Schema (default: the todo example)",
    )
    sync.add_argument("--token", help="a JWT, sent as payload.authToken")
    sync.add_argument("--timeout", type=float, default=300, help="seconds to wait for the sync (default 300)")
    sync.add_argument("--quiet", action="store_true", help="no progress bar")
    sync.set_defaults(run=_run_sync)
