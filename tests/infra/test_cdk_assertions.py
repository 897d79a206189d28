"""CDK-only checks with aws_cdk.assertions: packaging (code asset plus a dependency layer, both
arm64), and nothing that the SAM template does not have (no helper Lambdas, no wildcard grants)."""

from __future__ import annotations

import contextlib
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


def test_requirements_cover_the_runtime_dependencies() -> None:
    """functions/requirements.txt names every runtime dependency of pyproject.toml but the client's."""
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    required = [line.strip() for line in (ROOT / "functions/requirements.txt").read_text().splitlines()]
    required = [line for line in required if line and not line.startswith("#")]
    assert sorted(required) == sorted(d for d in declared if not d.startswith("httpx"))
