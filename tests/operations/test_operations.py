"""The operations suite on moto (server mode): DynamoDB and a versioned S3 bucket in one emulator."""

from __future__ import annotations

from typing import Any

import pytest

from stratasync.cli import backend as backend_cli
from stratasync.operations import Target, connect
from tests.conftest import TABLE
from tests.operations.helpers import (
    BUCKET,
    cli,
    cli_json,
    fill,
    items_of,
    new_store,
    options,
    target,
    versioned_bucket,
)
from tests.operations.suite import OperationsSuite


class TestOperationsOnMoto(OperationsSuite):
    @pytest.fixture(autouse=True)
    def _endpoint(self, moto_endpoint: str) -> None:
        versioned_bucket(moto_endpoint)
        self.endpoint = moto_endpoint

    def target(self) -> Target:
        return target(self.endpoint, self.endpoint, TABLE)


class _FakeCloudFormation:
    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        outputs = [{"OutputKey": key, "OutputValue": value} for key, value in self.outputs.items()]
        return {"Stacks": [{"StackName": StackName, "Outputs": outputs}]}


def test_the_stack_option_reads_the_table_and_bucket_from_the_stack_outputs(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    versioned_bucket(moto_endpoint)
    t = target(moto_endpoint, moto_endpoint, TABLE)
    store_id = new_store()
    fill(connect(t), store_id, 4)
    endpoints = ["--dynamodb-endpoint", moto_endpoint, "--s3-endpoint", moto_endpoint]
    outputs = {"TableName": TABLE, "ArchiveBucketName": BUCKET, "SyncUrl": "https://x"}
    monkeypatch.setattr(backend_cli, "cloudformation_client", lambda region: _FakeCloudFormation(outputs))
    listed = cli_json(capsys, "backend", "list", "--stack", "my-stack", *endpoints)
    assert store_id in [row["storeId"] for row in listed["stores"]]
    code, _, err = cli(capsys, "backend", "list", "--stack", "my-stack", "--table", "x", *endpoints)
    assert code == 1
    assert "not both" in err
    monkeypatch.setattr(backend_cli, "cloudformation_client", lambda region: _FakeCloudFormation({}))
    code, _, err = cli(capsys, "backend", "inspect", "--store", store_id, "--stack", "other", *endpoints)
    assert code == 1
    assert "stack 'other' has no output TableName or ArchiveBucketName" in err


def test_a_store_that_does_not_exist_is_an_error_not_created(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    versioned_bucket(moto_endpoint)
    t = target(moto_endpoint, moto_endpoint, TABLE)
    store_id = new_store()
    for command in ("inspect", "tail", "export"):
        code, _, err = cli(capsys, "backend", command, "--store", store_id, *options(t))
        assert code == 1
        assert f"no store {store_id!r}" in err
    code, _, err = cli(capsys, "backend", "reset", "--store", store_id, "--yes", *options(t))
    assert code == 1
    assert items_of(connect(t), store_id) == []
