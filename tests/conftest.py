"""Shared fixtures: AWS emulators (embedded moto server, DynamoDB Local) and a dev server."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from stratasync.devserver import DevServer, DevServerConfig
from stratasync.devserver.embedded_moto import EmbeddedMoto
from stratasync.storage.dynamodb import create_table, make_client
from tests import emulators

TABLE = "stratasync-test"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """An embedded moto server (each request atomic) with the test table."""
    with EmbeddedMoto() as moto:
        create_table(make_client(moto.endpoint), TABLE)
        yield moto.endpoint


@pytest.fixture(scope="session")
def dynamodb_local_endpoint() -> Iterator[str]:
    """DynamoDB Local (java) with the test table."""
    with emulators.dynamodb_local() as endpoint:
        create_table(make_client(endpoint), TABLE)
        yield endpoint


@pytest.fixture(scope="session")
def seaweedfs_endpoint() -> Iterator[str]:
    """SeaweedFS's S3 gateway (checks signatures, expiry and checksums), credentials testing/testing."""
    with emulators.seaweedfs() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def dev_server() -> Iterator[DevServer]:
    """``stratasync dev`` (embedded moto, 2 worker processes) on a free port."""
    with DevServer(DevServerConfig(port=0, workers=2), out=open(os.devnull, "w")) as server:
        yield server


#: Markers whose tests start an emulator, a node process or long runs: never in the fast lane.
_SLOW_MARKERS = {"interop", "dynamodb_local", "seaweedfs", "faults", "fuzz", "browser", "slow"}
#: Fixtures that start a dev server (worker processes) for the test.
_SLOW_FIXTURES = {"dev_server"}
#: Modules whose tests start ``stratasync dev`` or other processes themselves.
_SLOW_MODULES = (
    "tests/test_devserver.py",
    "tests/test_archive_devserver.py",
    "tests/client/test_cli.py",
    "tests/client/test_crash.py",
    "tests/client/test_contention.py",
    "tests/client/test_interop_python_js.py",
)
#: The archive conformance suite on moto's S3 and DynamoDB (about 5 minutes on 2 cores): the same
#: suite runs fast in memory and for real on DynamoDB Local and SeaweedFS.
_SLOW_CLASSES = ("TestArchiveOnDynamoDBAndS3Moto",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark as ``slow`` what the fast lane (``scripts/test.sh --fast``) leaves out: emulator,
    interop, fault, fuzz and infrastructure tiers, and tests that need a running dev server."""
    slow = pytest.mark.slow
    for item in items:
        marked = {mark.name for mark in item.iter_markers()}
        fixtures = set(getattr(item, "fixturenames", ()))
        path = item.nodeid.split("::")[0]
        if (
            marked & _SLOW_MARKERS
            or fixtures & _SLOW_FIXTURES
            or path.startswith("tests/infra/")
            or path in _SLOW_MODULES
            or any(f"::{name}::" in item.nodeid for name in _SLOW_CLASSES)
        ):
            item.add_marker(slow)
