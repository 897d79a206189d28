"""The DynamoDB adapter of :class:`EventStore` (single-table design, no transactions).

Per store (partition key ``pk`` = store id), items by sort key ``sk``:

* ``meta`` - the store's ``backendId``, created by a conditional put on first use.
* ``b#<parent, 16 digits>`` - one *commit record* per pushed batch, keyed by the batch's parent
  seqNum: its last seqNum, event count, position (``c``: events in the store through this batch),
  commit time, digest, push id, and the events themselves (zlib-compressed ``"<seqNum> <json>"``
  lines) when they fit in ``inline_bytes`` (3.5 KB), so that a commit record is always read for
  one read unit. The key IS the concurrency control: a batch is committed by a put conditioned
  on ``attribute_not_exists(sk)``, and because the head only moves past ``p`` by writing ``b#p``
  and **no commit record is ever deleted** (the commit invariant, :mod:`stratasync.storage.base`),
  a writer that saw ``p`` as the head and then wins that put was right, however late the put
  arrives. Of several pushes on one parent exactly one wins, and the losers learn the winner's last
  seqNum from ``ReturnValuesOnConditionCheckFailure=ALL_OLD``, with no extra read; a writer whose
  own put was applied but whose answer was lost recognises its push id there on the retry.
* A *tombstone* is what a commit record becomes when its batch is archived: the same key with its
  last seqNum, position, commit time and digest, and ``seg`` (the parent of the segment that holds
  the events), but no events and no parts. About 150 bytes, kept for good.
* ``a#<parent, 16 digits>`` - the *segment index*: one item per archived segment (a run of whole
  batches sealed into one object in the segment store, see :mod:`stratasync.storage.segments`),
  keyed by the parent of its first batch like commit records, with its last seqNum, position,
  counts, object key and SHA-256. Written by a conditional put only after the object is stored
  and verified, and before the segment's batches are retired (their parts deleted, then their
  commit records replaced by tombstones), so the head never leaves DynamoDB.
* ``p#<parent>#<push id>#<k>`` - the compressed events of a larger batch, in parts of at most
  ``part_bytes`` (350 KB, under the 400 KB item limit; batches reach 900 KB). They are written
  *before* the commit record that names them, so a reader finds either no commit record (nothing
  visible) or one whose parts all exist. A writer that loses the race deletes its parts; a
  writer that crashes leaves parts that no commit record names, which no reader ever sees.

Every DynamoDB call goes through :meth:`DynamoDBEventStore._call`, where throttling and
transient errors are retried with jittered backoff inside a time budget and driver errors
become the storage layer's own.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
import zlib
from collections.abc import Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from stratasync.storage.base import (
    EMPTY_LOG,
    AppendOutcome,
    ArchiveGap,
    EventBatch,
    EventStore,
    HeadMismatchError,
    LogHead,
    SegmentInfo,
    StorageError,
    StorageUnavailableError,
    StoredBatch,
    decode_lines,
)
from stratasync.storage.retry import TransientFault, within_budget

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

META_SK = "meta"
BATCH_PREFIX = "b#"
PART_PREFIX = "p#"
SEGMENT_PREFIX = "a#"
_SEQ_DIGITS = 16
_LAST_BATCH_SK = BATCH_PREFIX + "9" * _SEQ_DIGITS
_LAST_SEGMENT_SK = SEGMENT_PREFIX + "9" * _SEQ_DIGITS
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


def segment_sk(parent_seq_num: int) -> str:
    """Sort key of the index item of the archived segment whose parent is ``parent_seq_num``."""
    return f"{SEGMENT_PREFIX}{parent_seq_num:0{_SEQ_DIGITS}d}"


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

        ``ConditionalCheckFailedException`` becomes :class:`_ConditionFailed` with the item that is
        there (the callers' concurrency signal); anything else that is not retryable becomes
        :class:`StorageError`.
        """
        method = getattr(self._client, operation)
        if operation not in ("batch_get_item", "batch_write_item"):
            kwargs.setdefault("TableName", self.table_name)

        def attempt() -> dict[str, Any]:
            try:
                result: dict[str, Any] = method(**kwargs)
                return result
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code == "ConditionalCheckFailedException":
                    raise _ConditionFailed(error.response.get("Item", {})) from error  # type: ignore[arg-type]
                if code not in RETRYABLE_ERROR_CODES:
                    raise StorageError(f"DynamoDB {operation} failed: {code}: {error}") from error
                raise TransientFault(error) from error
            except BotoCoreError as error:  # connection refused/reset, timeouts
                raise TransientFault(error) from error

        return within_budget(attempt, budget_seconds=self.time_budget_seconds, what=f"DynamoDB {operation}")

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
            item = {**key, "backendId": {"S": candidate}, "createdAt": {"S": _now_iso()}}
            existing = self._put_if_absent(item)  # a concurrent first request may have created it first
            backend_id = str(existing["backendId"]["S"]) if existing is not None else candidate
        with self._backend_ids_lock:
            self._backend_ids[store_id] = backend_id
        return backend_id

    def log_head(self, store_id: str) -> LogHead:
        item = self._last_batch_at_or_before(store_id, None)
        return _head_of(item) if item is not None else EMPTY_LOG

    def append(self, store_id: str, batch: EventBatch) -> AppendOutcome:
        parent = batch.parent_seq_num
        head_item = self._last_batch_at_or_before(store_id, None)
        head = _head_of(head_item) if head_item is not None else EMPTY_LOG
        if parent != head.seq_num:
            if parent < head.seq_num and self._committed_digest(store_id, parent) == batch.digest:
                return AppendOutcome.ALREADY_COMMITTED
            raise HeadMismatchError(head=head.seq_num, parent=parent)

        data = zlib.compress(batch.encode_lines(), self.compression_level)
        push_id = uuid.uuid4().hex[:12]
        item: dict[str, Any] = {
            "pk": {"S": store_id},
            "sk": {"S": batch_sk(parent)},
            "last": {"N": str(batch.last_seq_num)},
            "n": {"N": str(len(batch.events))},
            "c": {"N": str(head.events + len(batch.events))},
            "at": {"S": batch.created_at},
            "dg": {"S": batch.digest},
            "pid": {"S": push_id},
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
            item["parts"] = {"N": str(len(part_keys))}
        winner = self._put_if_absent(item)
        if winner is None:
            return AppendOutcome.COMMITTED
        if winner.get("pid", {}).get("S") == push_id:
            # Our own put: it was applied, its answer was lost, and the retry met it. Our parts are its.
            return AppendOutcome.COMMITTED
        self._delete_keys(store_id, part_keys)  # another push won this parent: our parts are unreachable
        if winner.get("dg", {}).get("S") == batch.digest:
            return AppendOutcome.ALREADY_COMMITTED
        winner_head = self.head(store_id) if _is_retired(winner) else int(winner["last"]["N"])
        raise HeadMismatchError(head=winner_head, parent=parent)

    # -- the hot tier and the segment index --------------------------------------------------

    def read_hot(self, store_id: str, after: int) -> Iterator[StoredBatch | ArchiveGap]:
        # The batch holding the first event after the cursor has the largest parent <= after.
        # Commit records are never deleted, so for a store that has events this always finds one.
        first = self._last_batch_at_or_before(store_id, after)
        if first is None or int(first["last"]["N"]) <= after:
            return  # an empty store, or the cursor is at (or past) the head
        if _is_retired(first):
            yield ArchiveGap(self._archived_through(store_id))
            return
        rest = self._query_batches(store_id, batch_sk(int(first["last"]["N"])))
        yield from self._contiguous_batches(store_id, itertools.chain([first], rest), after)

    def hot_batches(self, store_id: str, from_parent: int) -> Iterator[StoredBatch]:
        items = itertools.dropwhile(_is_retired, self._query_batches(store_id, batch_sk(from_parent)))
        live = itertools.takewhile(lambda item: not _is_retired(item), items)  # retired meanwhile: stop
        group: list[Item] = []
        group_bytes = 0
        for item in itertools.chain(live, [None]):
            if item is not None:
                group.append(item)
                group_bytes += int(item["z"]["N"])
                if group_bytes < _PART_FETCH_BYTES:
                    continue
            for batch in self._batches_of(store_id, group):
                if isinstance(batch, ArchiveGap):
                    return  # its parts are gone: retired meanwhile
                yield batch
            group, group_bytes = [], 0

    def retire_archived(self, store_id: str, segment: SegmentInfo) -> int:
        if self.head(store_id) <= segment.last_seq_num:
            raise StorageError(f"store {store_id!r}: refusing to archive the newest batch")
        records = self._key_range(
            store_id,
            batch_sk(segment.parent_seq_num),
            batch_sk(segment.last_seq_num - 1),
            projection="sk, #last, c, #at, dg, pid, parts, seg",
        )
        retired = 0
        chunk: list[Item] = []
        for item in itertools.chain(records, [None]):
            if item is not None and not _is_retired(item):
                chunk.append(item)
            if chunk and (item is None or len(chunk) == 25):
                retired += self._retire_chunk(store_id, chunk, segment)
                chunk = []
        return retired

    def put_segment(self, store_id: str, segment: SegmentInfo) -> SegmentInfo:
        item = {
            "pk": {"S": store_id},
            "sk": {"S": segment_sk(segment.parent_seq_num)},
            "first": {"N": str(segment.first_seq_num)},
            "last": {"N": str(segment.last_seq_num)},
            "c": {"N": str(segment.last_position)},
            "n": {"N": str(segment.events)},
            "raw": {"N": str(segment.raw_bytes)},
            "z": {"N": str(segment.size)},
            "sha": {"S": segment.sha256},
            "key": {"S": segment.key},
            "at": {"S": segment.sealed_at},
        }
        existing = self._put_if_absent(item)
        return _segment_of(existing) if existing is not None else segment

    def segments(self, store_id: str, after: int) -> Iterator[SegmentInfo]:
        probe = self._last_in_range(store_id, segment_sk(0), segment_sk(after))
        if probe is None:
            return
        first = _segment_of(probe)
        if first.last_seq_num <= after:
            return  # segments chain by parent: none starts later than this one ends
        yield first
        for item in self._key_range(store_id, segment_sk(first.last_seq_num), _LAST_SEGMENT_SK):
            yield _segment_of(item)

    def last_segment(self, store_id: str) -> SegmentInfo | None:
        item = self._last_in_range(store_id, segment_sk(0), _LAST_SEGMENT_SK)
        return _segment_of(item) if item is not None else None

    # -- helpers ---------------------------------------------------------------------------

    def _put_if_absent(self, item: dict[str, Any]) -> Item | None:
        """Put ``item`` unless its key exists: None if it was written, else the item already there
        (from ``ReturnValuesOnConditionCheckFailure``, so no extra read)."""
        try:
            self._call(
                "put_item",
                Item=item,
                ConditionExpression="attribute_not_exists(sk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _ConditionFailed as failed:
            return failed.item
        return None

    def _key_range(
        self,
        store_id: str,
        lower: str,
        upper: str,
        *,
        reverse: bool = False,
        limit: int | None = None,
        projection: str | None = None,
    ) -> Iterator[Item]:
        """Items with ``lower <= sk <= upper``, strongly consistent, page by page (ascending unless
        ``reverse``) until DynamoDB has no more (real DynamoDB may end with an empty page) or
        ``limit`` items came."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {":pk": {"S": store_id}, ":lo": {"S": lower}, ":hi": {"S": upper}},
            "ConsistentRead": True,
            "ScanIndexForward": not reverse,
            "Limit": min(limit, self.page_items) if limit is not None else self.page_items,
        }
        if projection is not None:
            kwargs["ProjectionExpression"] = projection
            kwargs["ExpressionAttributeNames"] = {
                name: name[1:] for name in ("#last", "#at") if name in projection
            }
        remaining = limit
        while True:
            page = self._call("query", **kwargs)
            for item in page.get("Items", []):
                yield item
                if remaining is not None:
                    remaining -= 1
                    if remaining == 0:
                        return
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _last_in_range(self, store_id: str, lower: str, upper: str) -> Item | None:
        """The item with the largest sort key in ``[lower, upper]`` (one reverse query, Limit 1)."""
        return next(self._key_range(store_id, lower, upper, reverse=True, limit=1), None)

    def _last_batch_at_or_before(self, store_id: str, seq_num: int | None) -> Item | None:
        upper = _LAST_BATCH_SK if seq_num is None else batch_sk(seq_num)
        return self._last_in_range(store_id, batch_sk(0), upper)

    def _committed_digest(self, store_id: str, parent: int) -> str | None:
        found = self._call(
            "get_item",
            Key={"pk": {"S": store_id}, "sk": {"S": batch_sk(parent)}},
            ConsistentRead=True,
            ProjectionExpression="dg",
        ).get("Item")
        return found["dg"]["S"] if found is not None else None

    def _query_batches(self, store_id: str, lower: str) -> Iterator[Item]:
        """Commit records from sort key ``lower`` on, ascending."""
        return self._key_range(store_id, lower, _LAST_BATCH_SK)

    def _archived_through(self, store_id: str) -> int:
        """How far the segment index reaches (a retired batch is always covered by it)."""
        newest = self.last_segment(store_id)
        if newest is None:
            raise StorageError(f"store {store_id!r}: a batch is retired but no segment is indexed")
        return newest.last_seq_num

    def _contiguous_batches(
        self, store_id: str, items: Iterator[Item], after: int
    ) -> Iterator[StoredBatch | ArchiveGap]:
        """Batches of consecutive live commit records, fetching parts in groups, until a retired
        one (the archiver caught up with this read: :class:`ArchiveGap`) or the head."""
        expected = after
        group: list[Item] = []
        group_bytes = 0
        for item in items:
            if _is_retired(item):
                if not (yield from self._batches_of(store_id, group)):
                    yield ArchiveGap(self._archived_through(store_id))
                return
            if _parent_of(item) > expected:
                raise StorageError(
                    f"store {store_id!r}: the commit chain has a hole after {expected} "
                    f"(next record at {_parent_of(item)})"
                )
            group.append(item)
            group_bytes += int(item["z"]["N"])
            expected = int(item["last"]["N"])
            if group_bytes >= _PART_FETCH_BYTES:
                if (yield from self._batches_of(store_id, group)):
                    return
                group, group_bytes = [], 0
        yield from self._batches_of(store_id, group)

    def _batches_of(
        self, store_id: str, items: list[Item]
    ) -> Generator[StoredBatch | ArchiveGap, None, bool]:
        """The batches of consecutive live commit records, their parts fetched in one batched read.

        A batch whose parts are gone was retired while we read it (the archiver deletes parts
        before it writes the tombstone): that ends the batches with :class:`ArchiveGap` and
        returns True.
        """
        wanted = [key for item in items for key in _part_keys(item)]
        parts = self._get_parts(store_id, wanted) if wanted else {}
        for item in items:
            if "parts" in item:
                keys = _part_keys(item)
                if any(key not in parts for key in keys):
                    yield ArchiveGap(int(item["last"]["N"]))
                    return True
                data = b"".join(parts.pop(key) for key in keys)
            else:
                data = item["d"]["B"]
            yield StoredBatch(
                parent_seq_num=_parent_of(item),
                last_seq_num=int(item["last"]["N"]),
                created_at=item["at"]["S"],
                events=decode_lines(zlib.decompress(data), item["at"]["S"], int(item["c"]["N"])),
            )
        return False

    def _retire_chunk(self, store_id: str, items: list[Item], segment: SegmentInfo) -> int:
        """Delete the parts of these commit records (they are invisible without them), then replace
        the records by tombstones (BatchWriteItem puts: each one is idempotent)."""
        self._delete_keys(store_id, [key for item in items for key in _part_keys(item)])
        tombstones = [
            {
                "pk": {"S": store_id},
                "sk": item["sk"],
                "last": item["last"],
                "c": item["c"],
                "at": item["at"],
                "dg": item["dg"],
                "seg": {"N": str(segment.parent_seq_num)},
            }
            for item in items
        ]
        self._batch_write([{"PutRequest": {"Item": tombstone}} for tombstone in tombstones])
        return len(items)

    def _delete_keys(self, store_id: str, sort_keys: list[str]) -> None:
        """BatchWriteItem deletes of these sort keys."""
        self._batch_write(
            [{"DeleteRequest": {"Key": {"pk": {"S": store_id}, "sk": {"S": key}}}} for key in sort_keys]
        )

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        """BatchWriteItem requests (25 a call, unprocessed ones retried within the time budget)."""
        pending = list(requests)
        deadline = time.monotonic() + self.time_budget_seconds
        while pending:
            request, pending = pending[:25], pending[25:]
            response = self._call("batch_write_item", RequestItems={self.table_name: request})
            unprocessed = response.get("UnprocessedItems", {}).get(self.table_name, [])
            if unprocessed:
                if time.monotonic() >= deadline:
                    raise StorageUnavailableError(f"BatchWriteItem left {len(unprocessed)} writes undone")
                time.sleep(random.uniform(0, 0.05))
                pending = list(unprocessed) + pending

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


class _ConditionFailed(Exception):  # noqa: N818 - a signal inside the adapter, never seen outside
    """A conditional write found its condition false; ``item``: what is there (``ALL_OLD``)."""

    def __init__(self, item: Item) -> None:
        super().__init__("conditional check failed")
        self.item = item


def _parent_of(item: Item) -> int:
    return int(item["sk"]["S"][len(BATCH_PREFIX) :])


def _is_retired(item: Item) -> bool:
    """True for the tombstone of an archived batch."""
    return "seg" in item


def _head_of(item: Item) -> LogHead:
    return LogHead(int(item["last"]["N"]), int(item["c"]["N"]))


def _part_keys(item: Item) -> list[str]:
    """The sort keys of a commit record's parts (none for an inline batch or a tombstone)."""
    if "parts" not in item:
        return []
    return [_part_sk(_parent_of(item), item["pid"]["S"], index) for index in range(int(item["parts"]["N"]))]


def _segment_of(item: Item) -> SegmentInfo:
    return SegmentInfo(
        parent_seq_num=int(item["sk"]["S"][len(SEGMENT_PREFIX) :]),
        first_seq_num=int(item["first"]["N"]),
        last_seq_num=int(item["last"]["N"]),
        events=int(item["n"]["N"]),
        raw_bytes=int(item["raw"]["N"]),
        size=int(item["z"]["N"]),
        sha256=item["sha"]["S"],
        key=item["key"]["S"],
        sealed_at=item["at"]["S"],
        last_position=int(item["c"]["N"]),
    )


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
