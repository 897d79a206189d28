"""Archive bootstrap: a fresh Python client catches up on a store of 1,000,000 small events
(about 200 bytes each) that lies in S3 segments, through ``GET /archive`` and presigned GETs.

The backend runs in this process (the real Lambda handler behind a small HTTP front, over an
embedded moto serving DynamoDB and S3), so botocore's event hooks can count every DynamoDB and
S3 request it makes. The client runs in a fresh process, so its own peak memory is measured.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3

from stratasync.core.sealing import ArchivePolicy, Archiver
from stratasync.devserver.embedded_moto import EmbeddedMoto
from stratasync.devserver.gateway import FakeLambdaContext, to_gateway_event
from stratasync.storage.base import EventBatch
from stratasync.storage.dynamodb import DynamoDBStorage, create_table, make_client
from stratasync.storage.s3 import S3SegmentStorage, ensure_bucket, make_s3_client

TABLE, BUCKET, STORE = "bench-bootstrap", "bench-archive", "bootstrap-1m"
CREATED_AT = "2026-11-23T00:00:00.000Z"


def _event_json(seq: int) -> str:
    args = {"id": f"t{seq:07d}", "text": f"todo number {seq:07d} with a little text to reach ~200 bytes"}
    event = {
        "name": "v1.TodoCreated",
        "args": args,
        "seqNum": seq,
        "parentSeqNum": seq - 1,
        "clientId": "bench1",
        "sessionId": "sess01",
    }
    return json.dumps(event, separators=(",", ":"))


def populate(
    endpoint: str, events: int, segment_events: int, *, store_id: str = STORE, archive: bool = True
) -> dict[str, Any]:
    """An archived store, made the production way: ``events`` events appended in batches of
    ``segment_events`` plus one small newest batch, then sealed by the real Archiver (which
    leaves only the newest batch hot); ``archive=False``: left all hot."""
    storage = DynamoDBStorage(TABLE, make_client(endpoint))
    segments = S3SegmentStorage(BUCKET, make_s3_client(endpoint))
    raw_bytes = 0
    for start in range(1, events + 1, segment_events):
        stop = min(start + segment_events, events + 1)
        batch = [(seq, _event_json(seq)) for seq in range(start, stop)]
        raw_bytes += sum(len(text) for _, text in batch)
        storage.append(store_id, EventBatch(start - 1, batch, CREATED_AT))
    head = events + 1
    storage.append(store_id, EventBatch(events, [(head, _event_json(head))], CREATED_AT))
    sealed = 0
    if archive:
        run = Archiver(storage, segments, ArchivePolicy(segment_events, 1 << 40)).archive(store_id)
        sealed = len(run.sealed)
    return {"events": head, "average_event_bytes": round(raw_bytes / events), "segments": sealed}


class _Backend:
    """The sync Lambda handler in this process behind a threaded HTTP front, counting AWS requests."""

    def __init__(self, endpoint: str) -> None:
        os.environ.update(
            STRATASYNC_TABLE_NAME=TABLE,
            STRATASYNC_DYNAMODB_ENDPOINT=endpoint,
            STRATASYNC_S3_ENDPOINT=endpoint,
            STRATASYNC_ARCHIVE_BUCKET=BUCKET,
            STRATASYNC_AUTH_REQUIRED="false",
            POWERTOOLS_METRICS_DISABLED="true",
            POWERTOOLS_TRACE_DISABLED="true",
            POWERTOOLS_LOG_LEVEL="WARNING",
        )
        self.requests: Counter[str] = Counter()
        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("before-call", self._count)
        self.handler = importlib.import_module("stratasync.handlers.sync")
        backend = self

        class Front(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                event = to_gateway_event(
                    self.command, self.path, list(self.headers.items()), body, "127.0.0.1"
                )
                result = backend.handler.lambda_handler(event, FakeLambdaContext())
                payload = (result.get("body") or "").encode()
                if result.get("isBase64Encoded"):  # a compressed response
                    payload = base64.b64decode(payload)
                self.send_response(int(result["statusCode"]))
                for name, value in (result.get("headers") or {}).items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve  # noqa: N815

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Front)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def _count(self, model: Any, **_: Any) -> None:
        self.requests[f"{model.service_model.service_name}.{model.name}"] += 1


def measure(events: int = 1_000_000, segment_events: int = 10_000) -> dict[str, Any]:
    """Populate, then bootstrap a fresh client in a child process; time, memory and requests."""
    with EmbeddedMoto() as moto:
        create_table(make_client(moto.endpoint), TABLE)
        ensure_bucket(make_s3_client(moto.endpoint), BUCKET)
        started = time.perf_counter()
        shape = populate(moto.endpoint, events, segment_events)
        populate_seconds = time.perf_counter() - started
        backend = _Backend(moto.endpoint)
        backend.requests.clear()
        child = subprocess.run(
            [sys.executable, "-m", "bench.bootstrap_client", backend.url, STORE],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        result = json.loads(child.stdout)
        backend.http.shutdown()
    aws = dict(sorted(backend.requests.items()))
    return {
        "events": shape["events"],
        "average_event_bytes": shape["average_event_bytes"],
        "segments_downloaded": result["segments"],
        "megabytes_downloaded": round(result["bytes"] / 1e6, 1),
        "bootstrap_seconds": result["bootstrap_seconds"],
        "total_seconds_to_caught_up": result["total_seconds"],
        "client_peak_rss_mb": result["peak_rss_mb"],
        "client_requests_to_backend": result["backend_requests"],
        "s3_get_requests_by_client": result["segments"],
        "backend_aws_requests": aws,
        "populate_seconds": round(populate_seconds, 1),
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
