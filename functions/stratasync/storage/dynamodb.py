"""The DynamoDB adapter of :class:`EventStore` (single-table design, no transactions).

Per store (partition key ``pk`` = store id), items by sort key ``sk``:

* ``meta`` - the store's ``backendId``, created by a conditional put on first use.
* ``b#<parent, 16 digits>`` - one *commit item* per pushed batch, keyed by the batch's parent
  seqNum: its last seqNum, event count, commit time, digest, and the events themselves
  (zlib-compressed ``"<seqNum> <json>"`` lines) when they fit in ``inline_bytes`` (3.5 KB), so
  that a commit item is always read for one read unit. The key IS the concurrency control: a
  batch is committed by a put conditioned on ``attribute_not_exists(sk)``, and because the head
  only moves past ``p`` by writing ``b#p``, a writer that saw ``p`` as the head and then wins
  that put was right. Of several pushes on one parent exactly one wins, and the losers learn the
  winner's last seqNum from ``ReturnValuesOnConditionCheckFailure=ALL_OLD``, with no extra read.
* ``p#<parent>#<push id>#<k>`` - the compressed events of a larger batch, in parts of at most
  ``part_bytes`` (350 KB, under the 400 KB item limit; batches reach 900 KB). They are written
  *before* the commit item that names them, so a reader finds either no commit item (nothing
  visible) or one whose parts all exist. A writer that loses the race deletes its parts; a
  writer that crashes leaves parts that no commit item names, which no reader ever sees.

Every DynamoDB call goes through :meth:`DynamoDBEventStore._call`, where throttling and
transient errors are retried with jittered backoff inside a time budget and driver errors
become the storage layer's own.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
import zlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from stratasync.storage.base import (
    AppendOutcome,
    EventBatch,
    EventStore,
    HeadMismatchError,
    StorageError,
    StorageUnavailableError,
    StoredEvent,
    decode_lines,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

META_SK = "meta"
BATCH_PREFIX = "b#"
PART_PREFIX = "p#"
_SEQ_DIGITS = 16
_LAST_BATCH_SK = BATCH_PREFIX + "9" * _SEQ_DIGITS
#: Fetch the parts of consecutive large batches together until about this many compressed bytes.
_PART_FETCH_BYTES = 1_000_000

#: Error codes worth retrying: throttling and transient service faults.
RETRYABLE_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)

Item = Mapping[str, Any]


def batch_sk(parent_seq_num: int) -> str:
    """Sort key of the commit item of the batch whose parent is ``parent_seq_num``."""
    return f"{BATCH_PREFIX}{parent_seq_num:0{_SEQ_DIGITS}d}"


def _part_sk(parent_seq_num: int, push_id: str, index: int) -> str:
    return f"{PART_PREFIX}{parent_seq_num:0{_SEQ_DIGITS}d}#{push_id}#{index}"


def make_client(endpoint_url: str | None = None, region_name: str | None = None) -> DynamoDBClient:
    """A DynamoDB client with botocore's own retries off (the adapter retries within a budget)."""
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=3,
        read_timeout=10,
        tcp_keepalive=True,
    )
    return boto3.client("dynamodb", endpoint_url=endpoint_url, region_name=region_name, config=config)


