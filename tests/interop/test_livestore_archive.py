"""The real LiveStore client against ``stratasync dev`` with a tiny segment size: most of the
eventlog is archived to S3 (while the client pushes, and before it pulls again), and the client
must not notice: ``paging-1000`` races the archiver, ``pull-existing`` reads a mostly archived log."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.devserver_process import running_dev_server
from tests.emulators import missing

DRIVER = Path(__file__).parent / "livestore_driver.mjs"
NODE_MODULES = Path(__file__).parent / "node_modules" / "@livestore" / "sync-cf"

pytestmark = pytest.mark.interop


def drive(node: str, url: str, scenario: str, store_id: str) -> dict[str, Any]:
    completed = subprocess.run(
        [node, str(DRIVER), url, scenario, store_id], capture_output=True, text=True, timeout=300, check=False
    )
    try:
        result: dict[str, Any] = json.loads(completed.stdout)
    except ValueError:
        pytest.fail(
            f"driver printed no JSON (exit {completed.returncode}):\n{completed.stdout}\n{completed.stderr}"
        )
    return result


def test_the_livestore_client_does_not_notice_the_archive() -> None:
    node = shutil.which("node")
    if node is None:
        missing("node is not installed, so the real LiveStore client cannot run")
    if not NODE_MODULES.exists():
        missing("the LiveStore client is not installed (npm ci in tests/interop)")
    assert node is not None
    store_id = f"interop-archive-{uuid.uuid4().hex[:8]}"
    with running_dev_server("--segment-events", "50") as (url, _):
        paging = drive(node, url, "paging-1000", store_id)
        assert paging["ok"], json.dumps(paging, indent=2)
        # The archiver runs asynchronously after the pushes; wait until it has sealed most of the log.
        deadline = time.monotonic() + 120
        while True:
            listing = httpx.get(f"{url}archive", params={"storeId": store_id}, timeout=30).json()
            if listing["pullFrom"] >= 900:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the archiver sealed only up to {listing['pullFrom']}")
            time.sleep(0.5)
        assert len(listing["segments"]) >= 9
        pulled = drive(node, url, "pull-existing", store_id)
        assert pulled["ok"], json.dumps(pulled, indent=2)
        assert [pull["cursor"] for pull in pulled["cursorPulls"]] == [1, 7, 333, 501, 995, 1000]
