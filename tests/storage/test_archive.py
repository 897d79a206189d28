"""The archive conformance suite on the in-memory adapters and on DynamoDB + S3 (moto server
mode), plus what only the DynamoDB adapter has: deletes one by one, parts, query costs."""

from __future__ import annotations

from typing import Any

import pytest

from stratasync.core.sealing import ArchivePolicy, Archiver
from stratasync.storage import EventLogStorage, HeadMismatchError, HotTierStorage
from stratasync.storage.dynamodb import DynamoDBStorage, make_client
from stratasync.storage.memory import InMemorySegmentStorage, InMemoryStorage
from stratasync.storage.s3 import S3SegmentStorage, ensure_bucket, make_s3_client
from stratasync.storage.segments import SegmentStorage
from stratasync.storage.tiered import TieredEventLog
from stratasync.testing.archive import ArchiveConformance, Crash, Log, after, fill, pairs
from stratasync.testing.event_log import make_batch
from tests.conftest import TABLE
from tests.storage.test_dynamodb import ClientWrapper

BUCKET = "stratasync-test-archive"
_HOT = InMemoryStorage()
_SEGMENTS = InMemorySegmentStorage()


class TestArchiveInMemory(ArchiveConformance):
    def create_hot_store(self) -> HotTierStorage:
        return _HOT

    def create_segment_store(self) -> SegmentStorage:
        return _SEGMENTS

    def object_keys(self, prefix: str) -> list[str]:
        return [key for key in _SEGMENTS.object_keys() if key.startswith(prefix)]


def s3_keys(endpoint: str, prefix: str) -> list[str]:
    client = make_s3_client(endpoint)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


class TestArchiveOnDynamoDBAndS3Moto(ArchiveConformance):
    @pytest.fixture(autouse=True)
    def _endpoint(self, moto_endpoint: str) -> None:
        self.endpoint = moto_endpoint
        ensure_bucket(make_s3_client(moto_endpoint), BUCKET)

    def create_hot_store(self) -> HotTierStorage:
        return DynamoDBStorage(TABLE, make_client(self.endpoint))

    def create_segment_store(self) -> SegmentStorage:
        return S3SegmentStorage(BUCKET, make_s3_client(self.endpoint))

    def object_keys(self, prefix: str) -> list[str]:
        return s3_keys(self.endpoint, prefix)


# -- DynamoDB specifics -------------------------------------------------------------------------


@pytest.fixture
def moto_s3(moto_endpoint: str) -> S3SegmentStorage:
    client = make_s3_client(moto_endpoint)
    ensure_bucket(client, BUCKET)
    return S3SegmentStorage(BUCKET, client)


def wrapped_dynamodb(endpoint: str) -> tuple[DynamoDBStorage, ClientWrapper]:
    wrapper = ClientWrapper(make_client(endpoint))
    return DynamoDBStorage(TABLE, wrapper), wrapper  # type: ignore[arg-type]


def every_cursor(store: EventLogStorage, store_id: str, log: Log) -> None:
    for cursor in range(log[-1][0] + 2):
        assert pairs(store.read(store_id, cursor)) == after(log, cursor), f"cursor {cursor}"


@pytest.mark.parametrize("deletes_before_crash", [1, 4, 9])
def test_a_crash_halfway_through_the_deletes_loses_nothing(
    moto_endpoint: str, moto_s3: S3SegmentStorage, deletes_before_crash: int
) -> None:
    store_id = f"half-{deletes_before_crash}"
    plain = DynamoDBStorage(TABLE, make_client(moto_endpoint))
    log = [event for parent in range(12) for event in _append(plain, store_id, make_batch(parent, 1))]
    hot, wrapper = wrapped_dynamodb(moto_endpoint)
    done = {"deletes": 0}

    def crash_after_some(method: Any, **kwargs: Any) -> Any:
        # The tombstone writes: apply the first few of them, then the process dies.
        (table, requests), *_ = kwargs["RequestItems"].items()
        left = deletes_before_crash - done["deletes"]
        if len(requests) > left:
            if left:
                method(RequestItems={table: requests[:left]})
            raise Crash("killed halfway through the clean-up")
        done["deletes"] += len(requests)
        return method(**kwargs)

    wrapper.hooks["batch_write_item"] = crash_after_some
    with pytest.raises(Crash):
        Archiver(hot, moto_s3, ArchivePolicy(segment_events=10)).archive(store_id)
    reader = TieredEventLog(plain, moto_s3)
    every_cursor(reader, store_id, log)
    assert sum(1 for _ in plain.hot_batches(store_id, 0)) == 12 - deletes_before_crash
    run = Archiver(plain, moto_s3, ArchivePolicy(segment_events=10)).archive(store_id)
    assert run.sealed == []  # the segment was indexed: the re-run only finishes the clean-up
    assert run.retired_batches == 10 - deletes_before_crash
    assert [b.parent_seq_num for b in plain.hot_batches(store_id, 0)] == [10, 11]
    every_cursor(reader, store_id, log)


