"""The WebSocket function behind an API Gateway WebSocket API (LiveStore's ``makeWsSync``).

SAM/CDK: ``Handler: stratasync.handlers.ws.lambda_handler`` on the routes ``$connect``,
``$disconnect``, ``Request``, ``Interrupt`` and ``$default`` (route selection
``$request.body._tag``; ``Ping`` and ``Ack`` are MOCK routes and never reach it), with
``STRATASYNC_TABLE_NAME``, ``STRATASYNC_CONNECTIONS_TABLE``, ``STRATASYNC_WS_ENDPOINT`` and
``STRATASYNC_WS_ENABLED=true``. It answers through ``@connections`` (no route responses needed).
See docs/websocket.md.
"""

from __future__ import annotations

import base64
import os
import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from stratasync.core.ws_endpoint import MessageOutcome, handle_connect, handle_message
from stratasync.handlers.observability import make_metrics, make_tracer, observe_push_fan_out
from stratasync.handlers.wiring import get_live, register_snapshot_hooks
from stratasync.protocol.errors import ServerAheadError

logger = Logger(service="stratasync-ws")
metrics = make_metrics("stratasync", "stratasync-ws")
tracer = make_tracer("stratasync-ws")

_OK = {"statusCode": 200}


def _connect(event: dict[str, Any], connection_id: str) -> dict[str, Any]:
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    result = handle_connect(get_live().live, connection_id, event.get("queryStringParameters"), headers)
    fields = {"store_id": result.store_id, "status": result.status}
    if result.error is not None:
        logger.info("connection refused", extra={**fields, "reason": str(result.error)})
        return {"statusCode": result.status, "body": result.error.to_wire().get("_tag", "")}
    metrics.add_metric(name="Connections", unit=MetricUnit.Count, value=1)
    logger.info("connected", extra=fields)
    return _OK


def _observe(outcome: MessageOutcome) -> None:
    # "frame", not "message": a log record's own field, which logging refuses to overwrite.
    fields: dict[str, Any] = {"frame": outcome.tag, "rpc": outcome.rpc, "store_id": outcome.store_id}
    if outcome.push is not None:
        metrics.add_metric(name="Pushes", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="EventsPushed", unit=MetricUnit.Count, value=outcome.push.events)
        fields.update(events=outcome.push.events, head=outcome.push.head)
        observe_push_fan_out(metrics, outcome.published)
    if outcome.pull is not None:
        metrics.add_metric(name="EventsPulled", unit=MetricUnit.Count, value=outcome.pull.events)
        fields.update(events=outcome.pull.events, messages=outcome.pull.messages, live=outcome.pull.live)
    if isinstance(outcome.error, ServerAheadError):
        metrics.add_metric(name="Conflicts", unit=MetricUnit.Count, value=1)
    if outcome.error is not None:
        fields.update(error=outcome.error.to_wire().get("_tag"), reason=str(outcome.error))
        logger.info("sync request refused", extra=fields)
    else:
        logger.info("ws message", extra=fields)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The Lambda entry point: one API Gateway WebSocket event."""
    request_context = event["requestContext"]
    route = request_context.get("routeKey")
    connection_id = request_context["connectionId"]
    if route == "$connect":
        return _connect(event, connection_id)
    live = get_live()
    if route == "$disconnect":
        live.live.disconnect(connection_id)
        return _OK
    body = event.get("body") or ""
    data: str | bytes = base64.b64decode(body) if event.get("isBase64Encoded") else body
    deadline_ms = int(time.time() * 1000) + context.get_remaining_time_in_millis()
    outcome = handle_message(live.live, connection_id, data, deadline_ms=deadline_ms)
    _observe(outcome)
    trigger = live.backend.archive_trigger
    if outcome.push is not None and trigger is not None and outcome.store_id is not None:
        trigger.after_push(outcome.store_id, outcome.push)
    return _OK


if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:  # in Lambda: build at init (SnapStart snapshots it)
    register_snapshot_hooks()
    get_live()
