"""What an operator's tool does to a store's items (``stratasync backend ...``), in the adapter's layout.

Nothing here is on a request path: the sync and archiver functions never call it. It reads items as
they are (a fence, a tombstone, a part), where :class:`~stratasync.storage.dynamodb.DynamoDBStorage`
would refuse or join them, and it writes the few items an operation needs:

* ``meta``'s ``state`` (``reset``, ``delete``, ``restore``), ``stateAt`` and ``step``: what is under
  way and how far it got, so that running the same command again finishes it. While ``state`` is
  set, the adapter serves no request for the store (:class:`~stratasync.storage.StoreFencedError`).
* the fence (:func:`~stratasync.storage.dynamodb_items.fence_record`) at the head: written before
  anything is removed, so no push can commit after it (the conditional put at the head loses to
  the fence, a push on an older parent loses to the commit record there) and no pull is served.
  ``ts`` is when it was written (epoch seconds): the operation waits out the writes in flight from
  then on before it deletes a single record.
* a restored store's segment index and one tombstone per segment (its commit chain up to the last
  sealed seqNum), under the backend id the archive recorded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from stratasync.storage.base import EMPTY_LOG, LogHead, SegmentInfo, StorageError
from stratasync.storage.dynamodb import DynamoDBStorage
from stratasync.storage.dynamodb_items import (
    BATCH_PREFIX,
    LAST_BATCH_SK,
    LAST_SEGMENT_SK,
    META_SK,
    PART_PREFIX,
    SEGMENT_PREFIX,
    Item,
    batch_sk,
    fence_record,
    head_of,
    is_fence,
    meta_item,
    segment_item,
    segment_of,
    segment_sk,
    utc_now,
)
from stratasync.storage.dynamodb_table import _ConditionFailed

#: What an operator's read of commit records needs (never the events).
RECORD_PROJECTION = "sk, #last, c, n, #at, z, seg, bid, fence, parts, ts"


@dataclass(frozen=True)
class ItemCounts:
    """A store's items by kind."""

    meta: int = 0
    #: Commit records, tombstones and fences (their sort keys look alike).
    records: int = 0
    parts: int = 0
    segments: int = 0
    other: int = 0

    @property
    def total(self) -> int:
        return self.meta + self.records + self.parts + self.segments + self.other