def _append(store: EventLogStorage, store_id: str, batch: Any) -> list[tuple[int, str]]:
    store.append(store_id, batch)
    return list(batch.events)


@pytest.mark.parametrize("order", ["ascending", "reversed"])
def test_pulls_interleaved_with_every_single_retirement(
    moto_endpoint: str, moto_s3: S3SegmentStorage, order: str
) -> None:
    store_id = f"interleaved-retirements-{order}"
    plain = DynamoDBStorage(TABLE, make_client(moto_endpoint))
    plain.table.page_items = 3  # several query pages per read, so deletes land between them
    log = fill(plain, store_id, 30, seed=11)
    reader_store = TieredEventLog(plain, moto_s3)
    cursors = [0, 2, 9, log[20][0], log[-3][0]]
    readers = {cursor: reader_store.read(store_id, cursor) for cursor in cursors}
    got: dict[int, Log] = {cursor: [] for cursor in cursors}
    hot, wrapper = wrapped_dynamodb(moto_endpoint)

    def advance_readers(method: Any, **kwargs: Any) -> Any:
        result = method(**kwargs)
        for cursor, reader in readers.items():
            event = next(reader, None)
            if event is not None:
                got[cursor].append((event.seq_num, event.event_json))
        return result

    applied = {"writes": 0}

    def one_write_at_a_time(method: Any, **kwargs: Any) -> Any:
        # DynamoDB applies a BatchWriteItem's writes one by one, in no promised order.
        (table, requests), *_ = kwargs["RequestItems"].items()
        for request in requests if order == "ascending" else reversed(requests):
            advance_readers(method, RequestItems={table: [request]})
            applied["writes"] += 1
        return {"UnprocessedItems": {}}

    wrapper.hooks["batch_write_item"] = one_write_at_a_time
    wrapper.hooks["put_item"] = advance_readers
    Archiver(hot, moto_s3, ArchivePolicy(segment_events=6)).archive(store_id)
    assert applied["writes"] > 10
    for cursor, reader in readers.items():
        got[cursor].extend(pairs(reader))
        assert got[cursor] == after(log, cursor), f"cursor {cursor}"


def test_parts_deleted_under_a_reader_are_read_from_the_archive(
    moto_endpoint: str, moto_s3: S3SegmentStorage
) -> None:
    store_id = "vanishing-parts"
    plain = DynamoDBStorage(TABLE, make_client(moto_endpoint))
    log: Log = []
    for parent in range(0, 60, 20):  # three batches of ~180 KB: each is stored in parts
        log.extend(_append(plain, store_id, make_batch(parent, 20, text_bytes=9_000)))
    reader_hot, wrapper = wrapped_dynamodb(moto_endpoint)
    reader_hot.inline_bytes = plain.inline_bytes
    archived = {"done": False}

    def archive_first(method: Any, **kwargs: Any) -> Any:
        if not archived["done"]:  # the reader holds the commit items; now their parts go
            archived["done"] = True
            Archiver(plain, moto_s3, ArchivePolicy(segment_events=20)).archive(store_id)
        return method(**kwargs)

    wrapper.hooks["batch_get_item"] = archive_first
    assert pairs(TieredEventLog(reader_hot, moto_s3).read(store_id, 5)) == after(log, 5)
    assert archived["done"]
    assert [b.parent_seq_num for b in plain.hot_batches(store_id, 0)] == [40]


def test_an_idle_poll_at_the_head_stays_one_query(moto_endpoint: str, moto_s3: S3SegmentStorage) -> None:
    store_id = "idle-poll"
    plain = DynamoDBStorage(TABLE, make_client(moto_endpoint))
    log = fill(plain, store_id, 20, jumps=False)
    Archiver(plain, moto_s3, ArchivePolicy(segment_events=5)).archive(store_id)
    hot, wrapper = wrapped_dynamodb(moto_endpoint)
    assert list(TieredEventLog(hot, moto_s3).read(store_id, log[-1][0])) == []
    assert wrapper.calls == ["query"]


def test_a_far_behind_pull_reads_no_hot_page_it_does_not_serve(
    moto_endpoint: str, moto_s3: S3SegmentStorage
) -> None:
    store_id = "far-behind"
    plain = DynamoDBStorage(TABLE, make_client(moto_endpoint))
    log = fill(plain, store_id, 40, jumps=False)
    sealed = Archiver(plain, moto_s3, ArchivePolicy(segment_events=10)).archive(store_id).sealed
    hot, wrapper = wrapped_dynamodb(moto_endpoint)
    reader = TieredEventLog(hot, moto_s3).read(store_id, 0)
    first = [next(reader) for _ in range(5)]
    assert pairs(iter(first)) == log[:5]
    # the probe (a tombstone), the newest segment (how far the archive reaches), the segment index
    # probe: no hot page
    assert wrapper.calls == ["query", "query", "query"]
    assert sealed


