"""Live sync fixtures: the rules on each adapter pair (in memory, moto, DynamoDB Local)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stratasync.core.live import LiveSettings
from stratasync.storage.dynamodb import DynamoDBStorage, make_client
from stratasync.storage.dynamodb_subscriptions import DynamoDBSubscriptionStorage
from stratasync.storage.dynamodb_table import create_connections_table
from stratasync.storage.memory import InMemoryStorage, InMemorySubscriptionStorage
from tests.conftest import TABLE
from tests.ws.harness import FakeGateway, Harness

CONNECTIONS_TABLE = "stratasync-test-connections"
MakeHarness = Callable[..., Harness]


def _memory(settings: LiveSettings) -> Harness:
    eventlog = InMemoryStorage()
    return Harness(eventlog, InMemorySubscriptionStorage(eventlog), FakeGateway(), settings)


def _dynamodb(endpoint: str) -> Callable[[LiveSettings], Harness]:
    create_connections_table(make_client(endpoint), CONNECTIONS_TABLE)

    def make(settings: LiveSettings) -> Harness:
        client = make_client(endpoint)
        return Harness(
            DynamoDBStorage(TABLE, client),
            DynamoDBSubscriptionStorage(CONNECTIONS_TABLE, TABLE, client),
            FakeGateway(),
            settings,
        )

    return make


@pytest.fixture(params=["memory", "moto", pytest.param("dynamodb_local", marks=pytest.mark.dynamodb_local)])
def make_harness(request: pytest.FixtureRequest) -> MakeHarness:
    """Makes a :class:`Harness` (``LiveSettings`` fields as keyword arguments) on each adapter."""
    if request.param == "memory":
        factory: Callable[[LiveSettings], Harness] = _memory
    else:
        factory = _dynamodb(request.getfixturevalue(f"{request.param}_endpoint"))

    def make(**settings: object) -> Harness:
        return factory(LiveSettings(**settings))  # type: ignore[arg-type]

    return make


@pytest.fixture
def harness(make_harness: MakeHarness) -> Harness:
    return make_harness()
