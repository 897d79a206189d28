"""The operations suite on DynamoDB Local and SeaweedFS (a versioned bucket): the emulator tier."""

from __future__ import annotations

import pytest

from stratasync.operations import Target
from tests.conftest import TABLE
from tests.operations.helpers import target, versioned_bucket
from tests.operations.suite import OperationsSuite

pytestmark = [pytest.mark.dynamodb_local, pytest.mark.seaweedfs]


class TestOperationsOnDynamoDBLocalAndSeaweedFS(OperationsSuite):
    @pytest.fixture(autouse=True)
    def _endpoints(self, dynamodb_local_endpoint: str, seaweedfs_endpoint: str) -> None:
        versioned_bucket(seaweedfs_endpoint)
        self.dynamodb = dynamodb_local_endpoint
        self.s3 = seaweedfs_endpoint

    def target(self) -> Target:
        return target(self.dynamodb, self.s3, TABLE)
