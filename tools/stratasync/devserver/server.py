"""The dev server: each HTTP request becomes an API Gateway HTTP API (payload 2.0) event.

Requests are handed to a pool of worker *processes*, each importing the real Lambda handler
module: every worker is one simulated Lambda execution environment (one request at a time,
module state kept warm), so concurrent requests really run concurrently, as on AWS. A Lambda
response larger than Lambda's 6 MB limit is answered 500, as API Gateway would.

The push path triggers the archiver through the Lambda ``Invoke`` API. The dev server serves that
API on a second, private port on 127.0.0.1 (never on the public sync port), for a function whose
name carries a secret made for this run: only the dev server's own workers know where it is.
"""

from __future__ import annotations

import base64
import io
import json
import multiprocessing
import os
import secrets
import sys
import threading
import time
import uuid
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit

from stratasync.devserver.embedded_moto import EmbeddedMoto, ensure_fake_credentials

#: API Gateway's own payload limit; larger requests never reach the Lambda.
MAX_GATEWAY_BODY_BYTES = 10 * 1024 * 1024
#: Lambda's limit on a synchronous invocation's response (the whole JSON the handler returns).
MAX_LAMBDA_RESPONSE_BYTES = 6 * 1024 * 1024


@dataclass
class DevServerConfig:
    """How to run ``stratasync dev``."""

    host: str = "127.0.0.1"
    port: int = 8787
    #: None: an embedded moto. Otherwise DynamoDB Local, another emulator, or a real AWS endpoint.
    dynamodb_endpoint: str | None = None
    table_name: str = "stratasync"
    workers: int = 2
    log_level: str = "WARNING"
    #: Print the handler's CloudWatch EMF metric lines too.
    show_metrics: bool = False
    #: Require HS256 tokens signed with this secret (None: authentication off).
    auth_secret: str | None = None
    #: None: the embedded moto serves S3 too. Otherwise SeaweedFS, MinIO, or a real AWS endpoint.
    s3_endpoint: str | None = None
    #: The archive bucket (created if missing).
    bucket: str = "stratasync-archive"
    #: Seal a segment at this many events or bytes of event JSON (small values: segments at once).
    segment_events: int = 10_000
    segment_bytes: int = 4_000_000
    extra_env: dict[str, str] = field(default_factory=dict)


#: The archiver function's name (a per-run secret is appended); the dev server serves the
#: Lambda Invoke API for it on a private port.
ARCHIVE_FUNCTION = "stratasync-archive-dev"
_INVOKE_PATH = "/2015-03-31/functions/"


