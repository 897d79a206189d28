"""Each side installs only what it needs. The Lambda's requirements are exported from uv.lock (the
``lambda`` group); ``sam build`` and the CDK layer's pip bundling (run offline from the wheels
scripts/install-infra-tools.sh keeps in .venv-sam/wheelhouse, see conftest.Builds) put exactly the
backend's packages and those dependencies into the artifacts; a plain ``pip install stratasync``
pulls none of them. These tests run after the other infra tests, while the builds ran meanwhile."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests import emulators
from tests.infra.conftest import ROOT, Builds, run

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
def sam_build(infra_builds: Builds) -> Path:
    """``sam build`` of template.yaml, no container (started in the background: conftest.Builds)."""
    return infra_builds.wait("sam")


@pytest.fixture(scope="module")
def cdk_layer(infra_builds: Builds) -> Path:
    """The layer's bundling command, run offline (started in the background: conftest.Builds)."""
    return infra_builds.wait("layer")


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


@pytest.mark.parametrize(
    "function", ["SyncFunction", "ArchiveFunction", "WebSocketFunction", "FanoutFunction"]
)
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


def test_cdk_layer_holds_the_lambda_dependencies_only(cdk_layer: Path) -> None:
    """The layer's bundling command (pip for manylinux arm64 and CPython 3.13), run offline."""
    _assert_lambda_dependencies(cdk_layer)
    assert not (cdk_layer / "stratasync").exists()  # the code is the function's own asset
    assert not list(cdk_layer.rglob("*.pyc"))  # bytecode for the deploying machine's Python: dead weight
