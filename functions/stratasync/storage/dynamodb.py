"""The DynamoDB adapter of :class:`HotTierStorage` (single-table design, no transactions).

The item layout, and why the commit record's key is the concurrency control, is in
:mod:`stratasync.storage.dynamodb_items`. Every DynamoDB call goes through
:meth:`DynamoDBStorage._call` (:mod:`stratasync.storage.aws`), where throttling and transient
errors are retried within a time budget and driver errors become the storage layer's own.
"""

from __future__ import annotations

import itertools
import threading
import uuid
import zlib
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

from stratasync.storage.base import (
    EMPTY_LOG,
    AppendOutcome,
    ArchiveGap,
    EventBatch,
    HeadMismatchError,
    HotTierStorage,
    LogHead,
    SegmentInfo,
    StorageError,
    StoredBatch,
)
from stratasync.storage.dynamodb_items import (
    LAST_BATCH_SK,
    LAST_SEGMENT_SK,
    META_SK,
    RETIRE_PROJECTION,
    Item,
    batch_sk,
    commit_record,
    head_of,
    is_retired,
    meta_item,
    parent_of,
    part_item,
    part_keys,
    part_sk,
    segment_item,
    segment_of,
    segment_sk,
    stored_batch,
    tombstone,
)
from stratasync.storage.dynamodb_table import DynamoDBTable, create_table, make_client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: Fetch the parts of consecutive large batches together until about this many compressed bytes.
_PART_FETCH_BYTES = 1_000_000


