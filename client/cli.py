"""``stratasync store ...``: look into a local store file (heads, pending events, the eventlog)."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
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
            "args": json.loads(row["args"]) if row["args"] is not None else None,
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
