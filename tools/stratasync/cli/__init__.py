"""The ``stratasync`` command line."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Sequence


def _add_storage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dynamodb-endpoint",
        metavar="URL",
        help="DynamoDB endpoint (DynamoDB Local, another emulator, or AWS); default: an embedded moto",
    )
    parser.add_argument("--table", default="stratasync", help="DynamoDB table name (created if missing)")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="execution environments per function: worker processes, or threads with --in-process"
        " (default: 2)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the Lambda functions in threads of this process, their calls to the embedded moto and"
        " @connections without a socket: faster live sync, less like Lambda (docs/dev-server.md)",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="keep the eventlog and the WebSocket connections in this process's memory instead of"
        " DynamoDB (implies --in-process): the fastest live sync, the least like AWS; no operator"
        " commands (docs/dev-server.md)",
    )
    parser.add_argument("--log-level", default="WARNING", help="handler log level (default: WARNING)")
    parser.add_argument("--show-metrics", action="store_true", help="print the handler's EMF metric lines")
    parser.add_argument(
        "--auth-secret",
        metavar="SECRET",
        help="require HS256 JWTs signed with SECRET (payload.authToken or Authorization: Bearer);"
        " default: auth off",
    )
    _add_archive_options(parser)
    parser.add_argument(
        "--no-websocket",
        dest="websocket",
        action="store_false",
        help="serve HTTP only (makeHttpSync); WebSocket live sync (makeWsSync) is on by default, and"
        " then pushes refuse events over ~119 KB, which API Gateway's WebSocket could never deliver",
    )
    parser.add_argument(
        "--ws-idle-timeout", type=float, default=600.0, metavar="S", help="WebSocket idle timeout (600 s)"
    )
    parser.add_argument(
        "--ws-max-lifetime",
        type=float,
        default=7200.0,
        metavar="S",
        help="WebSocket connection lifetime (7200 s)",
    )


def _add_archive_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="S3 endpoint for the eventlog archive (SeaweedFS, MinIO, or AWS); default: the embedded moto",
    )
    parser.add_argument("--bucket", default="stratasync-archive", help="archive bucket (created if missing)")
    parser.add_argument(
        "--segment-events", type=int, default=10_000, metavar="N", help="seal a segment at N events"
    )
    parser.add_argument(
        "--segment-bytes", type=int, default=4_000_000, metavar="N", help="... or at N bytes of event JSON"
    )


def _run_archive(args: argparse.Namespace) -> int:
    """Seal what is sealable now, through the archiver Lambda's own functions."""
    import json

    from stratasync.cli.backend import resolve_target
    from stratasync.devserver.embedded_moto import ensure_fake_credentials
    from stratasync.handlers.archiver import archive_stores
    from stratasync.handlers.settings import Settings
    from stratasync.handlers.wiring import build_archiver
    from stratasync.operations import OperationError

    try:
        target = resolve_target(args)
    except OperationError as error:
        print(f"stratasync archive: {error}", file=sys.stderr)
        return 1
    if any(
        (endpoint or "").startswith("http://") for endpoint in (target.dynamodb_endpoint, target.s3_endpoint)
    ):
        ensure_fake_credentials()  # local emulators accept any credentials
    if target.region:
        import os

        os.environ.setdefault("AWS_DEFAULT_REGION", target.region)
    settings = Settings(
        table_name=target.table,
        dynamodb_endpoint=target.dynamodb_endpoint,
        archive_bucket=target.bucket,
        s3_endpoint=target.s3_endpoint,
        segment_events=target.segment_events,
        segment_bytes=target.segment_bytes,
        auth_required=False,
    )
    result = archive_stores(build_archiver(settings), args.store)
    for store in result["stores"]:
        for segment in store["sealed"]:
            print(
                f"sealed segment of store {store['storeId']!r}: seqNum {segment['firstSeqNum']}"
                f"..{segment['lastSeqNum']} ({segment['events']} events, {segment['rawBytes']} bytes"
                f" -> {segment['size']} gzip) {segment['key']}"
            )
        print(f"store {store['storeId']!r}: {len(store['sealed'])} segment(s) sealed")
    if args.json:
        print(json.dumps(result))
    return 0