class DynamoDBStorage(HotTierStorage):
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
        self.table = DynamoDBTable(
            table_name,
            client if client is not None else make_client(),
            time_budget_seconds=time_budget_seconds,
            page_items=page_items,
        )
        self.part_bytes = part_bytes
        self.inline_bytes = inline_bytes
        self.compression_level = compression_level
        # A backend id never changes once created, so a warm process may keep it.
        self._backend_ids: dict[str, str] = {}
        self._backend_ids_lock = threading.Lock()

    # -- EventLogStorage ------------------------------------------------------------------------

    def backend_id(self, store_id: str) -> str:
        cached = self._backend_ids.get(store_id)
        if cached is not None:
            return cached
        key = {"pk": {"S": store_id}, "sk": {"S": META_SK}}
        found = self.table.call("get_item", Key=key, ConsistentRead=True).get("Item")
        if found is not None:
            backend_id = str(found["backendId"]["S"])
        else:
            candidate = uuid.uuid4().hex
            existing = self.table.put_if_absent(
                meta_item(store_id, candidate)
            )  # a concurrent first request may have created it first
            backend_id = str(existing["backendId"]["S"]) if existing is not None else candidate
        with self._backend_ids_lock:
            self._backend_ids[store_id] = backend_id
        return backend_id

    def log_head(self, store_id: str) -> LogHead:
        item = self._last_batch_at_or_before(store_id, None)
        return head_of(item) if item is not None else EMPTY_LOG

    def append(self, store_id: str, batch: EventBatch) -> AppendOutcome:
        parent = batch.parent_seq_num
        head_item = self._last_batch_at_or_before(store_id, None)
        head = head_of(head_item) if head_item is not None else EMPTY_LOG
        if parent != head.seq_num:
            if parent < head.seq_num and self._committed_digest(store_id, parent) == batch.digest:
                return AppendOutcome.ALREADY_COMMITTED
            raise HeadMismatchError(head=head.seq_num, parent=parent)

        data = zlib.compress(batch.encode_lines(), self.compression_level)
        push_id = uuid.uuid4().hex[:12]
        inline = len(data) <= self.inline_bytes
        parts: list[str] = []
        if not inline:  # the parts first: a commit record always names parts that exist
            for index, offset in enumerate(range(0, len(data), self.part_bytes)):
                parts.append(part_sk(parent, push_id, index))
                self.table.call(
                    "put_item", Item=part_item(store_id, parts[-1], data[offset : offset + self.part_bytes])
                )
        item = commit_record(
            store_id,
            batch,
            position=head.events + len(batch.events),
            push_id=push_id,
            data=data,
            inline=inline,
            parts=len(parts),
        )
        winner = self.table.put_if_absent(item)
        if winner is None:
            return AppendOutcome.COMMITTED
        if winner.get("pid", {}).get("S") == push_id:
            # Our own put: it was applied, its answer was lost, and the retry met it. Our parts are its.
            return AppendOutcome.COMMITTED
        self.table.delete_keys(store_id, parts)  # another push won this parent: our parts are unreachable
        if winner.get("dg", {}).get("S") == batch.digest:
            return AppendOutcome.ALREADY_COMMITTED
        winner_head = self.head(store_id) if is_retired(winner) else int(winner["last"]["N"])
        raise HeadMismatchError(head=winner_head, parent=parent)

    # -- the hot tier and the segment index --------------------------------------------------

    def read_hot(self, store_id: str, after: int) -> Iterator[StoredBatch | ArchiveGap]:
        # The batch holding the first event after the cursor has the largest parent <= after.
        # Commit records are never deleted, so for a store that has events this always finds one.
        first = self._last_batch_at_or_before(store_id, after)
        if first is None or int(first["last"]["N"]) <= after:
            return  # an empty store, or the cursor is at (or past) the head
        if is_retired(first):
            yield ArchiveGap(self._archived_through(store_id))
            return
        rest = self._query_batches(store_id, batch_sk(int(first["last"]["N"])))
        yield from self._contiguous_batches(store_id, itertools.chain([first], rest), after)

    def hot_batches(self, store_id: str, from_parent: int) -> Iterator[StoredBatch]:
        items = itertools.dropwhile(is_retired, self._query_batches(store_id, batch_sk(from_parent)))
        live = itertools.takewhile(lambda item: not is_retired(item), items)  # retired meanwhile: stop
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
        records = self.table.key_range(
            store_id,
            batch_sk(segment.parent_seq_num),
            batch_sk(segment.last_seq_num - 1),
            projection=RETIRE_PROJECTION,
        )
        retired = 0
        chunk: list[Item] = []
        for item in itertools.chain(records, [None]):
            if item is not None and not is_retired(item):
                chunk.append(item)
            if chunk and (item is None or len(chunk) == 25):
                retired += self._retire_chunk(store_id, chunk, segment)
                chunk = []
        return retired

    def put_segment(self, store_id: str, segment: SegmentInfo) -> SegmentInfo:
        existing = self.table.put_if_absent(segment_item(store_id, segment))
        return segment_of(existing) if existing is not None else segment

    def segments(self, store_id: str, after: int) -> Iterator[SegmentInfo]:
        probe = self.table.last_in_range(store_id, segment_sk(0), segment_sk(after))
        if probe is None:
            return
        first = segment_of(probe)
        if first.last_seq_num <= after:
            return  # segments chain by parent: none starts later than this one ends
        yield first
        for item in self.table.key_range(store_id, segment_sk(first.last_seq_num), LAST_SEGMENT_SK):
            yield segment_of(item)

    def last_segment(self, store_id: str) -> SegmentInfo | None:
        item = self.table.last_in_range(store_id, segment_sk(0), LAST_SEGMENT_SK)
        return segment_of(item) if item is not None else None

    # -- helpers ---------------------------------------------------------------------------

    def _last_batch_at_or_before(self, store_id: str, seq_num: int | None) -> Item | None:
        upper = LAST_BATCH_SK if seq_num is None else batch_sk(seq_num)
        return self.table.last_in_range(store_id, batch_sk(0), upper)

    def _committed_digest(self, store_id: str, parent: int) -> str | None:
        found = self.table.call(
            "get_item",
            Key={"pk": {"S": store_id}, "sk": {"S": batch_sk(parent)}},
            ConsistentRead=True,
            ProjectionExpression="dg",
        ).get("Item")
        return found["dg"]["S"] if found is not None else None

    def _query_batches(self, store_id: str, lower: str) -> Iterator[Item]:
        """Commit records from sort key ``lower`` on, ascending."""
        return self.table.key_range(store_id, lower, LAST_BATCH_SK)

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
            if is_retired(item):
                if not (yield from self._batches_of(store_id, group)):
                    yield ArchiveGap(self._archived_through(store_id))
                return
            if parent_of(item) > expected:
                raise StorageError(
                    f"store {store_id!r}: the commit chain has a hole after {expected} "
                    f"(next record at {parent_of(item)})"
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
        wanted = [key for item in items for key in part_keys(item)]
        parts = self.table.get_parts(store_id, wanted) if wanted else {}
        for item in items:
            if "parts" in item:
                keys = part_keys(item)
                if any(key not in parts for key in keys):
                    yield ArchiveGap(int(item["last"]["N"]))
                    return True
                data = b"".join(parts.pop(key) for key in keys)
            else:
                data = item["d"]["B"]
            yield stored_batch(item, zlib.decompress(data))
        return False

    def _retire_chunk(self, store_id: str, items: list[Item], segment: SegmentInfo) -> int:
        """Delete the parts of these commit records (they are invisible without them), then replace
        the records by tombstones (BatchWriteItem puts: each one is idempotent)."""
        self.table.delete_keys(store_id, [key for item in items for key in part_keys(item)])
        self.table.batch_write(
            [{"PutRequest": {"Item": tombstone(store_id, item, segment)}} for item in items]
        )
        return len(items)


__all__ = ["DynamoDBStorage", "create_table", "make_client"]
