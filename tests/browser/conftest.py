"""Fixtures of the browser tier: the dev server serving the built web app, one Chromium, timings."""

from __future__ import annotations

import json
import os
import shutil
import statistics
from collections.abc import Iterator
from typing import Any

import pytest

from stratasync.devserver import DevServer, DevServerConfig
from tests.browser.chromium import PUPPETEER, WEB_APP_DIST, Chromium, chromium_path
from tests.emulators import missing

#: Measured figures, printed at the end of the run (and written to $BROWSER_TIMINGS if set).
TIMINGS: dict[str, list[float]] = {}


def record(name: str, seconds: float) -> None:
    TIMINGS.setdefault(name, []).append(round(seconds, 3))


@pytest.fixture(scope="session")
def web_server() -> Iterator[DevServer]:
    """``stratasync dev`` (embedded moto) serving the built app at /app/."""
    if not (WEB_APP_DIST / "index.html").is_file():
        missing("the web app is not built (bash scripts/build-web-app.sh)")
    log_path = os.environ.get("BROWSER_SERVER_LOG")  # the dev server's output, to debug a failure
    config = DevServerConfig(
        port=0, workers=2, web_app_dir=str(WEB_APP_DIST), log_level="INFO" if log_path else "WARNING"
    )
    with DevServer(config, out=open(log_path or os.devnull, "w")) as server:
        yield server


@pytest.fixture(scope="session")
def chromium() -> Iterator[Chromium]:
    node = shutil.which("node")
    executable = chromium_path()
    if node is None:
        missing("node is not installed, so puppeteer-core cannot drive Chromium")
    if executable is None:
        missing("Chromium is not installed (apt-get install chromium)")
    if not PUPPETEER.exists():
        missing("puppeteer-core is not installed (npm ci in tests/browser)")
    assert node is not None
    assert executable is not None
    browser = Chromium(node, executable)
    record("chromium launch", browser.launch_ms / 1000)
    try:
        yield browser
    finally:
        browser.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("browser tier: measured (seconds)")
    for name, values in TIMINGS.items():
        line = f"{name}: {' '.join(f'{value:.2f}' for value in values)}"
        if len(values) > 2:
            line += f" (median {statistics.median(values):.2f})"
        terminalreporter.write_line(line)
    if os.environ.get("BROWSER_TIMINGS"):
        with open(os.environ["BROWSER_TIMINGS"], "w") as file:
            json.dump(TIMINGS, file, indent=2)
