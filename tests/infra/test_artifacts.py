"""Each side installs only what it needs. The Lambda's requirements are exported from uv.lock (the
``lambda`` group); ``sam build`` (run here, offline, from the wheels scripts/install-infra-tools.sh
keeps in .venv-sam/wheelhouse) and the CDK layer's pip bundling put exactly the backend's packages
and those dependencies into the artifacts; a plain ``pip install stratasync`` pulls none of them."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import emulators
from tests.infra.conftest import ROOT, SAM_TEMPLATE, WHEELHOUSE, run, runtime_python, sam_cli

REQUIREMENTS = ROOT / "functions" / "requirements.txt"
EXPORT = ["export", "--frozen", "--only-group", "lambda", "--no-hashes"]
#: The Lambda code: the backend's portions of the stratasync namespace package, nothing else.
BACKEND_PACKAGES = {"auth", "core", "handlers", "protocol", "storage"}
#: Import names the Lambda needs (pydantic_core as an arm64 build for CPython 3.13).
LAMBDA_IMPORTS = {"pydantic", "pydantic_core", "aws_lambda_powertools", "aws_xray_sdk", "jwt", "cryptography"}
LAMBDA_IMPORTS |= {"boto3", "botocore"}
#: The client's and the dev tools' dependencies: never in a Lambda artifact.
NOT_IN_LAMBDA = {"httpx", "httpcore", "anyio", "h11", "tqdm", "moto", "werkzeug", "flask", "pytest"}
#: The server's dependencies: never pulled by `pip install stratasync` (the client).
SERVER_ONLY = {"boto3", "botocore", "aws-lambda-powertools", "aws-xray-sdk", "pyjwt", "cryptography", "moto"}


def _uv() -> str:
    uv = ROOT / ".venv" / "bin" / "uv"
    if uv.exists():
        return str(uv)
    found = shutil.which("uv")
    if found:
        return found
    emulators.missing("uv is not installed (bash scripts/install-infra-tools.sh)")
    raise AssertionError("unreachable")


def _requirements(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _names(text: str) -> set[str]:
    return {line.split("==")[0].strip().lower() for line in _requirements(text) if not line.startswith(" ")}


# ---------------------------------------------------------------------- one lock file


def test_lambda_requirements_are_exported_from_the_lock() -> None:
    """functions/requirements.txt is `uv export` of the lock's `lambda` group, and the lock is current
    with pyproject.toml (both offline: --frozen and --offline read no index)."""
    check = run([_uv(), "lock", "--check", "--offline"])
    assert check.returncode == 0, check.stdout + check.stderr
    exported = run([_uv(), *EXPORT])
    assert exported.returncode == 0, exported.stderr
    assert _requirements(REQUIREMENTS.read_text()) == _requirements(exported.stdout), (
        "run: uv export --frozen --only-group lambda --no-hashes --output-file functions/requirements.txt"
    )
    assert all("==" in line for line in _requirements(exported.stdout) if not line.startswith(" "))


def test_lambda_group_is_the_server_extra_and_pydantic() -> None:
    """The `lambda` group names what the functions import: the `server` extra plus the protocol's
    pydantic (from the base dependencies), not the client's httpx and tqdm."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    group = project["dependency-groups"]["lambda"]
    (pydantic,) = [d for d in project["project"]["dependencies"] if d.startswith("pydantic")]
    assert sorted(group) == sorted([pydantic, *project["project"]["optional-dependencies"]["server"]])
    names = _names(REQUIREMENTS.read_text())
    assert not names & NOT_IN_LAMBDA, names & NOT_IN_LAMBDA


def test_the_client_installs_no_server_dependency() -> None:
    """`pip install stratasync` (no extras) resolves, in the lock, to the client's closure only."""
    exported = run([_uv(), "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes"])
    assert exported.returncode == 0, exported.stderr
    names = _names(exported.stdout)
    assert {"pydantic", "httpx", "tqdm"} <= names
    assert not names & SERVER_ONLY, names & SERVER_ONLY


# ---------------------------------------------------------------------- the artifacts


@pytest.fixture(scope="module")
def wheelhouse() -> Iterator[str]:
    """.venv-sam/wheelhouse served on a loopback port: pip treats a local folder's wheels as source
    trees (which ``sam build`` then rebuilds one by one), but downloads from a URL as from PyPI."""
    if not (WHEELHOUSE / "requirements.txt").exists():
        emulators.missing(f"{WHEELHOUSE} is missing (bash scripts/install-infra-tools.sh)")
    if (WHEELHOUSE / "requirements.txt").read_text() != REQUIREMENTS.read_text():
        emulators.missing(f"{WHEELHOUSE} is for other requirements (bash scripts/install-infra-tools.sh)")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(WHEELHOUSE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _offline_pip(wheelhouse: str) -> dict[str, str]:
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": wheelhouse, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


@pytest.fixture(scope="module")
def sam_build(wheelhouse: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sam build`` of template.yaml, no container: python3.13 (the runtime's) on PATH, pip offline."""
    python = runtime_python()
    build_dir = tmp_path_factory.mktemp("sam-build")
    env = {**_offline_pip(wheelhouse), "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sam_cli(), "build", "--template", str(SAM_TEMPLATE), "--build-dir", str(build_dir)]
    result = run([*command, "--base-dir", str(ROOT), "--cache-dir", str(build_dir / ".cache")], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return build_dir


def _assert_lambda_dependencies(folder: Path) -> None:
    present = {path.name.split("-")[0].lower() for path in folder.iterdir()}
    present |= {path.stem.split(".")[0].lower() for path in folder.iterdir() if path.suffix == ".py"}
    assert present >= LAMBDA_IMPORTS, LAMBDA_IMPORTS - present
    assert not present & NOT_IN_LAMBDA, present & NOT_IN_LAMBDA
    native = list(folder.glob("pydantic_core/*.so"))
    assert native
    assert all("aarch64" in path.name and "313" in path.name for path in native), native


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


@pytest.mark.parametrize("function", ["SyncFunction", "ArchiveFunction"])
def test_sam_artifact_holds_the_backend_and_its_dependencies_only(
    sam_build: Path, function: str, record_property: Any
) -> None:
    artifact = sam_build / function
    packages = {path.name for path in (artifact / "stratasync").iterdir() if path.name != "__pycache__"}
    assert packages == BACKEND_PACKAGES  # no client, devserver, cli, testing
    assert not (artifact / "stratasync" / "__init__.py").exists()  # a namespace package, as installed
    _assert_lambda_dependencies(artifact)
    built = (sam_build / "template.yaml").read_text()
    assert "SnapStart" in built
    assert "AutoPublishAlias: live" in built
    record_property("bytes", _size(artifact))


def test_cdk_layer_holds_the_lambda_dependencies_only(wheelhouse: str, tmp_path: Path) -> None:
    """The layer's bundling command (pip for manylinux arm64 and CPython 3.13), run offline."""
    try:
        from stratasync_infra.bundling import pip_command
    except ImportError:
        emulators.missing("aws-cdk-lib is not installed (bash scripts/install-infra-tools.sh)")
    target = tmp_path / "python"
    result = run(pip_command(REQUIREMENTS, target, "3.13"), env=_offline_pip(wheelhouse))
    assert result.returncode == 0, result.stdout + result.stderr
    _assert_lambda_dependencies(target)
    assert not (target / "stratasync").exists()  # the code is the function's own asset
