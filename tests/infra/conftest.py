"""The two deployable templates as plain CloudFormation dicts, both made by the one CDK stack
(infra/stratasync_infra): template.yaml (SAM packaging) expanded by AWS's SAM translator, and the CDK
app's template (CDK packaging). Synthesized once per session, assets not bundled."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import emulators

ROOT = Path(__file__).resolve().parents[2]
SAM_TEMPLATE = ROOT / "template.yaml"
INFRA = ROOT / "infra"
STACK_NAME = "stratasync"
WHEELHOUSE = ROOT / ".venv-sam" / "wheelhouse"

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
if str(INFRA) not in sys.path:
    sys.path.insert(0, str(INFRA))


@dataclass(frozen=True)
class Synthesized:
    template: dict[str, Any]
    template_path: Path
    validation_report: dict[str, Any]


def run(command: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": "us-east-1",
        **options.pop("env", {}),
    }
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT, **options)


def sam_cli() -> str:
    sam = ROOT / ".venv-sam" / "bin" / "sam"
    if sam.exists():
        return str(sam)
    found = shutil.which("sam")
    if found:
        return found
    emulators.missing("the SAM CLI is not installed in .venv-sam (bash scripts/install-infra-tools.sh)")
    raise AssertionError("unreachable")


def runtime_python() -> Path:
    """The functions' runtime's python (3.13), which ``sam build`` runs: on PATH, or pyenv's."""
    candidates = [os.environ.get("PYTHON313", ""), shutil.which("python3.13") or ""]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 13)"], capture_output=True
        )
        if probe.returncode == 0:
            return Path(candidate)
    emulators.missing("python3.13 (the functions' runtime) is not installed, so sam build cannot run")
    raise AssertionError("unreachable")


def sam_to_cfn(source: Path, target: Path) -> Path:
    """A SAM template through AWS's SAM translator (infra/sam_to_cfn.py, run with .venv-sam's python)."""
    python = Path(sam_cli()).with_name("python")
    result = run([str(python), str(INFRA / "sam_to_cfn.py"), str(source), str(target)])
    assert result.returncode == 0, result.stdout + result.stderr
    return target


@pytest.fixture(scope="session")
def sam_source() -> dict[str, Any]:
    """template.yaml as written, short-form intrinsics (!Ref, !Sub, ...) in their long JSON form."""
    try:
        from cfnlint.decode import cfn_yaml
    except ImportError:
        emulators.missing("cfn-lint is not installed (bash scripts/install-infra-tools.sh)")
    loaded: dict[str, Any] = json.loads(json.dumps(cfn_yaml.load(str(SAM_TEMPLATE))))
    return loaded


@pytest.fixture(scope="session")
def sam_transformed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """template.yaml as CloudFormation deploys it: after the SAM transform (versions, aliases, ...)."""
    target = sam_to_cfn(SAM_TEMPLATE, tmp_path_factory.mktemp("sam") / "template.json")
    loaded: dict[str, Any] = json.loads(target.read_text())
    return loaded


@pytest.fixture(scope="session")
def cdk_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """``app.synth()`` of the CDK app (infra/cdk.json's feature flags), with CDK's built-in template
    validation on, the dependency layer's pip bundling skipped (``aws:cdk:bundling-stacks=[]``)."""
    try:
        import aws_cdk as cdk
        from stratasync_infra import StratasyncStack
        from stratasync_infra.sam import cdk_context
    except ImportError:
        emulators.missing("aws-cdk-lib is not installed (bash scripts/install-infra-tools.sh)")
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(outdir=str(outdir), context={**cdk_context(), "aws:cdk:bundling-stacks": []})
    StratasyncStack(app, STACK_NAME)
    assembly = app.synth()
    artifact = assembly.get_stack_by_name(STACK_NAME)
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Synthesized(dict(artifact.template), outdir / artifact.template_file, report)