class DynamoDBAdmin:
    """An operator's access to the items of the table ``storage`` uses."""

    def __init__(self, storage: DynamoDBStorage) -> None:
        self.storage = storage
        self.table = storage.table

    # -- reading ---------------------------------------------------------------------------------

    def store_ids(self) -> Iterator[tuple[str, Item]]:
        """``(store id, meta item)`` of every store in the table (a Scan: it reads the whole
        table, so it costs read units for every item in it)."""
        kwargs: dict[str, Any] = {
            "FilterExpression": "sk = :meta",
            "ExpressionAttributeValues": {":meta": {"S": META_SK}},
            "ConsistentRead": True,
        }
        while True:
            page = self.table.call("scan", **kwargs)
            for item in page.get("Items", []):
                yield item["pk"]["S"], item
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def meta(self, store_id: str) -> Item | None:
        key = {"pk": {"S": store_id}, "sk": {"S": META_SK}}
        found: Item | None = self.table.call("get_item", Key=key, ConsistentRead=True).get("Item")
        return found

    def head_record(self, store_id: str) -> Item | None:
        """The newest commit record as it is (possibly a fence or a tombstone), or None."""
        return self.table.last_in_range(store_id, batch_sk(0), LAST_BATCH_SK)

    def records(self, store_id: str) -> Iterator[Item]:
        """Every commit record, tombstone and fence, ascending, without their events."""
        return self.table.key_range(store_id, batch_sk(0), LAST_BATCH_SK, projection=RECORD_PROJECTION)

    def segments(self, store_id: str) -> Iterator[SegmentInfo]:
        """The whole segment index, ascending."""
        return self.storage.segments(store_id, 0)  # every segment holds events after 0

    def sort_keys(self, store_id: str) -> Iterator[str]:
        """The sort key of every item of the store."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": store_id}},
            "ProjectionExpression": "sk",
            "ConsistentRead": True,
            "Limit": 1000,
        }
        while True:
            page = self.table.call("query", **kwargs)
            for item in page.get("Items", []):
                yield item["sk"]["S"]
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def count_items(self, store_id: str) -> ItemCounts:
        counts = dict.fromkeys(("meta", "records", "parts", "segments", "other"), 0)
        for key in self.sort_keys(store_id):
            counts[kind_of(key)] += 1
        return ItemCounts(**counts)

    # -- an operation's state in meta --------------------------------------------------------------

    def begin(self, store_id: str, state: str, backend_id: str, **extra: str) -> Item:
        """Set ``meta``'s ``state`` (unless it is set already: then what is there), so that no request
        is served any more and a re-run knows what is under way. ``backend_id``: the store's (the
        condition); a store without meta gets one with it."""
        meta = self.meta(store_id)
        if meta is not None and "state" in meta:
            return meta
        item = meta_item(store_id, backend_id, state=state, stateAt=utc_now(), step="begun", **extra)
        if meta is not None:
            item["createdAt"] = meta["createdAt"]
        try:
            self.table.call(
                "put_item",
                Item=item,
                ConditionExpression=(
                    "attribute_not_exists(sk) OR (backendId = :bid AND attribute_not_exists(#state))"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":bid": {"S": backend_id}},
            )
        except _ConditionFailed:
            raise StorageError(
                f"store {store_id!r}: its meta item changed under this operation (another operator?)"
            ) from None
        return item

    def set_step(self, store_id: str, step: str, **extra: str) -> None:
        """Record how far the operation under way got (and ``extra`` attributes)."""
        names = {"#step": "step", **{f"#{name}": name for name in extra}}
        values = {":step": {"S": step}, **{f":{name}": {"S": value} for name, value in extra.items()}}
        assignments = ", ".join(f"#{name} = :{name}" for name in ["step", *extra])
        try:
            self.table.call(
                "update_item",
                Key={"pk": {"S": store_id}, "sk": {"S": META_SK}},
                UpdateExpression=f"SET {assignments}",
                ConditionExpression="attribute_exists(#state)",
                ExpressionAttributeNames={**names, "#state": "state"},
                ExpressionAttributeValues=values,
            )
        except _ConditionFailed:
            raise StorageError(f"store {store_id!r}: no operation is under way in its meta item") from None

    def finish(self, store_id: str, state: str, backend_id: str, **extra: str) -> None:
        """End the operation: ``meta`` holds ``backend_id`` and no state (requests are served)."""
        meta = self.meta(store_id)
        item = meta_item(store_id, backend_id, **extra)
        if meta is not None and state != "reset":
            item["createdAt"] = meta.get("createdAt", item["createdAt"])
        try:
            self.table.call(
                "put_item",
                Item=item,
                ConditionExpression="#state = :state",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":state": {"S": state}},
            )
        except _ConditionFailed:
            raise StorageError(f"store {store_id!r}: no {state} is under way in its meta item") from None

    def delete_meta(self, store_id: str, state: str) -> None:
        """Delete ``meta`` at the end of an erase (only while ``state`` says so)."""
        try:
            self.table.call(
                "delete_item",
                Key={"pk": {"S": store_id}, "sk": {"S": META_SK}},
                ConditionExpression="attribute_not_exists(sk) OR #state = :state",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":state": {"S": state}},
            )
        except _ConditionFailed:
            raise StorageError(f"store {store_id!r}: its meta item changed under this {state}") from None

    # -- the fence -------------------------------------------------------------------------------

    def fence(self, store_id: str, reason: str, backend_id: str, *, at: LogHead | None = None) -> Item:
        """Put a fence at the head (or at ``at``: a restore's), or return the one there. A push
        that commits meanwhile moves the head: then the fence goes on the new head."""
        while True:
            head = self.head_record(store_id)
            if head is not None and is_fence(head):
                return head
            position = at
            if position is None:
                position = head_of(head) if head is not None else EMPTY_LOG
            item = fence_record(store_id, position, reason=reason, backend_id=backend_id, at=utc_now())
            item["ts"] = {"N": f"{time.time():.3f}"}
            if self.table.put_if_absent(item) is None:
                return item

    def unfence(self, store_id: str) -> None:
        """Delete the fence, if there is one."""
        head = self.head_record(store_id)
        if head is not None and is_fence(head):
            self.table.call("delete_item", Key={"pk": {"S": store_id}, "sk": head["sk"]})

    # -- erasing and restoring ----------------------------------------------------------------------

    def delete_keys(self, store_id: str, sort_keys: list[str]) -> None:
        self.table.delete_keys(store_id, sort_keys)

    def put_segment(self, store_id: str, segment: SegmentInfo, backend_id: str) -> SegmentInfo | None:
        """Index ``segment`` unless one is indexed at its parent; returns what was there (None: ours)."""
        existing = self.table.put_if_absent(segment_item(store_id, segment, backend_id))
        return segment_of(existing) if existing is not None else None

    def put_restored_records(self, store_id: str, segments: list[SegmentInfo], backend_id: str) -> None:
        """One tombstone per segment: the commit chain up to the last sealed seqNum (BatchWriteItem
        puts, idempotent)."""
        self.table.batch_write(
            [{"PutRequest": {"Item": restored_record(store_id, segment, backend_id)}} for segment in segments]
        )


def restored_record(store_id: str, segment: SegmentInfo, backend_id: str) -> dict[str, Any]:
    """The tombstone a restore writes for a whole segment (the batches inside it are not known any
    more: a segment keeps events, not batch boundaries)."""
    return {
        "pk": {"S": store_id},
        "sk": {"S": batch_sk(segment.parent_seq_num)},
        "last": {"N": str(segment.last_seq_num)},
        "c": {"N": str(segment.last_position)},
        "at": {"S": segment.sealed_at},
        "dg": {"S": f"restored:{segment.sha256}"},
        "seg": {"N": str(segment.parent_seq_num)},
        "bid": {"S": backend_id},
    }


def kind_of(sort_key: str) -> str:
    """Which :class:`ItemCounts` field an item with this sort key counts in."""
    if sort_key == META_SK:
        return "meta"
    if sort_key.startswith(BATCH_PREFIX):
        return "records"
    if sort_key.startswith(PART_PREFIX):
        return "parts"
    if sort_key.startswith(SEGMENT_PREFIX) and sort_key <= LAST_SEGMENT_SK:
        return "segments"
    return "other"


__all__ = ["DynamoDBAdmin", "ItemCounts", "kind_of", "restored_record", "segment_sk"]