def _dev_config(args: argparse.Namespace, port: int) -> object:
    from stratasync.devserver import DevServerConfig

    if args.workers < 1:
        raise SystemExit("stratasync: --workers must be at least 1")
    try:
        return DevServerConfig(
            host=args.host,
            port=port,
            dynamodb_endpoint=args.dynamodb_endpoint,
            table_name=args.table,
            workers=args.workers,
            log_level=args.log_level.upper(),
            show_metrics=args.show_metrics,
            auth_secret=args.auth_secret,
            s3_endpoint=args.s3_endpoint,
            bucket=args.bucket,
            segment_events=args.segment_events,
            segment_bytes=args.segment_bytes,
            websocket=args.websocket,
            ws_idle_timeout_seconds=args.ws_idle_timeout,
            ws_max_lifetime_seconds=args.ws_max_lifetime,
            web_app_dir=_web_app_dir(args),
            in_process=args.in_process,
            memory=args.memory,
        )
    except ValueError as error:  # options that do not go together
        raise SystemExit(f"stratasync: {error}") from None


def _web_app_dir(args: argparse.Namespace) -> str | None:
    """``--web-app``: a folder, ``auto`` (this checkout's built example app, if built) or ``none``."""
    from stratasync.devserver.webapp import default_web_app_dir

    choice: str | None = getattr(args, "web_app", None)
    if choice is None or choice == "none":
        return None
    if choice == "auto":
        found = default_web_app_dir()
        return str(found) if found is not None else None
    from pathlib import Path

    if not (Path(choice) / "index.html").is_file():
        raise SystemExit(f"stratasync: --web-app {choice}: no index.html there (build the app first)")
    return choice


def _run_dev(args: argparse.Namespace) -> int:
    from stratasync.devserver import DevServer, DevServerConfig

    config = _dev_config(args, args.port)
    assert isinstance(config, DevServerConfig)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with DevServer(config):
            print("  press Ctrl-C to stop", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
    except OSError as error:
        print(f"stratasync dev: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from stratasync.client.demo import new_demo_store_id, run_demo
    from stratasync.devserver import DevServer, DevServerConfig

    config = _dev_config(args, args.port)
    assert isinstance(config, DevServerConfig)
    store_id = new_demo_store_id()
    with DevServer(config) as server:
        converged = run_demo(server.url, store_id=store_id)
        if config.web_app_dir is not None:
            from stratasync.cli.web_demo import run_web_agent

            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the agent, then the server
                run_web_agent(
                    server.url,
                    server.app_url,
                    store_id,
                    seconds=args.agent_seconds,
                    interval=args.agent_interval,
                )
    return 0 if converged else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``stratasync`` command."""
    parser = argparse.ArgumentParser(
        prog="stratasync", description="LiveStore-compatible sync backend on AWS"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="serve the sync Lambda on localhost")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8787)
    dev.add_argument(
        "--web-app",
        default="auto",
        metavar="DIR",
        help="serve a built web app at /app/ (default 'auto': examples/web-todo/dist of this checkout,"
        " if built; 'none': off)",
    )
    _add_storage_options(dev)
    dev.set_defaults(run=_run_dev)

    demo = commands.add_parser("demo", help="start a dev server and run a short two-client demo sync")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=0, help="default: a free port")
    demo.add_argument(
        "--web-app",
        metavar="DIR",
        help="also serve this built web app at /app/ and run a Python agent in the demo's store,"
        " for a person to watch in a browser (scripts/demo.sh passes examples/web-todo/dist)",
    )
    demo.add_argument(
        "--agent-seconds",
        type=float,
        metavar="S",
        help="with --web-app: stop after S seconds (default: Ctrl-C)",
    )
    demo.add_argument(
        "--agent-interval", type=float, default=5.0, metavar="S", help="seconds between the agent's todos"
    )
    _add_storage_options(demo)
    demo.set_defaults(run=_run_demo)

    archive = commands.add_parser("archive", help="seal the archivable segments of stores now")
    archive.add_argument(
        "--store", action="append", required=True, metavar="ID", help="store id (repeatable)"
    )
    archive.add_argument("--json", action="store_true", help="also print the run as JSON")
    from stratasync.cli.backend import add_backend_commands, add_target_options

    add_target_options(archive)
    archive.set_defaults(run=_run_archive)

    from stratasync.cli.store import add_store_commands

    add_store_commands(commands)
    add_backend_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stratasync`` console script."""
    args = build_parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
