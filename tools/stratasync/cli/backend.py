"""``stratasync backend ...``: operate a store directly on the backend's storage (issue 12).

Every subcommand takes the same options as ``stratasync archive`` to name the storage:
``--dynamodb-endpoint``, ``--table``, ``--s3-endpoint``, ``--bucket``, or ``--stack NAME`` (a deployed
stack's outputs). Progress bars go to stderr when it is a terminal; ``--json`` prints the result as
JSON; a failure exits 1 with a message that says what was done and what is left.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from typing import Any

from stratasync.core.sealing import DEFAULT_SEGMENT_BYTES, DEFAULT_SEGMENT_EVENTS

_DEFAULT_TABLE = "stratasync"
_DEFAULT_BUCKET = "stratasync-archive"


def add_target_options(parser: argparse.ArgumentParser, *, dynamodb_help: str | None = None) -> None:
    """The storage options ``stratasync archive`` and ``stratasync backend`` share."""
    parser.add_argument(
        "--dynamodb-endpoint",
        metavar="URL",
        help=dynamodb_help or "DynamoDB endpoint (the dev server prints its embedded moto's); default: AWS",
    )
    parser.add_argument("--table", metavar="NAME", help=f"DynamoDB table name (default {_DEFAULT_TABLE!r})")
    parser.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="S3 endpoint for the eventlog archive (SeaweedFS, MinIO); default: AWS",
    )
    parser.add_argument("--bucket", metavar="NAME", help=f"archive bucket (default {_DEFAULT_BUCKET!r})")
    parser.add_argument(
        "--stack",
        metavar="NAME",
        help="a deployed stratasync stack: table and bucket from its outputs (instead of --table/--bucket)",
    )
    parser.add_argument("--region", metavar="REGION", help="AWS region (default: the AWS configuration's)")
    parser.add_argument(
        "--segment-events",
        type=int,
        default=DEFAULT_SEGMENT_EVENTS,
        metavar="N",
        help="seal a segment at N events",
    )
    parser.add_argument(
        "--segment-bytes",
        type=int,
        default=DEFAULT_SEGMENT_BYTES,
        metavar="N",
        help="... or at N bytes of event JSON",
    )


def cloudformation_client(region: str | None) -> Any:
    """The CloudFormation client ``--stack`` reads outputs with (tests replace it)."""
    import boto3

    return boto3.client("cloudformation", region_name=region)


def resolve_target(args: argparse.Namespace) -> Any:
    """The :class:`~stratasync.operations.Target` the options name."""
    from stratasync.operations import OperationError, Target, target_from_stack

    base = Target(
        table=args.table or _DEFAULT_TABLE,
        bucket=args.bucket or _DEFAULT_BUCKET,
        dynamodb_endpoint=args.dynamodb_endpoint,
        s3_endpoint=args.s3_endpoint,
        region=args.region,
        segment_events=args.segment_events,
        segment_bytes=args.segment_bytes,
    )
    if args.stack is None:
        return base
    if args.table or args.bucket:
        raise OperationError("give --stack or --table/--bucket, not both")
    return target_from_stack(args.stack, cloudformation_client(args.region), base)


# -- output -------------------------------------------------------------------------------------------


def _size(value: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000  # type: ignore[assignment]
    return str(value)


def _print_report(report: Any) -> None:
    data = report.as_dict()
    rows: list[tuple[str, str]] = [("store", report.store_id), ("backend id", str(report.backend_id))]
    if report.archive_only:
        rows.append(("state", "ARCHIVE ONLY: no items in DynamoDB (lost?): restore it"))
        rows.append(("archive", f"{report.segments} segments, {_size(report.archived_bytes)}"))
    else:
        if report.created_at:
            rows.append(("created", report.created_at))
        if report.operation:
            rows.append(
                ("operation", f"{report.operation} under way (step {report.operation_step}): re-run it")
            )
        rows.append(
            (
                "head",
                f"seqNum {report.head.seq_num} ({report.head.events} events)"
                + (f", last commit {report.last_commit_at}" if report.last_commit_at else ""),
            )
        )
        rows.append(
            (
                "hot tier",
                f"{report.hot_batches} batches, {report.hot_events} events, {_size(report.hot_bytes)}",
            )
        )
        archive = f"{report.segments} segments"
        if report.segments:
            archive += (
                f" up to seqNum {report.last_sealed_seq_num}, {_size(report.archived_bytes)} gzip of"
                f" {_size(report.archived_raw_bytes)} JSON, last sealed {report.last_sealed_at}"
            )
        rows.append(("archive", archive))
        rows.append(("archive lag", f"{report.archive_lag} events past the segment threshold"))
        if report.fenced_at is not None:
            rows.append(("fence", f"at seqNum {report.fenced_at} (no request is served)"))
    if report.checked:
        verified = data["verifiedSegments"]
        check = "consistent" if report.consistent else f"NOT CONSISTENT ({len(report.problems)} problems)"
        check += (
            f"; {verified} segments downloaded, checksums match"
            if verified is not None and report.consistent
            else "; segments not downloaded (--verify does)"
            if verified is None
            else ""
        )
        rows.append(("consistency", check))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:>{width}}  {value}")
    for problem in report.problems:
        print(f"{'problem':>{width}}  {problem}")
    for note in report.notes:
        print(f"{'note':>{width}}  {note}")


def _event_line(event_json: str) -> str:
    event = json.loads(event_json)
    args = json.dumps(event.get("args"), ensure_ascii=False)
    return f"#{event['seqNum']:<7} {event.get('clientId', '-'):<10} {event['name']} {args}"


# -- subcommands --------------------------------------------------------------------------------------


def _run_list(args: argparse.Namespace, conn: Any) -> int:
    from stratasync.operations.inspect import list_stores

    reports = list_stores(conn)
    if args.json:
        print(json.dumps({"stores": [report.as_dict() for report in reports]}, indent=2))
        return 0
    if not reports:
        print(f"no stores in {conn.target.describe()}")
        return 0
    header = ("STORE", "HEAD", "EVENTS", "HOT", "ARCHIVED", "LAG", "STATE")
    rows = [header]
    for report in reports:
        state = "archive only" if report.archive_only else (report.operation or "ok")
        rows.append(
            (
                report.store_id,
                str(report.head.seq_num),
                str(report.head.events),
                f"{report.hot_events} ev / {_size(report.hot_bytes)}",
                f"{report.segments} seg / {_size(report.archived_bytes)}",
                str(report.archive_lag),
                state,
            )
        )
    widths = [max(len(row[index]) for row in rows) for index in range(len(header))]
    for row in rows:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _run_inspect(args: argparse.Namespace, conn: Any) -> int:
    from stratasync.operations.inspect import inspect_store

    report = inspect_store(conn, args.store, verify=args.verify)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        _print_report(report)
    return 0 if report.consistent else 3


def _run_tail(args: argparse.Namespace, conn: Any) -> int:
    from stratasync.operations.transfer import tail

    def show(event: Any) -> None:
        print(event.event_json if args.json else _event_line(event.event_json), flush=True)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends --follow
        tail(
            conn,
            args.store,
            after=args.after,
            follow=args.follow,
            on_event=show,
            interval=args.interval,
            lines=args.lines,
        )
    return 0


def _run_export(args: argparse.Namespace, conn: Any) -> int:
    from stratasync.operations.transfer import export_store

    result = export_store(conn, args.store, args.output, sys.stdout)
    summary = result.as_dict()
    if args.json:
        print(json.dumps(summary), file=sys.stderr if args.output is None else sys.stdout)
    else:
        where = args.output or "stdout"
        print(
            f"exported {result.events} events of store {args.store!r} (backend id {result.backend_id}, head"
            f" {result.head.seq_num}, {_size(result.bytes)}) to {where}",
            file=sys.stderr,
        )
    return 0


def _changing(
    args: argparse.Namespace, operation: str, steps: tuple[str, ...], run: Callable[[Any], Any]
) -> int:
    """Run a changing operation with a journal; on any failure say what was done and what is left."""
    from stratasync.operations.journal import Journal

    journal = Journal(operation, args.store, steps, out=sys.stderr)
    print(f"stratasync backend {operation}: store {args.store!r}", file=sys.stderr, flush=True)
    try:
        result = run(journal)
    except KeyboardInterrupt:
        print(journal.stopped(RuntimeError("interrupted (Ctrl-C)")), file=sys.stderr)
        return 130
    except Exception as error:
        if not journal.done:
            raise  # nothing happened: the plain message says it all
        print(journal.stopped(error), file=sys.stderr)
        return 1
    data = result.as_dict()
    if args.json:
        print(json.dumps({**data, "journal": journal.as_dict()}, indent=2))
    return 0


def _run_import(args: argparse.Namespace, conn: Any) -> int:
    from stratasync.operations.transfer import IMPORT_STEPS, import_file

    def run(journal: Any) -> Any:
        result = import_file(conn, args.store, args.file, journal, backend_id=args.backend_id)
        if not args.json:
            print(
                f"imported {result.events - result.already_there} events into store {args.store!r}"
                " (backend id"
                f" {result.backend_id}, head {result.head.seq_num}); {result.segments_sealed} segments sealed"
            )
        return result

    return _changing(args, "import", IMPORT_STEPS, run)


def _confirm(args: argparse.Namespace, what: str) -> None:
    from stratasync.operations import OperationError

    if not args.yes:
        raise OperationError(f"{what}: this cannot be undone; add --yes to go ahead")


def _run_delete(args: argparse.Namespace, conn: Any) -> int:
    from stratasync.operations.erase import DELETE_STEPS, erase

    _confirm(args, f"delete erases every item and every object version of store {args.store!r}")

    def run(journal: Any) -> Any:
        result = erase(
            conn, args.store, journal, kind="delete", grace_seconds=args.grace, keep_archive=args.keep_archive
        )
        if not args.json:
            items = sum(result.items_deleted.values())
            print(
                f"deleted store {args.store!r}: {items} DynamoDB items, {result.versions_deleted} S3 object"
                f" versions and {result.delete_markers_deleted} delete markers; left:"
                f" {result.items_left} items,"
                f" {result.versions_left} object versions"
            )
        return result

    return _changing(args, "delete", DELETE_STEPS, run)


def _run_reset(args: argparse.Namespace, conn: Any) -> int:
    from stratasync.operations.erase import RESET_STEPS, erase

    _confirm(args, f"reset erases the log of store {args.store!r} and starts it over under a new backend id")

    def run(journal: Any) -> Any:
        result = erase(
            conn, args.store, journal, kind="reset", grace_seconds=args.grace, export_path=args.export
        )
        if not args.json:
            print(
                f"reset store {args.store!r}: backend id {result.backend_id} -> {result.new_backend_id};"
                f" LiveStore clients will reset their local data on their next sync, Python clients rebase"
                f" their pending commits onto the new log"
            )
        return result

    return _changing(args, "reset", RESET_STEPS, run)


def _run_restore(args: argparse.Namespace, conn: Any) -> int:
    from stratasync.operations.restore import RESTORE_STEPS, restore

    def run(journal: Any) -> Any:
        result = restore(conn, args.store, journal, backend_id=args.backend_id)
        if not args.json:
            print(
                f"restored store {args.store!r} from {result.segments} segments:"
                f" {result.head.events} events up to"
                f" seqNum {result.head.seq_num}, backend id {result.backend_id} (kept: clients go on)\n"
                f"LOST: the events after seqNum {result.head.seq_num} (seqNum {result.head.seq_num + 1}"
                " and on), which only DynamoDB held; a client whose cursor is past it is told to start over"
            )
        return result

    return _changing(args, "restore", RESTORE_STEPS, run)


def _run(handler: Callable[[argparse.Namespace, Any], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from stratasync.operations import OperationError, connect
        from stratasync.storage.base import StorageError

        try:
            conn = connect(resolve_target(args))
            return handler(args, conn)
        except (OperationError, StorageError) as error:
            print(f"stratasync backend {args.backend_command}: {error}", file=sys.stderr)
            return 1

    return run


def add_backend_commands(commands: Any) -> None:
    """Register ``stratasync backend list|inspect|tail|export|import|delete|reset|restore``."""
    from stratasync.operations.erase import DEFAULT_GRACE_SECONDS

    backend = commands.add_parser(
        "backend",
        help="operate a store on the backend's storage (list, inspect, tail, export, import,"
        " delete, reset, restore)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = backend.add_subparsers(dest="backend_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    add_target_options(common)
    common.add_argument("--json", action="store_true", help="print the result as JSON")

    def action(name: str, help_text: str, handler: Callable[[argparse.Namespace, Any], int]) -> Any:
        parser = actions.add_parser(name, help=help_text, parents=[common])
        parser.set_defaults(run=_run(handler))
        return parser

    def store_option(parser: Any) -> None:
        parser.add_argument("--store", required=True, metavar="ID", help="the store id")

    action("list", "the stores: head, event counts, hot and archived bytes, archive lag", _run_list)

    inspect = action("inspect", "one store in detail, and whether it is consistent", _run_inspect)
    store_option(inspect)
    inspect.add_argument(
        "--verify", action="store_true", help="download every segment and check its checksum"
    )

    tail = action("tail", "events as JSON lines (--json) or readable lines, as they commit", _run_tail)
    store_option(tail)
    tail.add_argument(
        "--after", type=int, metavar="SEQ", help="events after this seqNum (default: the last 10)"
    )
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new events (Ctrl-C stops)")
    tail.add_argument(
        "--interval", type=float, default=1.0, metavar="S", help="--follow polls every S seconds"
    )
    tail.add_argument(
        "--lines", "-n", type=int, default=10, metavar="N", help="without --after: the last N seqNums"
    )

    export = action(
        "export", "every event, hot and archived, in order, as NDJSON (the JSON a pull returns)", _run_export
    )
    store_option(export)
    export.add_argument("--output", "-o", metavar="FILE", help="write to FILE (default: stdout)")

    imp = action(
        "import", "events from an NDJSON file into a new or empty store (checked first)", _run_import
    )
    store_option(imp)
    imp.add_argument("file", metavar="FILE", help="NDJSON, one event a line (what export writes)")
    imp.add_argument("--backend-id", metavar="ID", help="create the store with this backend id (a migration)")

    grace_help = (
        f"seconds to wait between fencing the store and erasing it, for writes in flight (default"
        f" {DEFAULT_GRACE_SECONDS:g}; see docs/operations.md)"
    )
    delete = action("delete", "erase a store: every item, every S3 object version", _run_delete)
    store_option(delete)
    delete.add_argument("--yes", action="store_true", help="really delete")
    delete.add_argument("--grace", type=float, default=DEFAULT_GRACE_SECONDS, metavar="S", help=grace_help)
    delete.add_argument(
        "--keep-archive", action="store_true", help="erase the DynamoDB items only (a restore drill)"
    )

    reset = action("reset", "start a store over, empty, under a new backend id", _run_reset)
    store_option(reset)
    reset.add_argument("--yes", action="store_true", help="really reset")
    reset.add_argument("--export", metavar="FILE", help="export the log to FILE first (after fencing)")
    reset.add_argument("--grace", type=float, default=DEFAULT_GRACE_SECONDS, metavar="S", help=grace_help)

    restore = action(
        "restore", "rebuild a store whose DynamoDB items were lost from its S3 segments", _run_restore
    )
    store_option(restore)
    restore.add_argument(
        "--backend-id",
        metavar="ID",
        help="the backend id, if the archive does not record it (older segments)",
    )
