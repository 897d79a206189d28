"""The dev server: the real Lambda handlers on localhost, behind an emulated API Gateway.

Each HTTP request becomes an API Gateway HTTP API (payload 2.0) event for the sync function, run
by worker processes that each import the real handler module (:mod:`.functions`): concurrent
requests really run concurrently, as on AWS. A Lambda response over Lambda's 6 MB limit is
answered 500, as API Gateway would. Storage is an embedded moto, or real endpoints (DynamoDB
Local, SeaweedFS, AWS), or (``memory``) the in-memory adapters, with :class:`~.streams.CommitFeed`
standing in for the stream.

The push path triggers the archiver through the Lambda ``Invoke`` API. The dev server serves
that API on a second, private port on 127.0.0.1 (never on the public sync port), for a function
whose name carries a secret made for this run: only the dev server's own workers know it.

Live sync over WebSocket (on unless ``websocket=False``): WebSocket upgrades on the public port
go to an emulated API Gateway WebSocket API (:mod:`.websocket`) in front of the real ws function;
its ``@connections`` API is served on the private port under a secret stage path; a poller reads
the eventlog table's DynamoDB stream into the real fanout function (:mod:`.streams`), as an
event source mapping does on AWS.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TextIO

from stratasync.devserver.asgi import GatewayApp, LambdaApiApp, PrivateApp, ServerThread, bind
from stratasync.devserver.config import DevServerConfig
from stratasync.devserver.embedded_moto import EmbeddedMoto, ensure_fake_credentials
from stratasync.devserver.functions import FunctionSpec, InProcessHost, LocalFunction, ThreadFunction
from stratasync.devserver.loopback import AsgiRoute, Route, wsgi_route
from stratasync.devserver.streams import CommitFeed, StreamPoller
from stratasync.devserver.webapp import WebAppMount
from stratasync.devserver.websocket import WebSocketApi, WebSocketLimits, websocket_protocol

if TYPE_CHECKING:
    from stratasync.handlers.wiring import MemoryTables

#: The archiver function's name (a per-run secret is appended).
ARCHIVE_FUNCTION = "stratasync-archive-dev"


class DevServer:
    """Runs the sync Lambda on ``http://host:port/``; use as a context manager or start()/stop()."""

    def __init__(self, config: DevServerConfig, out: TextIO | None = None) -> None:
        self.config = config
        self._out = out if out is not None else sys.stdout
        self._out_lock = threading.Lock()
        self._moto: EmbeddedMoto | None = None
        self._public: ServerThread | None = None
        self._private: ServerThread | None = None
        self._sync: LocalFunction | ThreadFunction | None = None
        self._archiver: LocalFunction | ThreadFunction | None = None
        self._ws: LocalFunction | ThreadFunction | None = None
        self._fanout: LocalFunction | ThreadFunction | None = None
        #: With ``in_process``: what the functions changed in this process, given back at stop.
        self._host: InProcessHost | None = None
        self._poller: StreamPoller | None = None
        #: With ``memory``: the stand-in for the stream (the memory eventlog's commits).
        self._feed: CommitFeed | None = None
        #: With ``memory``: the eventlog and connections the functions serve from.
        self.memory_tables: MemoryTables | None = None
        self._stop_waking: Callable[[], None] = lambda: None
        #: The emulated WebSocket API (None with websocket=False).
        self.websocket: WebSocketApi | None = None
        #: The secret stage path of the private ``@connections`` endpoint.
        self._ws_stage = f"ws-{secrets.token_hex(12)}"
        self.dynamodb_endpoint: str | None = None
        self.s3_endpoint: str | None = None
        #: The archiver's function name for this run (its suffix is a secret).
        self.archive_function = f"{ARCHIVE_FUNCTION}-{secrets.token_hex(12)}"

    @property
    def url(self) -> str:
        assert self._public is not None, "start() first"
        return f"http://{self.config.host}:{self._public.port}/"

    @property
    def app_url(self) -> str:
        """The web app's address (served when ``config.web_app_dir`` is set)."""
        return self.url + "app/"

    @property
    def lambda_api_url(self) -> str:
        """The private endpoint of the Lambda Invoke API (the archive trigger's)."""
        assert self._private is not None, "start() first"
        return f"http://127.0.0.1:{self._private.port}"

    @property
    def ws_endpoint(self) -> str:
        """The private ``@connections`` endpoint (``STRATASYNC_WS_ENDPOINT`` of the functions)."""
        return f"{self.lambda_api_url}/{self._ws_stage}"

    def start(self) -> DevServer:
        """Start everything; a failure on the way stops what had started, and is raised."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> DevServer:
        from stratasync.handlers.wiring import MemoryTables
        from stratasync.storage.dynamodb import create_table, make_client
        from stratasync.storage.dynamodb_table import create_connections_table
        from stratasync.storage.memory import InMemoryStorage, InMemorySubscriptionStorage
        from stratasync.storage.s3 import ensure_bucket, make_s3_client

        config = self.config
        # Bind first: a busy port is reported before anything slow starts.
        public_socket = bind(config.host, config.port)
        limits = WebSocketLimits(
            idle_timeout_seconds=config.ws_idle_timeout_seconds,
            max_lifetime_seconds=config.ws_max_lifetime_seconds,
        )
        if config.websocket:
            self.websocket = WebSocketApi(self.invoke_ws, limits=limits)
        self._public = ServerThread(
            WebAppMount(GatewayApp(self.invoke_async, self.websocket), config.web_app_dir),
            public_socket,
            "devserver-http",
            ws=websocket_protocol(limits) if config.websocket else "none",
        )
        private_app = PrivateApp(
            LambdaApiApp(self.archive_function, self.invoke_archive), self.websocket, self._ws_stage
        )
        self._private = ServerThread(private_app, bind("127.0.0.1", 0), "devserver-lambda-api")
        self._private.start()
        if config.dynamodb_endpoint is None or config.s3_endpoint is None:
            self._moto = EmbeddedMoto().start()
        if config.dynamodb_endpoint is None:
            assert self._moto is not None
            self.dynamodb_endpoint = self._moto.endpoint
            storage_text = (
                f"embedded moto at {self.dynamodb_endpoint} (in memory, gone when the server stops)"
            )
        else:
            self.dynamodb_endpoint = config.dynamodb_endpoint
            storage_text = f"DynamoDB at {self.dynamodb_endpoint}"
        if self.dynamodb_endpoint.startswith("http://"):
            ensure_fake_credentials()  # local emulators accept any credentials
        if config.memory:  # the functions never call DynamoDB: no tables in moto
            storage_text = "this process's memory (--memory: no DynamoDB; gone when the server stops)"
            self._feed = CommitFeed(
                self.invoke_fanout, table_name=config.table_name, read_delay=config.stream_read_delay
            )
            eventlog = InMemoryStorage(on_commit=self._feed.record if config.websocket else None)
            self.memory_tables = MemoryTables(eventlog, InMemorySubscriptionStorage(eventlog))
        else:
            dynamodb = make_client(self.dynamodb_endpoint)
            stream_view = "KEYS_ONLY" if config.websocket else None
            create_table(dynamodb, config.table_name, stream_view_type=stream_view)
            if config.websocket:
                create_connections_table(dynamodb, config.connections_table)
        if config.s3_endpoint is None:
            assert self._moto is not None
            self.s3_endpoint = self._moto.endpoint
            s3_text = f"embedded moto at {self.s3_endpoint}"
        else:
            self.s3_endpoint = config.s3_endpoint
            s3_text = f"S3 at {self.s3_endpoint}"
        if self.s3_endpoint.startswith("http://"):
            ensure_fake_credentials()
        ensure_bucket(make_s3_client(self.s3_endpoint), config.bucket)

        env = {
            "STRATASYNC_TABLE_NAME": config.table_name,
            "STRATASYNC_DYNAMODB_ENDPOINT": self.dynamodb_endpoint,
            "POWERTOOLS_TRACE_DISABLED": "true",
            # Powertools' EMF metric lines are for CloudWatch only
            **({} if config.show_metrics else {"POWERTOOLS_METRICS_DISABLED": "true"}),
            "POWERTOOLS_METRICS_NAMESPACE": "stratasync",
            "POWERTOOLS_LOG_LEVEL": config.log_level,
            "POWERTOOLS_SERVICE_NAME": "stratasync",
            "STRATASYNC_ARCHIVE_BUCKET": config.bucket,
            "STRATASYNC_S3_ENDPOINT": self.s3_endpoint,
            "STRATASYNC_SEGMENT_EVENTS": str(config.segment_events),
            "STRATASYNC_SEGMENT_BYTES": str(config.segment_bytes),
            # The push path invokes the archiver through the Lambda API, which this server serves.
            "STRATASYNC_ARCHIVE_FUNCTION": self.archive_function,
            "STRATASYNC_LAMBDA_ENDPOINT": self.lambda_api_url,
            "STRATASYNC_AUTH_REQUIRED": "true" if config.auth_secret else "false",
            **({"STRATASYNC_AUTH_HS256_SECRET": config.auth_secret} if config.auth_secret else {}),
            **(
                {
                    "STRATASYNC_WS_ENABLED": "true",
                    "STRATASYNC_CONNECTIONS_TABLE": config.connections_table,
                    "STRATASYNC_WS_ENDPOINT": self.ws_endpoint,
                }
                if config.websocket
                else {}
            ),
            # In one process the sends share the GIL with moto: sent at once they only interleave.
            **({"STRATASYNC_SEND_CONCURRENCY": "1"} if config.in_process else {}),
            **{
                name: os.environ[name]
                for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
                if name in os.environ
            },
            **config.extra_env,
        }
        if config.in_process:
            routes: dict[str, Route] = {self.lambda_api_url: AsgiRoute(private_app)}
            if self._moto is not None and self._moto.app is not None:
                routes[self._moto.endpoint] = wsgi_route(self._moto.app)
            self._host = InProcessHost(self).enter(env, routes, self.memory_tables)
        self._sync = self._function(
            FunctionSpec(
                "stratasync-sync-dev",
                "stratasync.handlers.sync:lambda_handler",
                "stratasync.handlers.wiring:init_sync_function",
                timeout_seconds=30,
                concurrency=config.workers,
            ),
            env,
        )
        # The archiver is another function: its own execution environment (one at a time).
        self._archiver = self._function(
            FunctionSpec(
                self.archive_function,
                "stratasync.handlers.archiver:lambda_handler",
                "stratasync.handlers.wiring:get_archiver",
                timeout_seconds=900,
                concurrency=1,
            ),
            env,
        )
        functions = [self._sync, self._archiver]
        if config.websocket:
            self._ws = self._function(
                FunctionSpec(
                    "stratasync-ws-dev",
                    "stratasync.handlers.ws:lambda_handler",
                    "stratasync.handlers.wiring:get_live",
                    timeout_seconds=120,
                    concurrency=config.workers,
                ),
                env,
            )
            # The stream consumer: one invocation at a time (ParallelizationFactor 1).
            self._fanout = self._function(
                FunctionSpec(
                    "stratasync-fanout-dev",
                    "stratasync.handlers.fanout:lambda_handler",
                    "stratasync.handlers.wiring:get_live",
                    timeout_seconds=120,
                    concurrency=1,
                ),
                env,
            )
            functions += [self._ws, self._fanout]
        for function in functions:
            function.warm()
        if config.websocket and self._feed is not None:
            self._feed.start()
        elif config.websocket:
            self._start_poller()
        self._public.start()
        print(f"stratasync dev server listening on {self.url}", file=self._out)
        table_text = "" if config.memory else f", table {config.table_name!r}"
        print(f"  storage: {storage_text}{table_text}", file=self._out)
        auth_text = "HS256 tokens signed with --auth-secret required" if config.auth_secret else "off"
        print(f"  auth: {auth_text}", file=self._out)
        print(
            f"  archive: s3://{config.bucket} on {s3_text}; segments of {config.segment_events} events"
            f" or {config.segment_bytes} bytes, sealed by the archiver function (invoked from the push path)",
            file=self._out,
        )
        if config.websocket:
            source = "its commits in memory" if config.memory else "the eventlog's DynamoDB stream"
            print(
                f"  websocket: LiveStore makeWsSync({{ url: '{self.url}' }}) on the same port; live events"
                f" fanned out from {source}",
                file=self._out,
            )
        functions_text = (
            f"{config.workers} thread(s) per Lambda function in this process (--in-process)"
            if config.in_process
            else f"{config.workers} Lambda worker process(es)"
        )
        print(
            f"  {functions_text}; LiveStore: makeHttpSync({{ url: '{self.url}' }})",
            file=self._out,
            flush=True,
        )
        if config.web_app_dir is not None:
            print(f"  web app: {self.app_url} (from {config.web_app_dir})", file=self._out, flush=True)
        return self

    def _function(self, spec: FunctionSpec, env: dict[str, str]) -> LocalFunction | ThreadFunction:
        """The function as worker processes, or as threads of this process (``in_process``)."""
        return ThreadFunction(spec) if self.config.in_process else LocalFunction(spec, env)

    def _start_poller(self) -> None:
        assert self.dynamodb_endpoint is not None
        moto = self._moto if self.config.dynamodb_endpoint is None else None
        polls = 0

        def after_poll() -> None:
            nonlocal polls
            polls += 1
            if moto is not None and polls % 500 == 0:
                moto.prune_stream_iterators()

        websocket = self.websocket
        wake = None
        if moto is not None:  # read the stream when moto writes a record, not on a 10 ms timer
            wake = threading.Event()
            self._stop_waking = moto.on_stream_record(wake.set)
        self._poller = StreamPoller(
            self.dynamodb_endpoint,
            self.config.table_name,
            self.invoke_fanout,
            busy=lambda: websocket is not None and websocket.open_connections > 0,
            poll_interval=self.config.stream_poll_interval,
            after_poll=after_poll,
            wake=wake,
            read_delay=self.config.stream_read_delay,
        ).start()

    def stop(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
        if self._feed is not None:
            self._feed.stop()
            self._feed = None
        self._stop_waking()
        for server in (self._public, self._private):
            if server is not None:
                server.stop()
        self._public = self._private = None
        for function in (self._sync, self._archiver, self._ws, self._fanout):
            if function is not None:
                function.close()
        self._sync = self._archiver = self._ws = self._fanout = None
        if self._host is not None:
            self._host.leave()
            self._host = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def invoke_async(self, event: dict[str, Any]) -> Future[Any]:
        """Run one API Gateway event through the sync function (an execution environment)."""
        assert self._sync is not None, "start() first"
        return self._sync.invoke(event)

    def invoke_ws(self, event: dict[str, Any]) -> Future[Any]:
        """Run one API Gateway WebSocket event through the ws function."""
        assert self._ws is not None, "start() first"
        return self._ws.invoke(event)

    def invoke_fanout(self, event: dict[str, Any]) -> Future[Any]:
        """Run one batch of stream records through the fanout function."""
        assert self._fanout is not None, "start() first"
        return self._fanout.invoke(event)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """:meth:`invoke_async`, waited for."""
        result: dict[str, Any] = self.invoke_async(event).result(timeout=60)
        return result

    def invoke_archive(self, payload: dict[str, Any]) -> Future[Any]:
        """Run the archiver function on ``payload``; each sealed segment is logged to the output."""
        assert self._archiver is not None, "start() first"
        future = self._archiver.invoke(payload)
        future.add_done_callback(self._log_archive_run)
        return future

    def _log_archive_run(self, future: Future[dict[str, Any]]) -> None:
        lines = []
        try:
            result = future.result()
        except Exception as error:  # the archiver "crashed": log it; the next trigger runs it again
            lines.append(f"  archiver failed: {type(error).__name__}: {error}")
        else:
            for store in result.get("stores", []):
                for segment in store["sealed"]:
                    lines.append(
                        f"  sealed segment of store {store['storeId']!r}: seqNum {segment['firstSeqNum']}"
                        f"..{segment['lastSeqNum']} ({segment['events']} events, {segment['rawBytes']} bytes"
                        f" -> {segment['size']} gzip) {segment['key']}"
                    )
        if lines:
            with self._out_lock:
                print("\n".join(lines), file=self._out, flush=True)
