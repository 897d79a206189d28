"""The subscription storage conformance suite on every adapter: in memory, moto, DynamoDB Local."""

from __future__ import annotations

import pytest

from stratasync.storage import EventLogStorage
from stratasync.storage.dynamodb import DynamoDBStorage, make_client
from stratasync.storage.dynamodb_subscriptions import DynamoDBSubscriptionStorage
from stratasync.storage.dynamodb_table import create_connections_table
from stratasync.storage.memory import InMemoryStorage, InMemorySubscriptionStorage
from stratasync.storage.subscriptions import SubscriptionStorage
from stratasync.testing.subscriptions import SubscriptionStorageConformance
from tests.conftest import TABLE

CONNECTIONS_TABLE = "stratasync-test-connections"
_EVENTLOG = InMemoryStorage()
_SUBS = InMemorySubscriptionStorage(_EVENTLOG)


class TestInMemorySubscriptions(SubscriptionStorageConformance):
    def create(self) -> tuple[SubscriptionStorage, EventLogStorage]:
        return _SUBS, _EVENTLOG


class TestDynamoDBSubscriptionsOnMoto(SubscriptionStorageConformance):
    @pytest.fixture(autouse=True)
    def _endpoint(self, moto_endpoint: str) -> None:
        self.endpoint = moto_endpoint
        create_connections_table(make_client(moto_endpoint), CONNECTIONS_TABLE)

    def create(self) -> tuple[SubscriptionStorage, EventLogStorage]:
        client = make_client(self.endpoint)
        return DynamoDBSubscriptionStorage(CONNECTIONS_TABLE, TABLE, client), DynamoDBStorage(TABLE, client)


@pytest.mark.dynamodb_local
class TestDynamoDBSubscriptionsOnDynamoDBLocal(SubscriptionStorageConformance):
    @pytest.fixture(autouse=True)
    def _endpoint(self, dynamodb_local_endpoint: str) -> None:
        self.endpoint = dynamodb_local_endpoint
        create_connections_table(make_client(dynamodb_local_endpoint), CONNECTIONS_TABLE)

    def create(self) -> tuple[SubscriptionStorage, EventLogStorage]:
        client = make_client(self.endpoint)
        return DynamoDBSubscriptionStorage(CONNECTIONS_TABLE, TABLE, client), DynamoDBStorage(TABLE, client)
