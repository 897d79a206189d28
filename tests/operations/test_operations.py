"""The operations suite on moto (server mode): DynamoDB and a versioned S3 bucket in one emulator."""

from __future__ import annotations

import pytest

from stratasync.operations import Target
from tests.conftest import TABLE
from tests.operations.helpers import target, versioned_bucket
from tests.operations.suite import OperationsSuite


class TestOperationsOnMoto(OperationsSuite):
    @pytest.fixture(autouse=True)
    def _endpoint(self, moto_endpoint: str) -> None:
        versioned_bucket(moto_endpoint)
        self.endpoint = moto_endpoint

    def target(self) -> Target:
        return target(self.endpoint, self.endpoint, TABLE)
