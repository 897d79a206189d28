"""The one conformance suite of :class:`~stratasync.storage.segments.SegmentStorage`.

Every adapter's test module subclasses :class:`SegmentStorageConformance`, implementing
:meth:`create_segment_store` and :meth:`fetch_url` (how a client outside would GET a presigned
URL). ``checks_presigned_urls`` says whether the backing service checks signatures and expiry
(moto does not; SeaweedFS and the in-memory fake do), ``verifies_upload_checksums`` whether it
refuses an upload whose bytes do not match the SHA-256 sent with it (S3 does, moto does not).
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from abc import ABC, abstractmethod

import pytest

from stratasync.storage import SegmentNotFoundError, StorageError
from stratasync.storage.segments import SegmentStorage


class UrlRefusedError(Exception):
    """The service refused a presigned URL (4xx)."""


def body_of(size: int) -> tuple[bytes, str]:
    body = os.urandom(size)
    return body, hashlib.sha256(body).hexdigest()


class SegmentStorageConformance(ABC):
    checks_presigned_urls = True
    verifies_upload_checksums = True

    @abstractmethod
    def create_segment_store(self) -> SegmentStorage:
        """A fresh adapter instance (objects may be shared with other tests: use new keys)."""

    @abstractmethod
    def fetch_url(self, url: str) -> bytes:
        """GET a presigned URL as an outside client would; :class:`UrlRefusedError` when refused."""

    @pytest.fixture
    def segments(self) -> SegmentStorage:
        return self.create_segment_store()

    @pytest.fixture
    def key(self) -> str:
        return f"stores/t-{uuid.uuid4().hex[:10]}/segments/0000000000000000-0000000000000009-ab.gz"

    def test_put_then_get_returns_the_same_bytes(self, segments: SegmentStorage, key: str) -> None:
        body, digest = body_of(70_000)
        segments.put(key, body, sha256=digest, metadata={"first": "1", "last": "9"})
        assert segments.get(key) == body
        assert self.create_segment_store().get(key) == body

    def test_missing_object_is_segment_not_found(self, segments: SegmentStorage, key: str) -> None:
        with pytest.raises(SegmentNotFoundError):
            segments.get(key)

    def test_put_twice_is_harmless(self, segments: SegmentStorage, key: str) -> None:
        body, digest = body_of(1_000)
        segments.put(key, body, sha256=digest, metadata={})
        segments.put(key, body, sha256=digest, metadata={})
        assert segments.get(key) == body

    def test_bytes_that_do_not_match_the_checksum_are_refused(
        self, segments: SegmentStorage, key: str
    ) -> None:
        if not self.verifies_upload_checksums:
            pytest.skip("this backend does not check x-amz-checksum-sha256 on upload (moto)")
        body, digest = body_of(1_000)
        with pytest.raises(StorageError):
            segments.put(key, body + b"x", sha256=digest, metadata={})
        with pytest.raises(SegmentNotFoundError):
            segments.get(key)

    def test_presigned_url_serves_the_object(self, segments: SegmentStorage, key: str) -> None:
        body, digest = body_of(5_000)
        segments.put(key, body, sha256=digest, metadata={})
        assert self.fetch_url(segments.presign_get(key, 60)) == body

    def test_tampered_presigned_url_is_refused(self, segments: SegmentStorage, key: str) -> None:
        if not self.checks_presigned_urls:
            pytest.skip("this backend does not check presigned URL signatures (moto)")
        body, digest = body_of(100)
        other = key.replace("-ab.gz", "-cd.gz")
        segments.put(key, body, sha256=digest, metadata={})
        segments.put(other, body, sha256=digest, metadata={})
        url = segments.presign_get(key, 60)
        with pytest.raises(UrlRefusedError):
            self.fetch_url(url.replace("-ab.gz", "-cd.gz"))  # another object, same signature
        signature_at = url.index("ignature=") + len("ignature=")
        flipped = "0" if url[signature_at] != "0" else "1"
        with pytest.raises(UrlRefusedError):
            self.fetch_url(url[:signature_at] + flipped + url[signature_at + 1 :])
        assert self.fetch_url(url) == body

    def test_expired_presigned_url_is_refused(self, segments: SegmentStorage, key: str) -> None:
        if not self.checks_presigned_urls:
            pytest.skip("this backend does not check presigned URL expiry (moto)")
        body, digest = body_of(100)
        segments.put(key, body, sha256=digest, metadata={})
        url = segments.presign_get(key, 1)
        time.sleep(2.5)  # let it expire (not a timing assertion: the outcome is checked, not the time)
        with pytest.raises(UrlRefusedError):
            self.fetch_url(url)
