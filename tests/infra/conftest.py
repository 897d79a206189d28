"""The two descriptions of the stack as plain CloudFormation dicts: template.yaml (SAM, as written)
and the CDK app's synthesized template (synthesized once per session, assets not bundled)."""

from __future__ import annotations

import json
import os
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

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
if str(INFRA) not in sys.path:
    sys.path.insert(0, str(INFRA))


@dataclass(frozen=True)
class Synthesized:
    template: dict[str, Any]
    template_path: Path
    validation_report: dict[str, Any]


@pytest.fixture(scope="session")
def sam_template() -> dict[str, Any]:
    """template.yaml with its short-form intrinsics (!Ref, !Sub, ...) in their long JSON form."""
    try:
        from cfnlint.decode import cfn_yaml
    except ImportError:
        emulators.missing("cfn-lint is not installed (pip install -e '.[infra]')")
    loaded: dict[str, Any] = json.loads(json.dumps(cfn_yaml.load(str(SAM_TEMPLATE))))
    return loaded


@pytest.fixture(scope="session")
def cdk_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """``app.synth()`` of the CDK app, with CDK's built-in template validation on, the
    dependency layer's pip bundling skipped (``aws:cdk:bundling-stacks=[]``)."""
    try:
        import aws_cdk as cdk
        from stratasync_infra import StratasyncStack
    except ImportError:
        emulators.missing("aws-cdk-lib is not installed (bash scripts/install-infra-tools.sh)")
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(outdir=str(outdir), context={"aws:cdk:bundling-stacks": []})
    StratasyncStack(app, STACK_NAME)
    assembly = app.synth()
    artifact = assembly.get_stack_by_name(STACK_NAME)
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Synthesized(dict(artifact.template), outdir / artifact.template_file, report)