# -- issue 9: the commit invariant under a slow storage leg ---------------------------------------


def _is_commit_put(kwargs: dict[str, Any]) -> bool:
    return bool(kwargs.get("ConditionExpression")) and kwargs["Item"]["sk"]["S"].startswith("b#")


def test_a_delayed_commit_cannot_land_on_a_parent_that_was_archived(
    moto_endpoint: str, moto_s3: S3SegmentStorage
) -> None:
    """Writer A reads the head H; its conditional put is delayed (throttling retries, the network).
    Meanwhile B commits on H, C commits after B, and the archiver seals and retires B's batch.
    A's put arrives last: it must be refused, never acknowledged over B's events."""
    store_id = "delayed-writer"
    plain = DynamoDBStorage(TABLE, make_client(moto_endpoint))
    log = fill(plain, store_id, 4, jumps=False)
    head = plain.head(store_id)
    writer_a, wrapper = wrapped_dynamodb(moto_endpoint)
    b_batch, c_batch = make_batch(head, 2, client="B"), make_batch(head + 2, 1, client="C")

    def meanwhile(method: Any, **kwargs: Any) -> Any:
        if _is_commit_put(kwargs) and plain.head(store_id) == head:
            plain.append(store_id, b_batch)
            plain.append(store_id, c_batch)
            sealed = Archiver(plain, moto_s3, ArchivePolicy(segment_events=1)).archive(store_id).sealed
            assert sealed[-1].last_seq_num == b_batch.last_seq_num  # B's batch is archived now
            assert not any(batch.parent_seq_num == head for batch in plain.hot_batches(store_id, 0))
        return method(**kwargs)

    wrapper.hooks["put_item"] = meanwhile
    with pytest.raises(HeadMismatchError) as refused:
        writer_a.append(store_id, make_batch(head, 3, client="A"))
    assert refused.value.head == c_batch.last_seq_num
    expected = log + list(b_batch.events) + list(c_batch.events)
    reader = TieredEventLog(plain, moto_s3)
    every_cursor(reader, store_id, expected)
    Archiver(plain, moto_s3, ArchivePolicy(segment_events=1)).archive(store_id)
    every_cursor(reader, store_id, expected)  # and the next archiver run keeps them


def test_a_pull_racing_the_first_push_is_empty_not_an_error(
    moto_endpoint: str, moto_s3: S3SegmentStorage
) -> None:
    """The reader's first query finds no commit record; the store's first push lands right after.
    That is an empty store at the time of the read, not events lost between the tiers."""
    store_id = "first-push-race"
    reader_hot, wrapper = wrapped_dynamodb(moto_endpoint)
    writer = DynamoDBStorage(TABLE, make_client(moto_endpoint))
    first = make_batch(0, 2)

    def push_lands_after_the_probe(method: Any, **kwargs: Any) -> Any:
        page = method(**kwargs)
        if writer.head(store_id) == 0:
            writer.append(store_id, first)
        return page

    wrapper.hooks["query"] = push_lands_after_the_probe
    reader = TieredEventLog(reader_hot, moto_s3)
    assert list(reader.read(store_id, 0)) == []
    assert pairs(reader.read(store_id, 0)) == list(first.events)


def _item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (numbers: about 1 byte per 2 digits + 1)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        (kind, raw), *_ = value.items()
        size += (
            (len(raw.lstrip("-").replace(".", "")) + 1) // 2 + 1
            if kind == "N"
            else len(raw)
            if kind == "B"
            else len(raw.encode())
        )
    return size


def test_an_archived_batch_leaves_a_small_tombstone(moto_endpoint: str, moto_s3: S3SegmentStorage) -> None:
    store_id = "tombstone-size-0123456789"  # a 25-character store id
    plain = DynamoDBStorage(TABLE, make_client(moto_endpoint))
    fill(plain, store_id, 12, jumps=False)
    Archiver(plain, moto_s3, ArchivePolicy(segment_events=5)).archive(store_id)
    items = make_client(moto_endpoint).query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :b)",
        ExpressionAttributeValues={":pk": {"S": store_id}, ":b": {"S": "b#"}},
        ConsistentRead=True,
    )["Items"]
    tombstones = [item for item in items if "seg" in item]
    assert len(items) == 12  # every commit record is still there
    assert len(tombstones) >= 9
    assert all(set(item) == {"pk", "sk", "last", "c", "at", "dg", "seg"} for item in tombstones)
    assert max(_item_size(item) for item in tombstones) <= 200
