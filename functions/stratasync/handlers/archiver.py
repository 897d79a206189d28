"""The archiver Lambda: seals what is sealable now in the stores it is asked about.

SAM/CDK: ``Handler: stratasync.handlers.archiver.lambda_handler``, with ``STRATASYNC_TABLE_NAME``
and ``STRATASYNC_ARCHIVE_BUCKET`` set. The sync function invokes it asynchronously
(``InvocationType=Event``) with ``{"storeId": "<id>"}`` when a push probably completed a
segment (see README, "Eventlog archive"); ``{"storeIds": [...]}`` works too (operators, a
schedule). ``stratasync archive`` and ``stratasync dev`` run the same functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from stratasync.core.sealing import Archiver
from stratasync.handlers.observability import make_metrics, make_tracer
from stratasync.handlers.wiring import get_archiver, register_snapshot_hooks

logger = Logger(service="stratasync-archive")
metrics = make_metrics("stratasync", "stratasync-archive")
tracer = make_tracer("stratasync-archive")

#: Stop starting new segments when less than this much of the invocation is left.
_RESERVE_MS = 30_000


def archive_stores(
    archiver: Archiver, store_ids: Sequence[str], *, time_left_ms: Callable[[], int] | None = None
) -> dict[str, Any]:
    """Seal every sealable segment of these stores; one log line per sealed segment."""
    results = []
    metrics.add_metric(name="ArchiveRuns", unit=MetricUnit.Count, value=1)
    for store_id in store_ids:
        run = archiver.archive(
            store_id,
            keep_going=(lambda: time_left_ms() > _RESERVE_MS) if time_left_ms is not None else None,
        )
        for segment in run.sealed:
            logger.info(
                "segment sealed",
                extra={
                    "store_id": store_id,
                    "first": segment.first_seq_num,
                    "last": segment.last_seq_num,
                    "events": segment.events,
                    "raw_bytes": segment.raw_bytes,
                    "size": segment.size,
                    "key": segment.key,
                },
            )
            metrics.add_metric(name="SegmentsSealed", unit=MetricUnit.Count, value=1)
            metrics.add_metric(name="EventsArchived", unit=MetricUnit.Count, value=segment.events)
            metrics.add_metric(name="ArchivedBytes", unit=MetricUnit.Bytes, value=segment.size)
        results.append(
            {
                "storeId": store_id,
                "retiredBatches": run.retired_batches,
                "sealed": [
                    {
                        "firstSeqNum": segment.first_seq_num,
                        "lastSeqNum": segment.last_seq_num,
                        "events": segment.events,
                        "rawBytes": segment.raw_bytes,
                        "size": segment.size,
                        "key": segment.key,
                    }
                    for segment in run.sealed
                ],
            }
        )
    return {"stores": results}


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The Lambda entry point: ``{"storeId": ...}`` or ``{"storeIds": [...]}``."""
    store_ids = event.get("storeIds") or ([event["storeId"]] if event.get("storeId") else [])
    if not isinstance(store_ids, list) or not all(isinstance(item, str) and item for item in store_ids):
        raise ValueError("the archiver expects {'storeId': '<id>'} or {'storeIds': ['<id>', ...]}")
    return archive_stores(get_archiver(), store_ids, time_left_ms=context.get_remaining_time_in_millis)


if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:  # in Lambda: build at init (SnapStart snapshots it)
    register_snapshot_hooks()
    get_archiver()
