"""Which backend an operation works on: a table and a bucket, their endpoints, or a deployed stack."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from stratasync.core.sealing import DEFAULT_SEGMENT_BYTES, DEFAULT_SEGMENT_EVENTS, ArchivePolicy, Archiver
from stratasync.storage.dynamodb import DynamoDBStorage, make_client
from stratasync.storage.dynamodb_admin import DynamoDBAdmin
from stratasync.storage.s3 import S3SegmentStorage, make_s3_client
from stratasync.storage.segments import lost_store_guard
from stratasync.storage.tiered import SegmentCache, TieredEventLog

if TYPE_CHECKING:
    from collections.abc import Callable

    from stratasync.storage.base import SegmentInfo

#: The stack outputs :func:`target_from_stack` reads (the stack's ``CfnOutput`` ids).
TABLE_OUTPUT = "TableName"
BUCKET_OUTPUT = "ArchiveBucketName"
#: An operator's tool can wait longer for throttled or failing calls than a sync request.
OPERATOR_TIME_BUDGET_SECONDS = 30.0


class OperationError(Exception):
    """An operation refused or failed; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    """The backend's storage (defaults: those of ``stratasync dev`` and ``stratasync archive``)."""

    table: str = "stratasync"
    bucket: str = "stratasync-archive"
    dynamodb_endpoint: str | None = None
    s3_endpoint: str | None = None
    region: str | None = None
    segment_events: int = DEFAULT_SEGMENT_EVENTS
    segment_bytes: int = DEFAULT_SEGMENT_BYTES

    def describe(self) -> str:
        where = f" at {self.dynamodb_endpoint}" if self.dynamodb_endpoint else ""
        s3 = f" at {self.s3_endpoint}" if self.s3_endpoint else ""
        return f"table {self.table!r}{where}, bucket {self.bucket!r}{s3}"


def target_from_stack(stack_name: str, client: Any, base: Target | None = None) -> Target:
    """The table and bucket a deployed stack made, from its outputs (``describe_stacks``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    except (ClientError, BotoCoreError) as error:
        raise OperationError(f"cannot read stack {stack_name!r}: {error}") from error
    if not stacks:
        raise OperationError(f"no stack {stack_name!r}")
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
    missing = [name for name in (TABLE_OUTPUT, BUCKET_OUTPUT) if not outputs.get(name)]
    if missing:
        raise OperationError(
            f"stack {stack_name!r} has no output {' or '.join(missing)}: is it a stratasync stack"
            " (infra/stratasync_infra or template.yaml)?"
        )
    return replace(base or Target(), table=outputs[TABLE_OUTPUT], bucket=outputs[BUCKET_OUTPUT])


@dataclass
class Connection:
    """Everything an operation works with, on one :class:`Target`."""

    target: Target
    storage: DynamoDBStorage
    admin: DynamoDBAdmin
    segments: S3SegmentStorage
    log: TieredEventLog
    policy: ArchivePolicy

    def archiver(self, checkpoint: Callable[[str, SegmentInfo], None] | None = None) -> Archiver:
        return Archiver(self.storage, self.segments, self.policy, checkpoint=checkpoint)


def connect(target: Target, *, dynamodb_client: Any = None, s3_client: Any = None) -> Connection:
    """Clients for ``target`` (or the given ones: tests wrap them to inject faults).

    The hot tier refuses to create a store the archive knows (as the sync function does), so no
    operation starts a lost store afresh by accident.
    """
    if any(
        (endpoint or "").startswith("http://") for endpoint in (target.dynamodb_endpoint, target.s3_endpoint)
    ):
        from stratasync.devserver.embedded_moto import ensure_fake_credentials

        ensure_fake_credentials()  # local emulators accept any credentials
    segments = S3SegmentStorage(
        target.bucket,
        s3_client if s3_client is not None else make_s3_client(target.s3_endpoint, target.region),
        time_budget_seconds=OPERATOR_TIME_BUDGET_SECONDS,
    )
    storage = DynamoDBStorage(
        target.table,
        dynamodb_client
        if dynamodb_client is not None
        else make_client(target.dynamodb_endpoint, target.region),
        time_budget_seconds=OPERATOR_TIME_BUDGET_SECONDS,
        new_store_guard=lost_store_guard(segments),
    )
    return Connection(
        target=target,
        storage=storage,
        admin=DynamoDBAdmin(storage),
        segments=segments,
        log=TieredEventLog(storage, segments, SegmentCache(16_000_000)),
        policy=ArchivePolicy(target.segment_events, target.segment_bytes),
    )
