"""Offline validation of both templates: template.yaml is what the CDK stack makes; cfn-lint (errors and
warnings fail) on it, on its SAM expansion and on the CDK template; ``sam validate --lint``; and CDK's
own template validation during ``app.synth()``."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests import emulators
from tests.infra.conftest import SAM_TEMPLATE, Synthesized, run, sam_cli, sam_to_cfn

#: CDK adds a DependsOn on the function's role next to the GetAtt it already has: harmless, CDK's own.
CDK_IGNORED_CHECKS = ["W3005"]


def _cfn_lint() -> list[str]:
    for candidate in (Path(sys.executable).with_name("cfn-lint"), shutil.which("cfn-lint")):
        if candidate and Path(candidate).exists():
            return [str(candidate)]
    emulators.missing("cfn-lint is not installed (bash scripts/install-infra-tools.sh)")
    raise AssertionError("unreachable")


def test_template_yaml_is_what_the_stack_makes() -> None:
    """One source: template.yaml is StratasyncStack with SAM packaging (infra/stratasync_infra/sam.py)."""
    try:
        from stratasync_infra.sam import render
    except ImportError:
        emulators.missing("aws-cdk-lib is not installed (bash scripts/install-infra-tools.sh)")
    assert SAM_TEMPLATE.read_text() == render(), "run .venv/bin/python infra/stratasync_infra/sam.py"


def test_cfn_lint_passes_the_sam_template() -> None:
    result = run([*_cfn_lint(), str(SAM_TEMPLATE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_passes_the_cdk_template(cdk_synth: Synthesized) -> None:
    result = run([*_cfn_lint(), "--ignore-checks", *CDK_IGNORED_CHECKS, "--", str(cdk_synth.template_path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_passes_the_transformed_sam_template(tmp_path: Path) -> None:
    """cfn-lint 1.x checks SAM resources against SAM's schema only; the transform's output shows the
    rest (the functions, their versions and aliases, the invoke config) to cfn-lint's full rule set."""
    transformed = sam_to_cfn(SAM_TEMPLATE, tmp_path / "template.json")
    result = run([*_cfn_lint(), "--", str(transformed)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    """The lint step is real: a wrong runtime and a dangling reference (in a role's policy) are reported."""
    broken = SAM_TEMPLATE.read_text().replace("Runtime: python3.13", "Runtime: python3.99")
    broken = broken.replace("!GetAtt 'EventTable.Arn'", "!GetAtt 'EventTabel.Arn'", 1)
    path = tmp_path / "template.yaml"
    path.write_text(broken)
    transformed = sam_to_cfn(path, tmp_path / "template.json")
    result = run([*_cfn_lint(), "--", str(transformed)])
    assert result.returncode != 0
    assert "python3.99" in result.stdout
    assert "EventTabel" in result.stdout


def test_sam_validate_lint() -> None:
    result = run([sam_cli(), "validate", "--lint", "--region", "us-east-1", "--template", str(SAM_TEMPLATE)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_cdk_synth_passes_cdks_own_validation(cdk_synth: Synthesized) -> None:
    """CDK 2's built-in CloudFormation validation ran and found nothing we have not acknowledged."""
    reports = cdk_synth.validation_report.get("pluginReports", [])
    assert reports, "CDK wrote no validation report"
    for report in reports:
        assert report["conclusion"] == "success", report
        assert report["violations"] == [], report["violations"]
