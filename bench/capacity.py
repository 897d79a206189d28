"""DynamoDB write and read units per event of the storage design, measured on DynamoDB Local.

Every call the adapter makes is sent with ``ReturnConsumedCapacity=TOTAL`` (through a client
wrapper: the production code is unchanged) and the units DynamoDB reports are summed.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections import defaultdict
from typing import Any

from stratasync.core import SyncService
from stratasync.protocol import ServerAheadError
from stratasync.protocol.messages import Cursor, PushPayload
from stratasync.storage.dynamodb import DynamoDBStorage, create_table, make_client

WRITE_PRICE_PER_MILLION = 0.625  # on-demand, us-east-1
READ_PRICE_PER_MILLION = 0.125

_OPERATIONS = {"put_item", "get_item", "query", "delete_item", "batch_get_item"}


class CapacityMeter:
    """Wraps a DynamoDB client and adds up the capacity units DynamoDB reports."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.units: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def reset(self) -> None:
        self.units.clear()
        self.calls.clear()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if name not in _OPERATIONS:
            return method

        def call(**kwargs: Any) -> Any:
            self.calls[name] += 1
            try:
                result = method(ReturnConsumedCapacity="TOTAL", **kwargs)
            except Exception as error:
                consumed = getattr(error, "response", {}).get("ConsumedCapacity")
                if consumed:
                    self._add(name, consumed)
                raise
            self._add(name, result.get("ConsumedCapacity", {}))
            return result

        return call

    def _add(self, name: str, consumed: dict[str, Any]) -> None:
        kind = "write" if name in ("put_item", "delete_item") else "read"
        for entry in consumed if isinstance(consumed, list) else [consumed]:
            self.units[kind] += float(entry.get("CapacityUnits", 0.0))


def _events(parent: int, count: int, arg_bytes: int) -> list[dict[str, Any]]:
    return [
        {
            "name": "v1.TodoCreated",
            "args": {"id": uuid.uuid4().hex, "text": os.urandom(arg_bytes // 2).hex()},
            "seqNum": parent + index + 1,
            "parentSeqNum": parent + index,
            "clientId": "bench1",
            "sessionId": "s1",
        }
        for index in range(count)
    ]


def measure(endpoint: str) -> dict[str, Any]:
    """Units per event for several push shapes, for pulls, and for an idle poll."""
    meter = CapacityMeter(make_client(endpoint))
    create_table(make_client(endpoint), "bench-capacity")
    service = SyncService(DynamoDBStorage("bench-capacity", meter))  # type: ignore[arg-type]
    rows = []
    for batch_size, arg_bytes, pushes in [
        (1, 200, 50),
        (10, 200, 20),
        (100, 200, 5),
        (1, 1000, 50),
        (10, 1000, 20),
        (100, 8_000, 2),
    ]:
        store = f"cap-{uuid.uuid4().hex[:8]}"
        backend_id = service.store.backend_id(store)
        head = 0
        event_bytes = 0
        meter.reset()
        for _ in range(pushes):
            batch = _events(head, batch_size, arg_bytes)
            event_bytes += sum(len(json.dumps(event, separators=(",", ":"))) for event in batch)
            service.push(
                store,
                PushPayload.model_validate(
                    {"storeId": store, "batch": batch, "backendId": {"_tag": "Some", "value": backend_id}}
                ),
            )
            head += batch_size
        events = pushes * batch_size
        push_writes, push_reads = meter.units["write"], meter.units["read"]
        meter.reset()
        service.pull(store, Cursor(backendId=backend_id, eventSequenceNumber=0))
        full_pull_reads = meter.units["read"]
        meter.reset()
        service.pull(store, Cursor(backendId=backend_id, eventSequenceNumber=head))
        idle_reads = meter.units["read"]
        rows.append(
            {
                "batch_events": batch_size,
                "event_json_bytes": round(event_bytes / events),
                "write_units_per_event": round(push_writes / events, 3),
                "write_units_per_batch": round(push_writes / pushes, 2),
                "push_read_units_per_batch": round(push_reads / pushes, 2),
                "pull_read_units_per_event": round(full_pull_reads / events, 4),
                "idle_poll_read_units": idle_reads,
                "usd_per_million_events_pushed": round(
                    (push_writes * WRITE_PRICE_PER_MILLION + push_reads * READ_PRICE_PER_MILLION) / events, 4
                ),
            }
        )
    # Conflict: a stale push costs the head query and a digest lookup, and writes nothing.
    store = f"cap-{uuid.uuid4().hex[:8]}"
    service.push(
        store,
        PushPayload.model_validate(
            {"storeId": store, "batch": _events(0, 2, 200), "backendId": {"_tag": "None"}}
        ),
    )
    meter.reset()
    with contextlib.suppress(ServerAheadError):  # the refusal is the point
        service.push(
            store,
            PushPayload.model_validate(
                {"storeId": store, "batch": _events(0, 1, 200), "backendId": {"_tag": "None"}}
            ),
        )
    return {
        "rows": rows,
        "stale_push": {"write_units": meter.units["write"], "read_units": meter.units["read"]},
        "prices": {"write_per_million": WRITE_PRICE_PER_MILLION, "read_per_million": READ_PRICE_PER_MILLION},
    }
