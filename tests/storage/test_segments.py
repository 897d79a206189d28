"""Segment stores: the conformance suite on the in-memory fake and on S3 (moto server mode),
the segment format and key layout, and the S3 adapter's error mapping and retries."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from stratasync.storage import (
    SegmentCorruptError,
    SegmentNotFoundError,
    StorageError,
    StorageUnavailableError,
    StoredBatch,
    StoredEvent,
)
from stratasync.storage.memory import InMemorySegmentStorage
from stratasync.storage.s3 import S3SegmentStorage, ensure_bucket, make_s3_client
from stratasync.storage.segments import (
    PresignedUrlRefusedError,
    SegmentStorage,
    decode_segment,
    encode_segment,
    encode_store_id,
    store_prefix,
)
from stratasync.testing.segments import SegmentStorageConformance, UrlRefusedError, body_of
from tests.storage.test_dynamodb import ClientWrapper

BUCKET = "stratasync-test-archive"
_MEMORY = InMemorySegmentStorage()


class TestInMemorySegmentStorage(SegmentStorageConformance):
    def create_segment_store(self) -> SegmentStorage:
        return _MEMORY

    def fetch_url(self, url: str) -> bytes:
        try:
            return _MEMORY.open_url(url)
        except PresignedUrlRefusedError as error:
            raise UrlRefusedError(str(error)) from error


def fetch_over_http(url: str) -> bytes:
    response = httpx.get(url, timeout=10)
    if 400 <= response.status_code < 500:
        raise UrlRefusedError(f"{response.status_code}: {response.text[:200]}")
    response.raise_for_status()
    return response.content


class TestS3SegmentStorageOnMoto(SegmentStorageConformance):
    checks_presigned_urls = False  # moto serves presigned URLs but checks neither signature nor expiry
    verifies_upload_checksums = False  # nor x-amz-checksum-sha256

    @pytest.fixture(autouse=True)
    def _endpoint(self, moto_endpoint: str) -> None:
        self.endpoint = moto_endpoint
        ensure_bucket(make_s3_client(moto_endpoint), BUCKET)

    def create_segment_store(self) -> SegmentStorage:
        return S3SegmentStorage(BUCKET, make_s3_client(self.endpoint))

    def fetch_url(self, url: str) -> bytes:
        return fetch_over_http(url)


# -- the format and the layout ----------------------------------------------------------------


def batch(parent: int, seqs: list[int], created_at: str = "2026-11-23T00:00:00.000Z") -> StoredBatch:
    """A batch of events at ``seqs``; positions from ``parent + 1`` on (the test logs before a
    jump are dense, so the parent is the number of events before the batch)."""
    return StoredBatch(
        parent_seq_num=parent,
        last_seq_num=seqs[-1],
        created_at=created_at,
        events=[
            StoredEvent(seq, f'{{"seqNum":{seq},"text":"a b\\\\n c"}}', created_at, parent + 1 + offset)
            for offset, seq in enumerate(seqs)
        ],
    )


def test_segment_round_trips_with_commit_times_and_is_deterministic() -> None:
    batches = [batch(0, [1, 2]), batch(2, [3], "2026-11-24T00:00:00.000Z"), batch(3, [10, 20])]
    body, info = encode_segment("s", batches, "2026-12-01T00:00:00Z")
    again, info_again = encode_segment("s", batches, "2026-12-02T00:00:00Z")
    assert body == again
    assert info.key == info_again.key
    assert (info.parent_seq_num, info.first_seq_num, info.last_seq_num, info.events) == (0, 1, 20, 5)
    assert info.sha256 == hashlib.sha256(body).hexdigest()
    assert info.key.startswith("stores/s/segments/0000000000000001-0000000000000020-")
    events = decode_segment(body, info)
    assert [(e.seq_num, e.created_at) for e in events] == [
        (1, "2026-11-23T00:00:00.000Z"),
        (2, "2026-11-23T00:00:00.000Z"),
        (3, "2026-11-24T00:00:00.000Z"),
        (10, "2026-11-23T00:00:00.000Z"),
        (20, "2026-11-23T00:00:00.000Z"),
    ]
    assert events[0].event_json == batches[0].events[0].event_json


def test_corrupt_or_mismatched_segments_are_refused() -> None:
    body, info = encode_segment("s", [batch(0, [1, 2, 3])], "t")
    with pytest.raises(SegmentCorruptError, match="SHA-256"):
        decode_segment(body[:-1] + bytes([body[-1] ^ 1]), info)
    other_body, other = encode_segment("s", [batch(0, [1, 2])], "t")
    with pytest.raises(SegmentCorruptError, match="range"):
        decode_segment(other_body, info.__class__(**{**other.__dict__, "events": 3}))
    with pytest.raises(ValueError, match="contiguous"):
        encode_segment("s", [batch(0, [1]), batch(2, [3])], "t")


@pytest.mark.parametrize(
    "store_id", ["simple", "with/slash", "dots..", "ünïcode ✓", "a%2Fb", "=x", "x" * 256, "ö" * 256]
)
def test_store_prefixes_are_safe_bounded_and_distinct(store_id: str) -> None:
    encoded = encode_store_id(store_id)
    assert len(encoded) <= 200
    assert "/" not in encoded
    assert "." not in encoded
    assert encoded.isascii()
    others = ["simple", "with/slash", "dots..", "ünïcode ✓", "a%2Fb", "=x", "x" * 256, "ö" * 256]
    prefixes = {store_prefix(other) for other in others}
    assert len(prefixes) == len(others)
    assert not any(a != b and b.startswith(a) for a in prefixes for b in prefixes)


# -- S3 adapter specifics ---------------------------------------------------------------------


@pytest.fixture
def wrapped_s3(moto_endpoint: str) -> tuple[S3SegmentStorage, ClientWrapper]:
    client = make_s3_client(moto_endpoint)
    ensure_bucket(client, BUCKET)
    wrapper = ClientWrapper(client)
    return S3SegmentStorage(BUCKET, wrapper, time_budget_seconds=1.0), wrapper  # type: ignore[arg-type]


def slow_down(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "SlowDown", "Message": "reduce your request rate"}}, operation)


def test_s3_throttling_is_retried_within_the_budget(
    wrapped_s3: tuple[S3SegmentStorage, ClientWrapper],
) -> None:
    store, wrapper = wrapped_s3
    failures = {"left": 3}

    def flaky(method: Any, **kwargs: Any) -> Any:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise slow_down("PutObject")
        return method(**kwargs)

    wrapper.hooks["put_object"] = flaky
    body, digest = body_of(100)
    key = f"stores/t/{uuid.uuid4().hex}"
    store.put(key, body, sha256=digest, metadata={})
    assert store.get(key) == body
    assert wrapper.calls.count("put_object") == 4


def test_s3_persistent_throttling_ends_as_storage_unavailable(
    wrapped_s3: tuple[S3SegmentStorage, ClientWrapper],
) -> None:
    store, wrapper = wrapped_s3

    def always(method: Any, **kwargs: Any) -> Any:
        raise slow_down("GetObject")

    wrapper.hooks["get_object"] = always
    with pytest.raises(StorageUnavailableError, match="still failing"):
        store.get("stores/t/x")


def test_ensure_bucket_takes_a_bucket_made_meanwhile_and_refuses_someone_else_s() -> None:
    """Between its check and its create another caller made the bucket: ``BucketAlreadyOwnedByYou``
    is success; ``BucketAlreadyExists`` (someone else's name) is not."""
    for code, raises in (("BucketAlreadyOwnedByYou", False), ("BucketAlreadyExists", True)):
        client = make_s3_client("http://127.0.0.1:9")
        with Stubber(client) as stubbed:
            stubbed.add_client_error("head_bucket", service_error_code="404", http_status_code=404)
            stubbed.add_client_error("create_bucket", service_error_code=code, http_status_code=409)
            if raises:
                with pytest.raises(ClientError):
                    ensure_bucket(client, BUCKET)
            else:
                ensure_bucket(client, BUCKET)
            stubbed.assert_no_pending_responses()


def test_s3_missing_bucket_and_object_map_to_storage_errors(moto_endpoint: str) -> None:
    client = make_s3_client(moto_endpoint)
    ensure_bucket(client, BUCKET)
    with pytest.raises(SegmentNotFoundError):
        S3SegmentStorage(BUCKET, client).get("stores/none/segments/x.gz")
    with pytest.raises(StorageError, match="NoSuchBucket"):
        S3SegmentStorage("no-such-bucket", client).put(
            "k", b"x", sha256=hashlib.sha256(b"x").hexdigest(), metadata={}
        )


def test_s3_object_carries_checksum_and_range_metadata(moto_endpoint: str) -> None:
    client = make_s3_client(moto_endpoint)
    ensure_bucket(client, BUCKET)
    store = S3SegmentStorage(BUCKET, client)
    body, info = encode_segment(f"meta-{uuid.uuid4().hex[:6]}", [batch(0, [1, 2, 3])], "t")
    store.put(info.key, body, sha256=info.sha256, metadata={"first": "1", "last": "3"})
    head = store.head(info.key)
    assert head["Metadata"] == {"first": "1", "last": "3"}
    assert head["ContentLength"] == len(body)
    assert head["ContentType"] == "application/gzip"
