"""The fan-out function: the DynamoDB Streams consumer of the eventlog table.

SAM/CDK: ``Handler: stratasync.handlers.fanout.lambda_handler``, an event source mapping on the
eventlog table's stream (view ``KEYS_ONLY`` suffices: events are read from the log) with the
filter ``eventName`` INSERT and ``dynamodb.Keys.sk.S`` prefix ``b#`` (new commit records),
ParallelizationFactor 1, a small batch and window, and retries (a failed batch is retried; a
retry is harmless). Env as the ws function. See docs/websocket.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from stratasync.handlers.observability import (
    COMMIT_FANOUT_LAG_METRIC,
    LIVE_DELIVERIES_METRIC,
    LIVE_MESSAGES_METRIC,
    make_metrics,
    make_tracer,
)
from stratasync.handlers.wiring import get_live, register_snapshot_hooks
from stratasync.storage.dynamodb_items import batch_parent

logger = Logger(service="stratasync-fanout")
metrics = make_metrics("stratasync", "stratasync-fanout")
tracer = make_tracer("stratasync-fanout")


@dataclass
class NewCommits:
    """What a batch of stream records says about one store's new commits."""

    #: The lowest parent among its new commit records (where the new events start).
    first_parent: int
    #: The highest: a live subscription past it has every commit the records name.
    last_parent: int
    #: Its oldest record's ``ApproximateCreationDateTime`` (epoch seconds; None: none given).
    oldest_created: float | None = None


def stores_with_commits(records: Iterable[dict[str, Any]]) -> dict[str, NewCommits]:
    """The stores that new commit records name, in order of first appearance (filtered again here,
    in case the event source mapping's filter is missing)."""
    stores: dict[str, NewCommits] = {}
    for record in records:
        change = record.get("dynamodb", {})
        keys = change.get("Keys", {})
        sort_key = keys.get("sk", {}).get("S", "")
        store_id = keys.get("pk", {}).get("S")
        if record.get("eventName") != "INSERT" or not store_id:
            continue
        parent = batch_parent(sort_key)
        if parent is None:
            continue
        created = change.get("ApproximateCreationDateTime")
        created = float(created) if isinstance(created, int | float) else None
        seen = stores.setdefault(store_id, NewCommits(parent, parent, created))
        seen.first_parent = min(seen.first_parent, parent)
        seen.last_parent = max(seen.last_parent, parent)
        if created is not None and (seen.oldest_created is None or created < seen.oldest_created):
            seen.oldest_created = created
    return stores


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The Lambda entry point: a batch of stream records. Raises (so the batch is retried) when a
    store could not be served in full, after serving the others (a retry skips what is done)."""
    live = get_live().live
    deadline_ms = int(time.time() * 1000) + context.get_remaining_time_in_millis()
    results = []
    failures: list[Exception] = []
    for store_id, commits in stores_with_commits(event.get("Records") or []).items():
        try:
            report = live.fan_out(
                store_id, after=commits.first_parent, last_parent=commits.last_parent, deadline_ms=deadline_ms
            )
        except Exception as error:  # the other stores of the batch are served first
            logger.warning("fan-out incomplete: the batch will be retried", extra={"store_id": store_id})
            failures.append(error)
            continue
        if commits.oldest_created is not None:  # the stream's time has whole seconds: a coarse lag
            lag_ms = max(0.0, (time.time() - commits.oldest_created) * 1000)
            metrics.add_metric(name=COMMIT_FANOUT_LAG_METRIC, unit=MetricUnit.Milliseconds, value=lag_ms)
        metrics.add_metric(name=LIVE_DELIVERIES_METRIC, unit=MetricUnit.Count, value=report.delivered)
        metrics.add_metric(name=LIVE_MESSAGES_METRIC, unit=MetricUnit.Count, value=report.messages_sent)
        metrics.add_metric(name="ConnectionsClosed", unit=MetricUnit.Count, value=len(report.closed))
        fields = {
            "store_id": store_id,
            "head": report.head,
            "delivered": report.delivered,
            "messages": report.messages_sent,
            "closed": len(report.closed),
            "gone": len(report.gone),
            "rounds": report.rounds,
            "waits": report.waits,
        }
        logger.info("fan-out", extra=fields)
        results.append(fields)
    if failures:
        raise failures[0]
    return {"stores": results}


if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:  # in Lambda: build at init (SnapStart snapshots it)
    register_snapshot_hooks()
    get_live()
