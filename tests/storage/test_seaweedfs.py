"""The integration tier on SeaweedFS, an S3 implementation that really checks signatures, expiry
and upload checksums: the segment store conformance suite, the archive conformance suite
(DynamoDB on moto, and on DynamoDB Local), and fast bootstrap through presigned URLs."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from stratasync.core.manifest import manifest
from stratasync.core.sealing import ArchivePolicy, Archiver
from stratasync.storage import HotTierStorage
from stratasync.storage.dynamodb import DynamoDBStorage, make_client
from stratasync.storage.s3 import S3SegmentStorage, ensure_bucket, make_s3_client
from stratasync.storage.segments import SegmentStorage, decode_segment
from stratasync.storage.tiered import TieredEventLog
from stratasync.testing.archive import ArchiveConformance, fill
from stratasync.testing.segments import SegmentStorageConformance
from tests.conftest import TABLE
from tests.storage.test_segments import fetch_over_http

pytestmark = pytest.mark.seaweedfs
BUCKET = "stratasync-archive-test"


def s3_keys(endpoint: str, prefix: str) -> list[str]:
    pages = make_s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


class TestS3SegmentStorageOnSeaweedFS(SegmentStorageConformance):
    @pytest.fixture(autouse=True)
    def _endpoint(self, seaweedfs_endpoint: str) -> None:
        self.endpoint = seaweedfs_endpoint
        ensure_bucket(make_s3_client(seaweedfs_endpoint), BUCKET)

    def create_segment_store(self) -> SegmentStorage:
        return S3SegmentStorage(BUCKET, make_s3_client(self.endpoint))

    def fetch_url(self, url: str) -> bytes:
        return fetch_over_http(url)


class TestArchiveOnMotoDynamoDBAndSeaweedFS(ArchiveConformance):
    @pytest.fixture(autouse=True)
    def _endpoints(self, moto_endpoint: str, seaweedfs_endpoint: str) -> None:
        self.dynamodb, self.s3 = moto_endpoint, seaweedfs_endpoint
        ensure_bucket(make_s3_client(seaweedfs_endpoint), BUCKET)

    def create_hot_store(self) -> HotTierStorage:
        return DynamoDBStorage(TABLE, make_client(self.dynamodb))

    def create_segment_store(self) -> SegmentStorage:
        return S3SegmentStorage(BUCKET, make_s3_client(self.s3))

    def object_keys(self, prefix: str) -> list[str]:
        return s3_keys(self.s3, prefix)


@pytest.mark.dynamodb_local
class TestArchiveOnDynamoDBLocalAndSeaweedFS(TestArchiveOnMotoDynamoDBAndSeaweedFS):
    @pytest.fixture(autouse=True)
    def _endpoints(self, dynamodb_local_endpoint: str, seaweedfs_endpoint: str) -> None:
        self.dynamodb, self.s3 = dynamodb_local_endpoint, seaweedfs_endpoint
        ensure_bucket(make_s3_client(seaweedfs_endpoint), BUCKET)


def test_fast_bootstrap_urls_work_and_tampered_or_expired_ones_are_refused(
    moto_endpoint: str, seaweedfs_endpoint: str
) -> None:
    store_id = f"bootstrap-{uuid.uuid4().hex[:6]}"
    hot = DynamoDBStorage(TABLE, make_client(moto_endpoint))
    ensure_bucket(make_s3_client(seaweedfs_endpoint), BUCKET)
    segments = S3SegmentStorage(BUCKET, make_s3_client(seaweedfs_endpoint))
    log = fill(hot, store_id, 30, jumps=False)
    sealed = Archiver(hot, segments, ArchivePolicy(segment_events=10)).archive(store_id).sealed
    listing = manifest(TieredEventLog(hot, segments), store_id, 0, expires_in=2)
    assert [entry["lastSeqNum"] for entry in listing["segments"]] == [s.last_seq_num for s in sealed]
    downloaded = []
    for entry, segment in zip(listing["segments"], sealed, strict=True):
        body = httpx.get(entry["url"], timeout=10).content
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        downloaded += [(event.seq_num, event.event_json) for event in decode_segment(body, segment)]
    assert downloaded == log[: len(downloaded)]
    assert listing["pullFrom"] == downloaded[-1][0]
    url = listing["segments"][0]["url"]
    other_key = listing["segments"][1]["url"].split("?")[0]
    assert httpx.get(other_key + "?" + url.split("?")[1], timeout=10).status_code == 403
    assert httpx.get(url.replace("X-Amz-Expires=2", "X-Amz-Expires=9999"), timeout=10).status_code == 403
    assert httpx.get(url.split("?")[0], timeout=10).status_code == 403  # the bucket is private
    time.sleep(3)  # let the URL expire (the outcome is asserted, not the time)
    assert httpx.get(url, timeout=10).status_code == 403


def test_every_bucket_can_store_objects(seaweedfs_endpoint: str) -> None:
    """The fixture's SeaweedFS serves many buckets in one session (the fault tiers' and this
    module's): each bucket is a collection with volumes of its own, and with too few volume slots
    only the first collection to write could store anything (later PutObjects: InternalError)."""
    client = make_s3_client(seaweedfs_endpoint)
    for index in range(3):
        bucket = f"stratasync-buckets-{index}-{uuid.uuid4().hex[:6]}"
        ensure_bucket(client, bucket)
        client.put_object(Bucket=bucket, Key="k", Body=b"x" * 100)
        assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x" * 100


def test_dev_servers_starting_at_once_each_ensure_the_bucket(seaweedfs_endpoint: str) -> None:
    """Several callers see the bucket missing and create it at once: SeaweedFS (like S3 outside
    us-east-1) answers the late ones ``BucketAlreadyOwnedByYou``, which is success (CI once failed
    this way with three dev servers starting on one SeaweedFS)."""
    bucket = f"race-{uuid.uuid4().hex[:10]}"
    barrier = threading.Barrier(6)

    def ensure(_: int) -> None:
        client = make_s3_client(seaweedfs_endpoint)
        barrier.wait()
        ensure_bucket(client, bucket)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(ensure, range(6)))
    make_s3_client(seaweedfs_endpoint).head_bucket(Bucket=bucket)
