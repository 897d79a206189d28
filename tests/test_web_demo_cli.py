"""``stratasync demo --web-app DIR``: the demo, then the app at /app/ and the Python agent in the
demo's store (the browser itself is tests/browser's)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

STRATASYNC = Path(sys.executable).parent / "stratasync"

pytestmark = pytest.mark.slow


def test_demo_serves_the_app_and_runs_the_agent_in_the_demo_store(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>the app</title>")
    process = subprocess.Popen(
        [
            str(STRATASYNC),
            "demo",
            "--web-app",
            str(tmp_path),
            "--agent-seconds",
            "4",
            "--agent-interval",
            "0.5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    lines: list[str] = []
    page = None
    for line in process.stdout:
        lines.append(line)
        found = re.match(
            r"Web app: (http://127\.0\.0\.1:\d+/app/\?storeId=(todo-demo-[0-9a-f]{6}))$", line.strip()
        )
        if found:
            page = found.group(1)
            assert f"Todo demo: store '{found.group(2)}'" in "".join(lines)  # the demo's own store
            response = httpx.get(page)
            assert response.status_code == 200
            assert response.text == "<!doctype html><title>the app</title>"
            redirected = httpx.get(page.replace("/app/", "/app"), follow_redirects=True)
            assert str(redirected.url) == page  # the query is kept
            break
    rest = process.stdout.read()
    assert process.wait(timeout=60) == 0, "".join(lines) + rest
    assert page is not None, "".join(lines)
    output = "".join(lines) + rest
    assert "both stores hold the same eventlog and tables: yes" in output
    assert "joined: 3 todos in the store" in output  # alice's and bob's
    assert re.search(r'agent  \+ "water the plants"', output)
    assert "  web app: http://127.0.0.1:" in output


def test_demo_refuses_a_folder_without_an_app(tmp_path: Path) -> None:
    completed = subprocess.run(
        [str(STRATASYNC), "demo", "--web-app", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert completed.returncode != 0
    assert "no index.html there" in completed.stderr


def test_the_build_says_so_when_node_is_missing(tmp_path: Path) -> None:
    """scripts/demo.sh runs the Python demo alone when the build exits 3 (no node/npm)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to("/usr/bin/dirname")  # all the script runs before it looks for node
    script = Path(__file__).parents[1] / "scripts" / "build-web-app.sh"
    completed = subprocess.run(
        ["/bin/bash", str(script)],
        capture_output=True,
        text=True,
        env={"PATH": str(bin_dir)},
        check=False,
    )
    assert completed.returncode == 3, completed.stderr
    assert "the web app needs node 20+ and npm, which are not installed" in completed.stderr
