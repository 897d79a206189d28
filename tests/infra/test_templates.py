"""Offline validation of both templates: cfn-lint (errors and warnings fail), ``sam validate
--lint``, and CDK's own template validation during ``app.synth()``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests import emulators
from tests.infra.conftest import ROOT, SAM_TEMPLATE, Synthesized

#: CDK adds a DependsOn on the function's role next to the GetAtt it already has: harmless, CDK's own.
CDK_IGNORED_CHECKS = ["W3005"]
#: Offline, the SAM translator inlines CorsAllowOrigin's default into the API's OpenAPI body (on
#: deploy it inlines the value given), so the expanded template no longer refers to the parameter.
SAM_TRANSFORMED_IGNORED_CHECKS = ["W2001"]


def _cfn_lint() -> list[str]:
    for candidate in (Path(sys.executable).with_name("cfn-lint"), shutil.which("cfn-lint")):
        if candidate and Path(candidate).exists():
            return [str(candidate)]
    emulators.missing("cfn-lint is not installed (bash scripts/install-infra-tools.sh)")
    raise AssertionError("unreachable")


def _sam() -> str:
    sam = ROOT / ".venv-sam" / "bin" / "sam"
    if sam.exists():
        return str(sam)
    found = shutil.which("sam")
    if found:
        return found
    emulators.missing("the SAM CLI is not installed in .venv-sam (bash scripts/install-infra-tools.sh)")
    raise AssertionError("unreachable")


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


def test_cfn_lint_passes_the_sam_template() -> None:
    result = _run([*_cfn_lint(), str(SAM_TEMPLATE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_passes_the_cdk_template(cdk_synth: Synthesized) -> None:
    result = _run([*_cfn_lint(), "--ignore-checks", *CDK_IGNORED_CHECKS, "--", str(cdk_synth.template_path)])
    assert result.returncode == 0, result.stdout + result.stderr


def _sam_to_cfn(source: Path, target: Path) -> Path:
    """template.yaml through AWS's SAM translator (infra/sam_to_cfn.py, run with .venv-sam's python)."""
    python = Path(_sam()).with_name("python")
    result = _run([str(python), str(ROOT / "infra" / "sam_to_cfn.py"), str(source), str(target)])
    assert result.returncode == 0, result.stdout + result.stderr
    return target


def test_cfn_lint_passes_the_transformed_sam_template(tmp_path: Path) -> None:
    """cfn-lint 1.x checks SAM resources against SAM's schema only; the transform's output shows the
    rest (Globals applied, roles, policies, API stage) to cfn-lint's full rule set."""
    transformed = _sam_to_cfn(SAM_TEMPLATE, tmp_path / "template.json")
    result = _run([*_cfn_lint(), "--ignore-checks", *SAM_TRANSFORMED_IGNORED_CHECKS, "--", str(transformed)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    """The lint step is real: a wrong runtime (in Globals) and a dangling reference (in a function's
    policy) are reported, which cfn-lint on the untransformed SAM template lets through."""
    broken = SAM_TEMPLATE.read_text().replace("Runtime: python3.13", "Runtime: python3.99")
    broken = broken.replace("!GetAtt EventTable.Arn", "!GetAtt EventTabel.Arn", 1)
    path = tmp_path / "template.yaml"
    path.write_text(broken)
    transformed = _sam_to_cfn(path, tmp_path / "template.json")
    result = _run([*_cfn_lint(), "--ignore-checks", *SAM_TRANSFORMED_IGNORED_CHECKS, "--", str(transformed)])
    assert result.returncode != 0
    assert "python3.99" in result.stdout
    assert "EventTabel" in result.stdout


def test_sam_validate_lint() -> None:
    result = _run([_sam(), "validate", "--lint", "--region", "us-east-1", "--template", str(SAM_TEMPLATE)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_cdk_synth_passes_cdks_own_validation(cdk_synth: Synthesized) -> None:
    """CDK 2's built-in CloudFormation validation ran and found nothing we have not acknowledged."""
    reports = cdk_synth.validation_report.get("pluginReports", [])
    assert reports, "CDK wrote no validation report"
    for report in reports:
        assert report["conclusion"] == "success", report
        assert report["violations"] == [], report["violations"]
