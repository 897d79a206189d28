"""The S3 adapter of :class:`SegmentStorage`: one immutable object per sealed segment.

Every S3 call goes through :meth:`S3SegmentStorage._call`, where throttling (``SlowDown``) and
transient errors are retried with jittered backoff inside a time budget and driver errors become
the storage layer's own (:class:`SegmentNotFoundError`, :class:`StorageUnavailableError`,
:class:`StorageError`). Uploads carry ``ChecksumSHA256``, so S3 refuses bytes that were changed
on the way; the archiver reads each object back and checks it before indexing it.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from stratasync.storage.aws import call_within_budget, client_config, error_code, request_id_of
from stratasync.storage.base import SegmentNotFoundError, StorageError
from stratasync.storage.segments import SegmentStorage

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})


def make_s3_client(endpoint_url: str | None = None, region_name: str | None = None) -> S3Client:
    """An S3 client for the adapter (:func:`stratasync.storage.aws.client_config`).

    With an explicit endpoint (moto, SeaweedFS, MinIO) addressing is path-style.
    """
    config = client_config(
        signature_version="s3v4", s3={"addressing_style": "path" if endpoint_url else "auto"}
    )
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region_name, config=config)


def ensure_bucket(client: S3Client, bucket: str) -> None:
    """Create the bucket if it is missing (dev server and tests; in AWS the stack owns it).

    Idempotent: a bucket of ours that appeared between the check and the create (another dev
    server starting at once, or our own create whose answer was lost and retried) is success."""
    try:
        client.head_bucket(Bucket=bucket)
        return
    except ClientError:
        pass
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as error:
        if error_code(error) != "BucketAlreadyOwnedByYou":
            raise


@dataclass(frozen=True)
class ObjectVersion:
    """One version of an object, or a delete marker (a versioned bucket keeps both)."""

    key: str
    version_id: str
    size: int
    delete_marker: bool


class S3SegmentStorage(SegmentStorage):
    """Segments as objects in one bucket (layout: :mod:`stratasync.storage.segments`)."""

    def __init__(
        self,
        bucket: str,
        client: S3Client | None = None,
        *,
        client_factory: Callable[[], S3Client] = make_s3_client,
        time_budget_seconds: float = 5.0,
    ) -> None:
        """Without ``client``, ``client_factory`` makes one on first use (most sync requests never
        touch S3, so a Lambda need not create an S3 client at cold start)."""
        self.bucket = bucket
        if client is not None:
            self.__dict__["_client"] = client
        self._client_factory = client_factory
        self.time_budget_seconds = time_budget_seconds

    @functools.cached_property
    def _client(self) -> S3Client:
        return self._client_factory()

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Call one S3 operation within the time budget (:mod:`stratasync.storage.aws`); a missing
        key becomes :class:`SegmentNotFoundError`. A ``Body`` in the answer is read inside the
        retry loop, so a connection that breaks while streaming is retried too."""
        method = getattr(self._client, operation)

        def attempt() -> dict[str, Any]:
            result: dict[str, Any] = method(Bucket=self.bucket, **kwargs)
            if "Body" in result:
                result["Body"] = result["Body"].read()
            return result

        def not_found(error: ClientError) -> Exception | None:
            if error_code(error) not in _NOT_FOUND:
                return None
            return SegmentNotFoundError(
                f"S3 {operation} {kwargs.get('Key')!r}: {error_code(error)}", request_id=request_id_of(error)
            )

        return call_within_budget(
            attempt, what=f"S3 {operation}", budget_seconds=self.time_budget_seconds, special=not_found
        )

    def put(self, key: str, body: bytes, *, sha256: str, metadata: Mapping[str, str]) -> None:
        self._call(
            "put_object",
            Key=key,
            Body=body,
            ContentType="application/json" if key.endswith(".json") else "application/gzip",
            ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
            Metadata=dict(metadata),
        )

    def get(self, key: str) -> bytes:
        body: bytes = self._call("get_object", Key=key)["Body"]
        return body

    def head(self, key: str) -> dict[str, Any]:
        """The object's size, metadata and stored SHA-256 checksum (for operators and tests)."""
        return self._call("head_object", Key=key, ChecksumMode="ENABLED")

    # -- for operators (stratasync backend ...): listing and erasing a store's objects ----------

    def get_with_metadata(self, key: str) -> tuple[bytes, dict[str, str]]:
        """The stored bytes and the object's user metadata."""
        result = self._call("get_object", Key=key)
        return result["Body"], dict(result.get("Metadata", {}))

    def list_objects(self, prefix: str) -> Iterator[tuple[str, int]]:
        """``(key, size)`` of the current objects under ``prefix``, in key order."""
        kwargs: dict[str, Any] = {"Prefix": prefix}
        while True:
            page = self._call("list_objects_v2", **kwargs)
            for item in page.get("Contents", []):
                yield item["Key"], int(item.get("Size", 0))
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def list_prefixes(self, prefix: str) -> Iterator[str]:
        """The "folders" right under ``prefix`` (``Delimiter="/"``)."""
        kwargs: dict[str, Any] = {"Prefix": prefix, "Delimiter": "/"}
        while True:
            page = self._call("list_objects_v2", **kwargs)
            for item in page.get("CommonPrefixes", []):
                yield item["Prefix"]
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def list_versions(self, prefix: str) -> Iterator[ObjectVersion]:
        """Every version and delete marker under ``prefix`` (an unversioned bucket: one version
        ``"null"`` per object)."""
        kwargs: dict[str, Any] = {"Prefix": prefix}
        while True:
            page = self._call("list_object_versions", **kwargs)
            for item in page.get("Versions", []):
                version = item.get("VersionId") or "null"
                yield ObjectVersion(item["Key"], version, int(item.get("Size", 0)), False)
            for item in page.get("DeleteMarkers", []):
                yield ObjectVersion(item["Key"], item.get("VersionId") or "null", 0, True)
            if not page.get("IsTruncated"):
                return
            kwargs["KeyMarker"] = page.get("NextKeyMarker")
            if page.get("NextVersionIdMarker"):
                kwargs["VersionIdMarker"] = page["NextVersionIdMarker"]
            else:
                kwargs.pop("VersionIdMarker", None)

    def delete_versions(self, versions: Sequence[ObjectVersion]) -> None:
        """Delete these versions and delete markers for good (DeleteObjects, 1,000 a call)."""
        for start in range(0, len(versions), 1000):
            chunk = versions[start : start + 1000]
            result = self._call(
                "delete_objects",
                Delete={
                    "Objects": [{"Key": version.key, "VersionId": version.version_id} for version in chunk],
                    "Quiet": True,
                },
            )
            errors = result.get("Errors", [])
            if errors:
                first = errors[0]
                raise StorageError(
                    f"S3 DeleteObjects refused {len(errors)} of {len(chunk)} deletes, e.g."
                    f" {first.get('Key')!r}: {first.get('Code')}: {first.get('Message')}"
                )

    def presign_get(self, key: str, expires_in: int) -> str:
        try:
            return self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
            )
        except (ClientError, BotoCoreError) as error:
            raise StorageError(f"cannot presign {key!r}: {error}") from error
