"""The fan-out function: the DynamoDB Streams consumer of the eventlog table.

SAM/CDK: ``Handler: stratasync.handlers.fanout.lambda_handler``, an event source mapping on the
eventlog table's stream (view ``KEYS_ONLY`` suffices: events are read from the log) with the
filter ``eventName`` INSERT and ``dynamodb.Keys.sk.S`` prefix ``b#`` (new commit records),
ParallelizationFactor 1, a small batch and window, and retries (a failed batch is retried; a
retry is harmless). Env as the ws function. See docs/websocket.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from stratasync.handlers.observability import make_metrics, make_tracer
from stratasync.handlers.wiring import get_live, register_snapshot_hooks
from stratasync.storage.dynamodb_items import BATCH_PREFIX

logger = Logger(service="stratasync-fanout")
metrics = make_metrics("stratasync", "stratasync-fanout")
tracer = make_tracer("stratasync-fanout")


def stores_with_commits(records: Iterable[dict[str, Any]]) -> list[str]:
    """The stores that new commit records name, in order of first appearance (filtered again here,
    in case the event source mapping's filter is missing)."""
    stores: dict[str, None] = {}
    for record in records:
        keys = record.get("dynamodb", {}).get("Keys", {})
        sort_key = keys.get("sk", {}).get("S", "")
        store_id = keys.get("pk", {}).get("S")
        if record.get("eventName") == "INSERT" and sort_key.startswith(BATCH_PREFIX) and store_id:
            stores.setdefault(store_id)
    return list(stores)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The Lambda entry point: a batch of stream records. Raises (so the batch is retried) when a
    store could not be served in full."""
    live = get_live().live
    results = []
    for store_id in stores_with_commits(event.get("Records") or []):
        report = live.fan_out(store_id)
        metrics.add_metric(name="LiveDeliveries", unit=MetricUnit.Count, value=report.delivered)
        metrics.add_metric(name="LiveMessages", unit=MetricUnit.Count, value=report.messages_sent)
        metrics.add_metric(name="ConnectionsClosed", unit=MetricUnit.Count, value=len(report.closed))
        fields = {
            "store_id": store_id,
            "head": report.head,
            "delivered": report.delivered,
            "messages": report.messages_sent,
            "closed": len(report.closed),
            "gone": len(report.gone),
            "rounds": report.rounds,
        }
        logger.info("fan-out", extra=fields)
        results.append(fields)
    return {"stores": results}


if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:  # in Lambda: build at init (SnapStart snapshots it)
    register_snapshot_hooks()
    get_live()
