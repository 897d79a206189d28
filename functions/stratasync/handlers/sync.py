"""The sync endpoint behind API Gateway HTTP API (payload 2.0): ``POST /`` speaks sync-cf HTTP.

SAM/CDK: ``Handler: stratasync.handlers.sync.lambda_handler`` with ``STRATASYNC_TABLE_NAME`` set.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from stratasync.config import Settings
from stratasync.core import RpcResponse, SyncService, handle_rpc
from stratasync.protocol.errors import ServerAheadError
from stratasync.storage.dynamodb import DynamoDBEventStore, make_client

logger = Logger(service="stratasync")
metrics = Metrics(namespace="stratasync", service="stratasync")
tracer = Tracer(service="stratasync")
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

settings = Settings.from_env()
service = SyncService(
    DynamoDBEventStore(
        settings.table_name,
        make_client(settings.dynamodb_endpoint),
        time_budget_seconds=settings.storage_time_budget_seconds,
    ),
    pull_response_bytes=settings.pull_response_bytes,
    limits=settings.limits(),
    access=settings.access_control(),
)


@app.post("/")
@tracer.capture_method(capture_response=False)
def sync_rpc() -> Response[str]:
    """One Effect-RPC request (Ping, Push or Pull) in, its JSON array of response messages out."""
    event = app.current_event
    body = event.decoded_body or ""
    result = handle_rpc(
        service,
        body.encode() if isinstance(body, str) else body,
        query=event.query_string_parameters or {},
        headers={name.lower(): value for name, value in (event.headers or {}).items()},
    )
    _observe(result)
    return Response(status_code=result.status, content_type="application/json", body=result.body)


def _observe(result: RpcResponse) -> None:
    """One log line and the EMF metrics of a request (never event args or tokens)."""
    fields: dict[str, Any] = {"rpc": result.rpc.value if result.rpc else None, "store_id": result.store_id}
    if result.push is not None:
        metrics.add_metric(name="Pushes", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="EventsPushed", unit=MetricUnit.Count, value=result.push.events)
        fields.update(events=result.push.events, head=result.push.head, retry=result.push.already_committed)
    if result.pull is not None:
        metrics.add_metric(name="EventsPulled", unit=MetricUnit.Count, value=result.pull.events)
        fields.update(events=result.pull.events, truncated=result.pull.truncated)
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
