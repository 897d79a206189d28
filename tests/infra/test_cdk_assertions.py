"""CDK-only checks with aws_cdk.assertions: packaging (code asset plus a dependency layer, both
arm64), and nothing that the SAM template does not have (no helper Lambdas, no wildcard grants)."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import pytest

from tests import emulators
from tests.infra.conftest import ROOT, Synthesized

with contextlib.suppress(ImportError):  # reported by the cdk_synth fixture (skip locally, fail in CI)
    from aws_cdk.assertions import Match, Template


@pytest.fixture(scope="module")
def template(cdk_synth: Synthesized) -> Any:
    return Template.from_json(cdk_synth.template)


def test_exactly_two_functions_and_one_dependency_layer(template: Any) -> None:
    template.resource_count_is("AWS::Lambda::Function", 2)  # no log-retention or auto-delete helpers
    template.resource_count_is("AWS::Lambda::LayerVersion", 1)
    template.has_resource_properties(
        "AWS::Lambda::LayerVersion",
        {"CompatibleArchitectures": ["arm64"], "CompatibleRuntimes": ["python3.13"]},
    )
    template.all_resources_properties(
        "AWS::Lambda::Function",
        {"Layers": [{"Ref": Match.string_like_regexp("^Dependencies")}], "Architectures": ["arm64"]},
    )


def test_function_code_is_the_functions_folder_without_the_client(cdk_synth: Synthesized) -> None:
    """The code asset holds the stratasync package (handlers included) and not the client symlink."""
    assets = [path for path in cdk_synth.template_path.parent.glob("asset.*") if path.is_dir()]
    code = [path for path in assets if (path / "stratasync" / "handlers" / "sync.py").exists()]
    assert len(code) == 1, assets
    assert (code[0] / "stratasync" / "handlers" / "archive.py").exists()
    assert not (code[0] / "stratasync" / "client").exists()
    assert not list(code[0].glob("*.egg-info"))
    assert not list(code[0].rglob("__pycache__"))


def test_no_resource_wildcards_outside_xray(template: Any) -> None:
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if statement["Resource"] == "*":
                assert all(action.startswith("xray:") for action in actions), statement


def test_the_dependency_layer_is_built_by_pip_for_arm64(tmp_path: Path) -> None:
    """The pip command the layer's local bundling runs (at deploy time) targets Lambda's platform."""
    try:
        from stratasync_infra.bundling import pip_command
    except ImportError:
        emulators.missing("aws-cdk-lib is not installed (bash scripts/install-infra-tools.sh)")
    command = pip_command(ROOT / "functions" / "requirements.txt", tmp_path / "python", "3.13")
    assert command[command.index("--python-version") + 1] == "3.13"
    assert command[command.index("--target") + 1] == str(tmp_path / "python")
    assert "--only-binary=:all:" in command
    platforms = {command[i + 1] for i, arg in enumerate(command) if arg == "--platform"}
    assert platforms
    assert all(platform.endswith("_aarch64") for platform in platforms)


#: Runtime dependencies of the Python client only (client/, not in the Lambda bundle).
CLIENT_ONLY = ("httpx", "tqdm")


def test_requirements_cover_the_runtime_dependencies() -> None:
    """functions/requirements.txt names the server extra and the protocol's pydantic, and the Lambda
    code (functions/, which holds nothing else since the client moved to client/) imports none
    of the client's dependencies."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [d for d in project["dependencies"] if not d.startswith(CLIENT_ONLY)]
    declared += project["optional-dependencies"]["server"]
    required = [line.strip() for line in (ROOT / "functions/requirements.txt").read_text().splitlines()]
    required = [line for line in required if line and not line.startswith("#")]
    assert sorted(required) == sorted(declared)
    for source in (ROOT / "functions").rglob("*.py"):
        for name in CLIENT_ONLY:
            assert not re.search(rf"^\s*(import|from) {name}\b", source.read_text(), re.MULTILINE), (
                source,
                name,
            )


def _tiny_wheel(folder: Path) -> Path:
    """A pure-Python wheel made by hand, so pip installs it offline."""
    import zipfile

    wheel = folder / "tinydep-1.0-py3-none-any.whl"
    files = {
        "tinydep/__init__.py": "VALUE = 42\n",
        "tinydep-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n",
        "tinydep-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    files["tinydep-1.0.dist-info/RECORD"] = (
        "".join(f"{name},,\n" for name in files) + "tinydep-1.0.dist-info/RECORD,,\n"
    )
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


def test_local_bundling_runs_pip_through_cdk(tmp_path: Path) -> None:
    """CDK calls PipLayerBundling.try_bundle (through jsii) at synth time with bundling on, and the
    layer asset then holds the requirements under python/ (a local wheel: no network)."""
    try:
        import aws_cdk as cdk
        from aws_cdk import aws_lambda as lambda_
        from stratasync_infra.bundling import PipLayerBundling
    except ImportError:
        emulators.missing("aws-cdk-lib is not installed (bash scripts/install-infra-tools.sh)")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{_tiny_wheel(tmp_path)}\n")
    source = tmp_path / "source"
    source.mkdir()
    (source / "requirements.txt").write_text(requirements.read_text())
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    stack = cdk.Stack(app, "bundling")
    lambda_.LayerVersion(
        stack,
        "Layer",
        code=lambda_.Code.from_asset(
            str(source),
            bundling=cdk.BundlingOptions(
                image=cdk.DockerImage.from_registry("unused"), local=PipLayerBundling(requirements, "3.13")
            ),
        ),
    )
    app.synth()
    installed = list((tmp_path / "cdk.out").glob("asset.*/python/tinydep/__init__.py"))
    assert len(installed) == 1
    assert installed[0].read_text() == "VALUE = 42\n"
