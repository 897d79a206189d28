"""Helpers for the operations tests: stores filled through the push path, and a CLI runner."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from stratasync.cli import main
from stratasync.core.service import SyncService
from stratasync.operations import Connection, Target, connect
from stratasync.protocol.messages import PushPayload
from stratasync.storage.s3 import ensure_bucket, make_s3_client

#: A versioned bucket (as the stack makes it) for these tests.
BUCKET = "stratasync-ops-test"


def versioned_bucket(endpoint: str, bucket: str = BUCKET) -> None:
    client = make_s3_client(endpoint)
    ensure_bucket(client, bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def target(dynamodb: str, s3: str, table: str, *, segment_events: int = 20) -> Target:
    return Target(
        table=table, bucket=BUCKET, dynamodb_endpoint=dynamodb, s3_endpoint=s3, segment_events=segment_events
    )


def options(t: Target) -> list[str]:
    """The CLI options naming ``t``."""
    assert t.dynamodb_endpoint is not None
    assert t.s3_endpoint is not None
    return [
        "--dynamodb-endpoint",
        t.dynamodb_endpoint,
        "--s3-endpoint",
        t.s3_endpoint,
        "--table",
        t.table,
        "--bucket",
        t.bucket,
        "--segment-events",
        str(t.segment_events),
    ]


def new_store() -> str:
    return f"ops-{uuid.uuid4().hex[:10]}"


def event(seq: int, client: str = "c1", text: str | None = None) -> dict[str, Any]:
    return {
        "name": "v1.TodoCreated",
        "args": {"id": f"t{seq}", "text": text if text is not None else f"todo {seq} ✓"},
        "seqNum": seq,
        "parentSeqNum": seq - 1,
        "clientId": client,
        "sessionId": "s1",
    }


def push(
    service: SyncService, store_id: str, events: list[dict[str, Any]], backend_id: str | None = None
) -> Any:
    option = {"_tag": "Some", "value": backend_id} if backend_id is not None else {"_tag": "None"}
    return service.push(
        store_id, PushPayload.model_validate({"storeId": store_id, "batch": events, "backendId": option})
    )


def fill(conn: Connection, store_id: str, count: int, *, per_batch: int = 7, start: int = 0) -> list[str]:
    """``count`` events pushed through the sync service in batches; returns their stored JSON."""
    service = SyncService(conn.log)
    seq = start
    while seq < start + count:
        size = min(per_batch, start + count - seq)
        push(service, store_id, [event(s) for s in range(seq + 1, seq + size + 1)])
        seq += size
    return [stored.event_json for stored in conn.log.read(store_id, start)]


def filled_and_archived(conn: Connection, store_id: str, count: int, **kwargs: Any) -> list[str]:
    stored = fill(conn, store_id, count, **kwargs)
    conn.archiver().archive(store_id)
    return stored


def all_events(conn: Connection, store_id: str) -> list[str]:
    return [stored.event_json for stored in conn.log.read(store_id, 0)]


def items_of(conn: Connection, store_id: str) -> list[str]:
    return list(conn.admin.sort_keys(store_id))


def versions_of(conn: Connection, store_id: str) -> list[Any]:
    from stratasync.storage.segments import store_prefix

    return list(conn.segments.list_versions(store_prefix(store_id)))


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``stratasync ARGS`` in process: exit code, stdout, stderr."""
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def delete_keeping_archive(capsys: pytest.CaptureFixture[str], store_id: str, t: Target) -> Any:
    """``stratasync backend delete --keep-archive``: the store's DynamoDB items are lost, its S3
    archive stays (the restore drill's loss)."""
    return cli_json(
        capsys,
        "backend",
        "delete",
        "--store",
        store_id,
        "--yes",
        "--grace",
        "0",
        "--keep-archive",
        *options(t),
    )


def fresh(t: Target) -> Connection:
    """A new connection (a new process: nothing cached)."""
    return connect(t)
