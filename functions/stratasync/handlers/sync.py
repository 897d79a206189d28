"""The sync endpoint behind API Gateway HTTP API (payload 2.0): ``POST /`` speaks sync-cf HTTP;
``GET /archive`` lists archived segments with presigned URLs (fast bootstrap, README).

SAM/CDK: ``Handler: stratasync.handlers.sync.lambda_handler`` with ``STRATASYNC_TABLE_NAME`` set;
with live sync (``STRATASYNC_WS_ENABLED``, ``STRATASYNC_CONNECTIONS_TABLE``, ``STRATASYNC_WS_ENDPOINT``)
a push is fanned out to the store's live WebSocket pulls before it is answered.
What requests are served with comes from :func:`stratasync.handlers.wiring.get_backend`, built from
the environment once per execution environment (in Lambda at init, so SnapStart snapshots it).
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver, CORSConfig, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from stratasync.core import RpcResponse, handle_rpc
from stratasync.core.manifest import handle_manifest
from stratasync.core.sealing import ArchivePolicy, archive_lag, hot_events
from stratasync.core.service import PushResult
from stratasync.handlers.observability import (
    ARCHIVE_LAG_METRIC,
    make_metrics,
    make_tracer,
    observe_push_fan_out,
)
from stratasync.handlers.wiring import (
    Backend,
    get_backend,
    get_publisher,
    init_sync_function,
    register_snapshot_hooks,
)
from stratasync.protocol.errors import ServerAheadError
from stratasync.storage.base import StorageError

logger = Logger(service="stratasync")
metrics = make_metrics("stratasync", "stratasync")
tracer = make_tracer("stratasync")
app = APIGatewayHttpResolver(
    cors=CORSConfig(
        allow_origin="*",
        # Browsers preflight the LiveStore client's JSON POST, its store id header, auth, and tracing.
        allow_headers=[
            "content-type",
            "x-livestore-store-id",
            "authorization",
            "b3",
            "traceparent",
            "tracestate",
        ],
        max_age=600,
    )
)


@app.post("/")
@tracer.capture_method(capture_response=False)
def sync_rpc() -> Response[str]:
    """One Effect-RPC request (Ping, Push or Pull) in, its JSON array of response messages out."""
    event = app.current_event
    # The raw bytes: API Gateway base64-encodes bodies that are not UTF-8 text, and those must
    # reach the envelope parser (a 400 Defect), not a UTF-8 decode that would fail here.
    raw = event.body or ""
    body = base64.b64decode(raw) if event.is_base64_encoded else raw.encode()
    backend = get_backend()
    result = handle_rpc(
        backend.service,
        body,
        query=event.query_string_parameters or {},
        headers={name.lower(): value for name, value in (event.headers or {}).items()},
    )
    _observe(result)
    if result.push is not None and result.store_id is not None:
        _publish(result.store_id, result.push)
    trigger = backend.archive_trigger
    if (
        result.push is not None
        and trigger is not None
        and result.store_id is not None
        and trigger.after_push(result.store_id, result.push)
    ):
        _observe_archive_lag(backend, result.store_id, trigger.policy)
    if result.content_encoding is None:
        return Response(status_code=result.status, content_type="application/json", body=result.body.decode())
    # A compressed body travels base64-encoded (isBase64Encoded), as API Gateway needs for binary.
    # (Powertools would run bytes through its JSON serializer for an application/json response.)
    response = Response(
        status_code=result.status,
        content_type="application/json",
        body=base64.b64encode(result.body).decode(),
        headers={"Content-Encoding": result.content_encoding, "Vary": "Accept-Encoding"},
    )
    response.base64_encoded = True
    return response


@app.get("/archive")
@tracer.capture_method(capture_response=False)
def archive_manifest() -> Response[str]:
    """Fast bootstrap: the archived segments after a cursor, with presigned S3 GET URLs."""
    event = app.current_event
    backend = get_backend()
    status, body = handle_manifest(
        backend.service,
        backend.archive,
        event.query_string_parameters or {},
        {name.lower(): value for name, value in (event.headers or {}).items()},
        expires_in=backend.settings.presign_expiry_seconds,
    )
    logger.info("archive manifest", extra={"status": status, "segments": len(body.get("segments", []))})
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


def _publish(store_id: str, pushed: PushResult) -> None:
    """Send a committed batch to the store's live pulls now, before the answer (the stream's
    fan-out is the safety net: nothing here may fail the push)."""
    try:
        publisher = get_publisher()
        if publisher is not None:
            deadline_ms = int(time.time() * 1000) + app.lambda_context.get_remaining_time_in_millis()
            observe_push_fan_out(metrics, publisher.publish(store_id, pushed, deadline_ms=deadline_ms))
    except Exception:
        logger.exception("the push's fan-out could not start: the stream's fan-out takes over")


def _observe_archive_lag(backend: Backend, store_id: str, policy: ArchivePolicy) -> None:
    """The store's archive lag, when a push completed a segment (two small reads per segment)."""
    if backend.archive is None:
        return
    try:
        lag = archive_lag(hot_events(backend.archive.hot, store_id), policy)
    except StorageError:
        logger.warning("could not read the archive lag", extra={"store_id": store_id})
        return
    metrics.add_metric(name=ARCHIVE_LAG_METRIC, unit=MetricUnit.Count, value=lag)


def _observe(result: RpcResponse) -> None:
    """One log line and the EMF metrics of a request (never event args or tokens)."""
    fields: dict[str, Any] = {"rpc": result.rpc.value if result.rpc else None, "store_id": result.store_id}
    if result.push is not None:
        metrics.add_metric(name="Pushes", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="EventsPushed", unit=MetricUnit.Count, value=result.push.events)
        fields.update(events=result.push.events, head=result.push.head, retry=result.push.already_committed)
    if result.pull is not None:
        metrics.add_metric(name="EventsPulled", unit=MetricUnit.Count, value=result.pull.events)
        fields.update(events=result.pull.events, pages=result.pull.pages, truncated=result.pull.truncated)
    if isinstance(result.error, ServerAheadError):
        metrics.add_metric(name="Conflicts", unit=MetricUnit.Count, value=1)
    if result.error is not None:
        fields.update(error=result.error.to_wire().get("_tag"), reason=str(result.error))
        logger.info("sync request refused", extra=fields)
    elif result.status >= 400:
        logger.info("malformed request", extra={"status": result.status})
    else:
        logger.info("sync request", extra=fields)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The Lambda entry point."""
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    return app.resolve(event, context)


if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:  # in Lambda: build at init (SnapStart snapshots it)
    register_snapshot_hooks()
    init_sync_function()
