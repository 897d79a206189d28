"""A headless Chromium (Debian's, driven by puppeteer-core in ``driver.mjs``) for the browser tests."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
DRIVER = HERE / "driver.mjs"
PUPPETEER = HERE / "node_modules" / "puppeteer-core"
ROOT = HERE.parents[1]
WEB_APP_DIST = ROOT / "examples" / "web-todo" / "dist"


def chromium_path() -> str | None:
    """Debian's Chromium (``apt-get install chromium``), or ``$CHROMIUM``."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium")


class DriverError(RuntimeError):
    """A driver command failed (its JavaScript error is the message)."""


class Chromium:
    """One Chromium process; :meth:`call` runs a driver command and returns its result."""

    def __init__(self, node: str, chromium: str, timeout: float = 90.0) -> None:
        self.stderr: list[str] = []
        self.process = subprocess.Popen(
            [node, str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "CHROMIUM": chromium},
        )
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self._next_id = 0
        hello = self._answer(timeout)
        if not hello.get("ready"):
            raise DriverError(f"the driver did not start: {hello}")
        self.chromium_pid: int | None = hello.get("pid")
        self.launch_ms: float = hello["launchMs"]
        self.version: str = hello.get("version", "")

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with contextlib.suppress(ValueError):
                self._answers.put(json.loads(line))
        self._answers.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def _answer(self, timeout: float) -> dict[str, Any]:
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise DriverError(f"no answer from the driver in {timeout} s") from None
        if answer is None:
            raise DriverError("the driver exited:\n" + "".join(self.stderr[-40:]))
        return answer

    def call(self, cmd: str, timeout: float = 120.0, **args: Any) -> dict[str, Any]:
        self._next_id += 1
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"id": self._next_id, "cmd": cmd, **args}) + "\n")
        self.process.stdin.flush()
        answer = self._answer(timeout)
        assert answer.get("id") == self._next_id, answer
        if not answer["ok"]:
            raise DriverError(f"{cmd} {args}: {answer['error']}")
        result: dict[str, Any] = answer["result"]
        return result

    def close(self) -> None:
        """Close the browser; kill what is left (puppeteer starts Chromium in its own process group)."""
        with contextlib.suppress(Exception):
            self.call("close", timeout=10)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.chromium_pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.chromium_pid, signal.SIGKILL)


def wait_until(check: Any, timeout: float = 30.0, interval: float = 0.02) -> float:
    """Poll ``check()`` until it is truthy; the seconds it took (AssertionError after ``timeout``)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not true after {timeout} s: {check}")
        time.sleep(interval)
    return time.monotonic() - started
