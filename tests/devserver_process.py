"""Run ``stratasync dev`` as a real subprocess (the way a user does) for end-to-end tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.emulators import free_port

STRATASYNC = Path(sys.executable).parent / "stratasync"


@contextmanager
def running_dev_server(*extra_args: str) -> Iterator[tuple[str, list[str]]]:
    """Start ``stratasync dev`` on a free port; yields its URL and the lines it printed so far."""
    port = free_port()
    process = subprocess.Popen(
        [str(STRATASYNC), "dev", "--port", str(port), *extra_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError("stratasync dev exited early:\n" + "".join(lines))
            lines.append(line)
            if "press Ctrl-C" in line:
                break
        match = re.search(r"listening on (http://\S+)", "".join(lines))
        assert match, "".join(lines)
        yield match.group(1), lines
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
