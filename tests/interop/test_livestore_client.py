"""The real LiveStore client (``@livestore/sync-cf@0.4.0`` on node) against ``stratasync dev``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.devserver_process import running_dev_server
from tests.emulators import missing

DRIVER = Path(__file__).parent / "livestore_driver.mjs"
NODE_MODULES = Path(__file__).parent / "node_modules" / "@livestore" / "sync-cf"

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def livestore_results() -> dict[str, dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        missing("node is not installed, so the real LiveStore client cannot run")
    if not NODE_MODULES.exists():
        missing("the LiveStore client is not installed (npm ci in tests/interop)")
    assert node is not None
    # HTTP only: with WebSocket on, a push refuses any event too large for one API Gateway
    # WebSocket message (~119 KB), and upstream-few-large-60x120k pushes 120 KB events.
    with running_dev_server("--no-websocket") as (url, _):
        completed = subprocess.run(
            [node, str(DRIVER), url, "all"], capture_output=True, text=True, timeout=300, check=False
        )
    try:
        report = json.loads(completed.stdout)
    except ValueError:
        pytest.fail(
            f"driver printed no JSON (exit {completed.returncode}):\n{completed.stdout}\n{completed.stderr}"
        )
    results: dict[str, dict[str, Any]] = report["results"]
    return results


@pytest.mark.parametrize(
    "scenario",
    [
        "ping",
        "empty-pull",
        "push-pull",
        "server-ahead",
        "backend-id-mismatch",
        "paging-1000",
        "upstream-pull-with-cursor",
        "upstream-live-pull-no-more",
        "upstream-live-pull-later-event",
        "upstream-non-live-multiple",
        "upstream-few-large-60x120k",
        "upstream-many-small-1800x1k",
    ],
)
def test_livestore_scenario(livestore_results: dict[str, dict[str, Any]], scenario: str) -> None:
    result = livestore_results[scenario]
    assert result["ok"], json.dumps(result, indent=2)


def test_server_ahead_error_carries_the_real_head(livestore_results: dict[str, dict[str, Any]]) -> None:
    text = json.dumps(livestore_results["server-ahead"])
    assert '"minimumExpectedNum": 2' in text
    assert '"providedNum": 0' in text


def test_backend_id_mismatch_names_both_ids(livestore_results: dict[str, dict[str, Any]]) -> None:
    text = json.dumps(livestore_results["backend-id-mismatch"])
    assert '"received": "wrong-backend-id"' in text