class _FakeLambdaContext:
    function_version = "$LATEST"
    memory_limit_in_mb = 512

    def __init__(self, function_name: str = "stratasync-sync-dev", timeout_seconds: float = 30) -> None:
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _WithoutMetricLines(io.TextIOBase):
    """stdout without Powertools' EMF metric lines (``{"_aws": ...}``), which only CloudWatch reads."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._dropping = False

    def write(self, text: str) -> int:
        if text.startswith('{"_aws"'):
            self._dropping = True
        elif not (self._dropping and text == "\n"):
            self._dropping = False
            self._stream.write(text)
        else:
            self._dropping = False
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def _init_worker(env: dict[str, str], show_metrics: bool) -> None:
    os.environ.update(env)
    if not show_metrics:
        sys.stdout = _WithoutMetricLines(sys.stdout)
    import stratasync.handlers.sync  # noqa: F401 - the cold start happens here, once per worker


def _invoke(event: dict[str, Any]) -> dict[str, Any]:
    from stratasync.handlers.sync import lambda_handler

    result: dict[str, Any] = lambda_handler(event, _FakeLambdaContext())
    return result


def _init_archive_worker(env: dict[str, str], show_metrics: bool) -> None:
    os.environ.update(env)
    if not show_metrics:
        sys.stdout = _WithoutMetricLines(sys.stdout)
    import stratasync.handlers.archive  # noqa: F401


def _invoke_archive(payload: dict[str, Any]) -> dict[str, Any]:
    from stratasync.handlers.archive import lambda_handler

    result: dict[str, Any] = lambda_handler(payload, _FakeLambdaContext(ARCHIVE_FUNCTION, 900))
    return result


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer is the client's business; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _warm() -> int:
    return os.getpid()


def to_gateway_event(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
) -> dict[str, Any]:
    """An API Gateway HTTP API payload-2.0 event for one HTTP request."""
    parts = urlsplit(target)
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "cookie":
            cookies.extend(cookie.strip() for cookie in value.split(";") if cookie.strip())
            continue
        merged[lower] = f"{merged[lower]},{value}" if lower in merged else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    try:
        text_body: str | None = body.decode() if body else None
        is_base64 = False
    except UnicodeDecodeError:
        text_body, is_base64 = base64.b64encode(body).decode(), True
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": merged,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "dev",
            "domainName": merged.get("host", "localhost"),
            "domainPrefix": "dev",
            "http": {
                "method": method,
                "path": parts.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if text_body is not None:
        event["body"] = text_body
    return event


class DevServer:
    """Runs the sync Lambda on ``http://host:port/``; use as a context manager or start()/stop()."""

    def __init__(self, config: DevServerConfig, out: TextIO | None = None) -> None:
        self.config = config
        self._out = out if out is not None else sys.stdout
        self._moto: EmbeddedMoto | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._archive_pool: ProcessPoolExecutor | None = None
        self._out_lock = threading.Lock()
        self.s3_endpoint: str | None = None
        self._http: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.dynamodb_endpoint: str | None = None
        #: The archiver's function name for this run (its suffix is a secret).
        self.archive_function = f"{ARCHIVE_FUNCTION}-{secrets.token_hex(12)}"
        self._lambda_api: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._http is not None, "start() first"
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def lambda_api_url(self) -> str:
        """The private endpoint of the Lambda Invoke API (the archive trigger's)."""
        assert self._lambda_api is not None, "start() first"
        return f"http://127.0.0.1:{self._lambda_api.server_address[1]}"

    def start(self) -> DevServer:
        from stratasync.storage.dynamodb import create_table, make_client
        from stratasync.storage.s3 import ensure_bucket, make_s3_client

        config = self.config
        # Bind first: a busy port is reported before anything slow starts.
        self._http = _QuietHTTPServer((config.host, config.port), self._make_handler())
        self._lambda_api = _QuietHTTPServer(("127.0.0.1", 0), self._make_lambda_api_handler())
        threading.Thread(
            target=self._lambda_api.serve_forever, name="devserver-lambda-api", daemon=True
        ).start()
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
        create_table(make_client(self.dynamodb_endpoint), config.table_name)
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
            **{
                name: os.environ[name]
                for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
                if name in os.environ
            },
            **config.extra_env,
        }
        self._pool = ProcessPoolExecutor(
            max_workers=config.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(env, config.show_metrics),
        )
        # The archiver is another function: its own execution environment (one at a time).
        self._archive_pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_archive_worker,
            initargs=(env, config.show_metrics),
        )
        # Start every worker now, so a misconfiguration shows at once and not on the first request.
        warming = [self._pool.submit(_warm) for _ in range(config.workers)]
        for future in [*warming, self._archive_pool.submit(_warm)]:
            future.result(timeout=120)

        self._thread = threading.Thread(target=self._http.serve_forever, name="devserver-http", daemon=True)
        self._thread.start()
        print(f"stratasync dev server listening on {self.url}", file=self._out)
        print(f"  storage: {storage_text}, table {config.table_name!r}", file=self._out)
        auth_text = "HS256 tokens signed with --auth-secret required" if config.auth_secret else "off"
        print(f"  auth: {auth_text}", file=self._out)
        print(
            f"  archive: s3://{config.bucket} on {s3_text}; segments of {config.segment_events} events"
            f" or {config.segment_bytes} bytes, sealed by the archiver function (invoked from the push path)",
            file=self._out,
        )
        print(
            f"  {config.workers} Lambda worker process(es); LiveStore: makeHttpSync({{ url: '{self.url}' }})",
            file=self._out,
            flush=True,
        )
        return self

    def stop(self) -> None:
        for server in (self._http, self._lambda_api):
            if server is not None:
                server.shutdown()
                server.server_close()
        self._http = self._lambda_api = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._archive_pool is not None:
            self._archive_pool.shutdown(wait=True, cancel_futures=True)
            self._archive_pool = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """Run one API Gateway event through a worker (an execution environment)."""
        assert self._pool is not None, "start() first"
        return self._pool.submit(_invoke, event).result(timeout=60)

    def invoke_archive(self, payload: dict[str, Any]) -> Future[dict[str, Any]]:
        """Run the archiver function on ``payload``; each sealed segment is logged to the output."""
        assert self._archive_pool is not None, "start() first"
        future = self._archive_pool.submit(_invoke_archive, payload)
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

    def _lambda_api_call(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        """The Lambda ``Invoke`` API for the archiver function (how the push path triggers it)."""
        name = path[len(_INVOKE_PATH) :].split("/", 1)[0] if path.startswith(_INVOKE_PATH) else ""
        if method != "POST" or not path.endswith("/invocations") or name != self.archive_function:
            return 404, b'{"Type":"User","message":"Function not found"}'
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return 400, b'{"Type":"User","message":"payload is not JSON"}'
        future = self.invoke_archive(payload)
        if headers.get("x-amz-invocation-type", "RequestResponse") == "Event":
            return 202, b""
        try:
            return 200, json.dumps(future.result(timeout=900)).encode()
        except Exception as error:
            return 200, json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "stratasync-dev"
            disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms to each keep-alive request

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _read_body(self) -> bytes | None:
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    pieces: list[bytes] = []
                    total = 0
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(pieces)
                        total += size
                        if total > MAX_GATEWAY_BODY_BYTES:
                            return None
                        pieces.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_GATEWAY_BODY_BYTES:
                    return None
                return self.rfile.read(length) if length else b""

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _handle(self) -> None:
                try:
                    body = self._read_body()
                except ValueError:
                    self.close_connection = True
                    self._reply(400, {"content-type": "text/plain"}, b"malformed chunked body")
                    return
                if body is None:
                    self.close_connection = True
                    self._reply(
                        413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}'
                    )
                    return
                event = to_gateway_event(
                    self.command, self.path, list(self.headers.items()), body, self.client_address[0]
                )
                try:
                    result = server.invoke(event)
                except Exception as error:  # the Lambda "crashed": API Gateway answers 500
                    message = f'{{"message":"Internal Server Error","detail":{str(error)!r:s}}}'
                    self._reply(500, {"content-type": "application/json"}, message.encode())
                    return
                if len(json.dumps(result)) > MAX_LAMBDA_RESPONSE_BYTES:
                    too_big = (
                        b'{"message":"Internal Server Error","detail":"the Lambda response exceeds 6 MB"}'
                    )
                    self._reply(500, {"content-type": "application/json"}, too_big)
                    return
                headers = dict(result.get("headers") or {})
                for name, values in (result.get("multiValueHeaders") or {}).items():
                    headers[name] = ",".join(values)
                raw = result.get("body") or ""
                payload = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
                self._reply(int(result.get("statusCode", 200)), headers, payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle  # noqa: N815

        return Handler

    def _make_lambda_api_handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class LambdaApiHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if 0 < length <= MAX_GATEWAY_BODY_BYTES else b""
                lower = {name.lower(): value for name, value in self.headers.items()}
                status, answer = server._lambda_api_call(self.command, self.path, lower, body)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        return LambdaApiHandler