def create_table(client: DynamoDBClient, table_name: str) -> None:
    """Create the eventlog table (on-demand) if it does not exist, and wait until it is active."""
    try:
        client.create_table(
            TableName=table_name,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceInUseException":
            raise
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


class DynamoDBEventStore(EventStore):
    """Eventlogs in one DynamoDB table; see the module docstring for the item layout."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | None = None,
        *,
        time_budget_seconds: float = 5.0,
        part_bytes: int = 350_000,
        inline_bytes: int = 3_500,
        compression_level: int = 1,
        page_items: int = 100,
    ) -> None:
        self.table_name = table_name
        self._client = client if client is not None else make_client()
        self.time_budget_seconds = time_budget_seconds
        self.part_bytes = part_bytes
        self.inline_bytes = inline_bytes
        self.compression_level = compression_level
        self.page_items = page_items
        # A backend id never changes once created, so a warm process may keep it.
        self._backend_ids: dict[str, str] = {}
        self._backend_ids_lock = threading.Lock()

    # -- the one choke point ---------------------------------------------------------------

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Call one DynamoDB operation, retrying throttling and transient errors within the budget.

        ``ConditionalCheckFailedException`` is re-raised as is (the callers' concurrency signal);
        anything else that is not retryable becomes :class:`StorageError`.
        """
        deadline = time.monotonic() + self.time_budget_seconds
        method = getattr(self._client, operation)
        attempt = 0
        while True:
            try:
                if operation != "batch_get_item":
                    kwargs.setdefault("TableName", self.table_name)
                result: dict[str, Any] = method(**kwargs)
                return result
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code == "ConditionalCheckFailedException":
                    raise
                if code not in RETRYABLE_ERROR_CODES:
                    raise StorageError(f"DynamoDB {operation} failed: {code}: {error}") from error
                last_error: Exception = error
            except BotoCoreError as error:  # connection refused/reset, timeouts
                last_error = error
            attempt += 1
            delay = random.uniform(0, min(1.0, 0.025 * 2**attempt))
            if time.monotonic() + delay >= deadline:
                raise StorageUnavailableError(
                    f"DynamoDB {operation} still failing after {attempt} attempts "
                    f"({self.time_budget_seconds:g} s budget): {last_error}"
                ) from last_error
            time.sleep(delay)

    # -- EventStore ------------------------------------------------------------------------

    def backend_id(self, store_id: str) -> str:
        cached = self._backend_ids.get(store_id)
        if cached is not None:
            return cached
        key = {"pk": {"S": store_id}, "sk": {"S": META_SK}}
        found = self._call("get_item", Key=key, ConsistentRead=True).get("Item")
        if found is not None:
            backend_id = str(found["backendId"]["S"])
        else:
            candidate = uuid.uuid4().hex
            try:
                self._call(
                    "put_item",
                    Item={**key, "backendId": {"S": candidate}, "createdAt": {"S": _now_iso()}},
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                backend_id = candidate
            except ClientError as error:  # a concurrent first request created it first
                backend_id = error.response["Item"]["backendId"]["S"]  # type: ignore[typeddict-item]
        with self._backend_ids_lock:
            self._backend_ids[store_id] = backend_id
        return backend_id

    def head(self, store_id: str) -> int:
        item = self._last_batch_at_or_before(store_id, None)
        return int(item["last"]["N"]) if item is not None else 0

    def append(self, store_id: str, batch: EventBatch) -> AppendOutcome:
        parent = batch.parent_seq_num
        head = self.head(store_id)
        if parent != head:
            if parent < head and self._committed_digest(store_id, parent) == batch.digest:
                return AppendOutcome.ALREADY_COMMITTED
            raise HeadMismatchError(head=head, parent=parent)

        data = zlib.compress(batch.encode_lines(), self.compression_level)
        push_id = uuid.uuid4().hex[:12]
        item: dict[str, Any] = {
            "pk": {"S": store_id},
            "sk": {"S": batch_sk(parent)},
            "last": {"N": str(batch.last_seq_num)},
            "n": {"N": str(len(batch.events))},
            "at": {"S": batch.created_at},
            "dg": {"S": batch.digest},
            "z": {"N": str(len(data))},
        }
        part_keys: list[str] = []
        if len(data) <= self.inline_bytes:
            item["d"] = {"B": data}
        else:
            for index, offset in enumerate(range(0, len(data), self.part_bytes)):
                part_keys.append(_part_sk(parent, push_id, index))
                part = data[offset : offset + self.part_bytes]
                self._call(
                    "put_item", Item={"pk": {"S": store_id}, "sk": {"S": part_keys[-1]}, "d": {"B": part}}
                )
            item["pid"] = {"S": push_id}
            item["parts"] = {"N": str(len(part_keys))}
        try:
            self._call(
                "put_item",
                Item=item,
                ConditionExpression="attribute_not_exists(sk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            for part_key in part_keys:  # our parts are unreachable now: tidy them up
                self._call("delete_item", Key={"pk": {"S": store_id}, "sk": {"S": part_key}})
            winner: Item = error.response.get("Item", {})  # type: ignore[assignment]
            if winner.get("dg", {}).get("S") == batch.digest:
                return AppendOutcome.ALREADY_COMMITTED
            winner_last = int(winner["last"]["N"]) if "last" in winner else head
            raise HeadMismatchError(head=winner_last, parent=parent) from None
        return AppendOutcome.COMMITTED

    def read(self, store_id: str, after: int) -> Iterator[StoredEvent]:
        lower = batch_sk(0)
        if after > 0:
            # The batch holding the first event after the cursor has the largest parent <= after.
            first = self._last_batch_at_or_before(store_id, after)
            if first is None or int(first["last"]["N"]) <= after:
                return  # the cursor is at (or past) the head
            yield from self._events_of(store_id, [first], after)
            lower = batch_sk(int(first["last"]["N"]))
        start_key: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {
                "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
                "ExpressionAttributeValues": {
                    ":pk": {"S": store_id},
                    ":lo": {"S": lower},
                    ":hi": {"S": _LAST_BATCH_SK},
                },
                "ConsistentRead": True,
                "Limit": self.page_items,
            }
            if start_key is not None:
                kwargs["ExclusiveStartKey"] = start_key
            page = self._call("query", **kwargs)
            group: list[Item] = []
            group_bytes = 0
            for item in page.get("Items", []):
                group.append(item)
                group_bytes += int(item["z"]["N"])
                if group_bytes >= _PART_FETCH_BYTES:
                    yield from self._events_of(store_id, group, after)
                    group, group_bytes = [], 0
            yield from self._events_of(store_id, group, after)
            start_key = page.get("LastEvaluatedKey")
            if start_key is None:  # real DynamoDB may end with an empty page: keep going until then
                return

    # -- helpers ---------------------------------------------------------------------------

    def _last_batch_at_or_before(self, store_id: str, seq_num: int | None) -> Item | None:
        upper = _LAST_BATCH_SK if seq_num is None else batch_sk(seq_num)
        page = self._call(
            "query",
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":pk": {"S": store_id},
                ":lo": {"S": batch_sk(0)},
                ":hi": {"S": upper},
            },
            ScanIndexForward=False,
            ConsistentRead=True,
            Limit=1,
        )
        items = page.get("Items", [])
        return items[0] if items else None

    def _committed_digest(self, store_id: str, parent: int) -> str | None:
        found = self._call(
            "get_item",
            Key={"pk": {"S": store_id}, "sk": {"S": batch_sk(parent)}},
            ConsistentRead=True,
            ProjectionExpression="dg",
        ).get("Item")
        return found["dg"]["S"] if found is not None else None

    def _events_of(self, store_id: str, items: list[Item], after: int) -> Iterator[StoredEvent]:
        """The events of consecutive commit items, fetching their parts in one batched read."""
        wanted = [
            _part_sk(int(item["sk"]["S"][len(BATCH_PREFIX) :]), item["pid"]["S"], index)
            for item in items
            if "parts" in item
            for index in range(int(item["parts"]["N"]))
        ]
        parts = self._get_parts(store_id, wanted) if wanted else {}
        for item in items:
            if "parts" in item:
                parent = int(item["sk"]["S"][len(BATCH_PREFIX) :])
                keys = [_part_sk(parent, item["pid"]["S"], index) for index in range(int(item["parts"]["N"]))]
                missing = [key for key in keys if key not in parts]
                if missing:
                    raise StorageError(f"store {store_id!r}: batch at {parent} misses parts {missing}")
                data = b"".join(parts.pop(key) for key in keys)
            else:
                data = item["d"]["B"]
            for event in decode_lines(zlib.decompress(data), item["at"]["S"]):
                if event.seq_num > after:
                    yield event

    def _get_parts(self, store_id: str, part_keys: list[str]) -> dict[str, bytes]:
        """Part items by sort key, read with BatchGetItem (100 keys a call, unprocessed keys retried)."""
        found: dict[str, bytes] = {}
        pending = [{"pk": {"S": store_id}, "sk": {"S": key}} for key in part_keys]
        deadline = time.monotonic() + self.time_budget_seconds
        while pending:
            request, pending = pending[:100], pending[100:]
            response = self._call(
                "batch_get_item", RequestItems={self.table_name: {"Keys": request, "ConsistentRead": True}}
            )
            for item in response.get("Responses", {}).get(self.table_name, []):
                found[item["sk"]["S"]] = item["d"]["B"]
            unprocessed = response.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
            if unprocessed:
                if time.monotonic() >= deadline:
                    raise StorageUnavailableError(f"BatchGetItem left {len(unprocessed)} keys unprocessed")
                time.sleep(random.uniform(0, 0.05))
                pending = list(unprocessed) + pending
        return found


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
