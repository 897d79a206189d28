"""The real LiveStore WebSocket client (``makeWsSync`` from ``@livestore/sync-cf@0.4.0`` on node,
``globalThis.WebSocket`` from ``ws``) live through ``stratasync dev``: its emulated API Gateway
WebSocket API in front of the real ws function, and the fanout function fed by the eventlog's
DynamoDB stream.

One node process runs the scenarios in a row against the session's dev server (the one the
Python client's WebSocket tests use too), so the suite pays for one server start and one client
load; the reconnect scenario runs in a second process while this test closes the connections
from the server side through ``@connections`` (``DeleteConnection``), as a server on AWS would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest

from stratasync.devserver import DevServer
from tests.devserver_process import running_dev_server
from tests.emulators import missing

DRIVER = Path(__file__).parent / "livestore_ws_driver.mjs"
NODE_MODULES = Path(__file__).parent / "node_modules"

pytestmark = pytest.mark.interop

#: The scenarios of the shared run (see README.md and the driver).
SCENARIOS = (
    "push-echo",
    "pages-then-live",
    "cross-connection",
    "two-clients-converge",
    "catchup-race",
    # cheap (about 1 s each): the error shapes, Interrupt, the 128 KB messages and the composite
    # client, an HTTP client beside. Left to `all`: concurrent-pushers (about 50 s on 2 loaded
    # cores) and ws-push-over-32k (about 10 s: the client's reconnect after the 1009 close).
    "server-ahead",
    "interrupt",
    "composite-large-events",
    "ws-and-http-converge",
)


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        missing("node is not installed, so the real LiveStore client cannot run")
    if not (NODE_MODULES / "@livestore" / "sync-cf").exists() or not (NODE_MODULES / "ws").exists():
        missing("the LiveStore client is not installed (npm ci in tests/interop)")
    assert node is not None
    return node


def _ws_url(dev_server: DevServer) -> str:
    if dev_server.websocket is None:
        pytest.skip("this dev server runs without WebSocket")
    return dev_server.url


def _report(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        report: dict[str, Any] = json.loads(completed.stdout)
    except ValueError:
        pytest.fail(
            f"driver printed no JSON (exit {completed.returncode}):\n"
            f"{completed.stdout}\n{completed.stderr[-3000:]}"
        )
    return report


def _run_scenarios(node: str, url: str) -> dict[str, dict[str, Any]]:
    """The shared scenarios in one driver process: each one's result by name."""
    completed = subprocess.run(
        [node, str(DRIVER), url, ",".join(SCENARIOS)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "DRIVER_TIMEOUT_MS": "60000"},
    )
    results: dict[str, dict[str, Any]] = _report(completed)["results"]
    return results


@pytest.fixture(scope="module")
def ws_results(dev_server: DevServer) -> dict[str, dict[str, Any]]:
    return _run_scenarios(_node(), _ws_url(dev_server))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_livestore_ws_scenario(ws_results: dict[str, dict[str, Any]], scenario: str) -> None:
    result = ws_results[scenario]
    assert result["ok"], json.dumps(result, indent=2)


def test_a_push_during_a_catch_up_reached_the_catching_up_pull(ws_results: dict[str, dict[str, Any]]) -> None:
    """The race of ws-transport.md §6 really happened (and the scenario saw no duplicate)."""
    result = ws_results["catchup-race"]
    assert result["ok"], json.dumps(result, indent=2)
    assert result["pushesDuringCatchup"] >= 1


@pytest.mark.parametrize("mode", ["--in-process", "--memory"])
def test_the_scenarios_through_an_in_process_dev_server(mode: str) -> None:
    """The same scenarios through ``stratasync dev --in-process``: the functions in threads of the
    server's process, their DynamoDB and ``@connections`` calls served without a socket; and
    through ``--memory``, the eventlog and connections in memory, fanned out from its commit feed."""
    node = _node()
    with running_dev_server(mode) as (url, lines):
        results = _run_scenarios(node, url)
    assert "thread(s) per Lambda function" in "".join(lines)
    if mode == "--memory":
        assert "this process's memory" in "".join(lines)
    failed = {name: result for name, result in results.items() if not result["ok"]}
    assert set(results) == set(SCENARIOS)
    assert not failed, json.dumps(failed, indent=2)
    assert results["catchup-race"]["pushesDuringCatchup"] >= 1


def test_reconnect_after_the_server_closes_the_socket(dev_server: DevServer) -> None:
    """The server closes every WebSocket connection twice (``DeleteConnection``, close 1000):
    the client gets ``IsOfflineError``, reconnects, re-pulls from its cursor, and its live pull
    holds every event once, in order."""
    node, url = _node(), _ws_url(dev_server)
    api = dev_server.websocket
    assert api is not None
    management = boto3.client("apigatewaymanagementapi", endpoint_url=dev_server.ws_endpoint)
    stop = threading.Event()
    closed: list[str] = []

    def kick() -> None:
        # Twice, 2.5 s apart, starting 2 s after the client's socket opened (node and LiveStore
        # take seconds to load): each close in a row grows the client's reconnect back-off (1 s,
        # 2 s, 4 s, ...), so more closes would mostly measure the back-off.
        while not api.connection_ids():
            if stop.wait(0.2):
                return
        for _ in range(2):
            if stop.wait(2.0 if not closed else 2.5):
                return
            for connection_id in api.connection_ids():
                try:
                    management.delete_connection(ConnectionId=connection_id)
                    closed.append(connection_id)
                except management.exceptions.GoneException:
                    pass

    kicker = threading.Thread(target=kick, daemon=True)
    kicker.start()
    try:
        completed = subprocess.run(
            [node, str(DRIVER), url, "reconnect"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "DRIVER_RECONNECT_SECONDS": "6", "DRIVER_TIMEOUT_MS": "60000"},
        )
    finally:
        stop.set()
        kicker.join(timeout=10)
    report = _report(completed)
    assert report["ok"], json.dumps(report, indent=2) + completed.stderr[-3000:]
    assert report["reconnects"] >= 1
    assert closed
