"""Run ``stratasync dev`` as a real subprocess (the way a user does) for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.emulators import free_port

STRATASYNC = Path(sys.executable).parent / "stratasync"


def start_dev_process(
    port: int, *args: str, timeout: float = 90.0, new_session: bool = False
) -> tuple[subprocess.Popen[str], list[str]]:
    """Start ``stratasync dev --port PORT ARGS`` and wait until it serves.

    Returns the process and its output lines, which a reader thread keeps appending to (so a
    chatty server never blocks on a full pipe). ``new_session``: its own process group, so a
    kill of the group takes its Lambda workers too.
    """
    process = subprocess.Popen(
        [str(STRATASYNC), "dev", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=new_session,
    )
    lines: list[str] = []
    ready = threading.Event()

    def collect() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "press Ctrl-C" in line:
                ready.set()
        ready.set()  # it exited

    threading.Thread(target=collect, daemon=True).start()
    if not ready.wait(timeout) or process.poll() is not None:
        process.kill()
        raise RuntimeError("stratasync dev did not start:\n" + "".join(lines))
    return process, lines


def stop_dev_process(process: subprocess.Popen[str]) -> None:
    """Ctrl-C-like stop (SIGTERM), then SIGKILL if it lingers."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@contextmanager
def running_dev_server(*extra_args: str) -> Iterator[tuple[str, list[str]]]:
    """``stratasync dev`` on a free port; yields its URL and its output lines, still growing."""
    port = free_port()
    process, lines = start_dev_process(port, *extra_args)
    try:
        yield f"http://127.0.0.1:{port}/", lines
    finally:
        stop_dev_process(process)
