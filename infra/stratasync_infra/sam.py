"""``template.yaml``, the SAM template, is the CDK stack synthesized with :class:`SamPackaging`.

``python infra/stratasync_infra/sam.py`` (with the infra tools in .venv) writes it; ``--check`` fails
if the file differs from what the stack makes (tests/infra does the same). The output is plain
CloudFormation plus two ``AWS::Serverless::Function`` resources (``CodeUri: functions/``), so
``sam build`` and ``sam deploy`` work on it as on a hand-written template.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
import yaml  # type: ignore[import-untyped, unused-ignore]

from stratasync_infra.packaging import ROOT, SamPackaging
from stratasync_infra.stack import StratasyncStack

TEMPLATE = ROOT / "template.yaml"
STACK_NAME = "stratasync"
DESCRIPTION = (
    "stratasync: a LiveStore-compatible sync backend (API Gateway HTTP and WebSocket APIs, Lambda on"
    " arm64 with SnapStart, DynamoDB with a Streams fan-out, an S3 eventlog archive), with alarms and"
    " a dashboard."
)
HEADER = """\
# Generated from the CDK stack in infra/stratasync_infra (the one description of both deployments):
# do not edit; change the construct and run `.venv/bin/python infra/stratasync_infra/sam.py`.
# tests/infra fails while this file is not what the stack makes. Deploy: see docs/deploy.md.
"""
SECTIONS: tuple[str, ...] = ("AWSTemplateFormatVersion", "Transform", "Description", "Metadata")
SECTIONS += ("Parameters", "Conditions", "Resources", "Outputs")


def cdk_context() -> dict[str, Any]:
    """The feature flags of infra/cdk.json, so the CDK app and the SAM template agree."""
    context: dict[str, Any] = json.loads((ROOT / "infra" / "cdk.json").read_text())["context"]
    return context


def synthesize() -> dict[str, Any]:
    """The stack with SAM packaging, as a CloudFormation dict (no CDK metadata, no bootstrap rule)."""
    with tempfile.TemporaryDirectory() as outdir:
        context = {**cdk_context(), "aws:cdk:enable-path-metadata": False}
        app = cdk.App(outdir=outdir, context=context, analytics_reporting=False)
        StratasyncStack(
            app,
            STACK_NAME,
            description=DESCRIPTION,
            packaging=SamPackaging("functions/"),
            synthesizer=cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
        )
        template: dict[str, Any] = dict(app.synth().get_stack_by_name(STACK_NAME).template)
    template["AWSTemplateFormatVersion"] = "2010-09-09"
    return {key: template[key] for key in SECTIONS if key in template}


class _Tag:
    """An intrinsic function in YAML's short form (``!Ref X``, ``!GetAtt X.Arn``, ``!If [...]``)."""

    def __init__(self, tag: str, value: Any) -> None:
        self.tag, self.value = tag, value


SHORT_FORMS = {"Ref", "Condition"} | {f"Fn::{name}" for name in ("If", "Equals", "Not", "Join", "Select")}
SHORT_FORMS |= {"Fn::Split", "Fn::Sub", "Fn::GetAZs", "Fn::ImportValue", "Fn::FindInMap", "Fn::Base64"}


def _short(value: Any) -> Any:
    """Intrinsics to their short form; ``Fn::Join`` on "" of text and references to ``!Sub``."""
    if isinstance(value, list):
        return [_short(item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Fn::GetAtt" and isinstance(arg, list) and all(isinstance(a, str) for a in arg):
            return _Tag("!GetAtt", ".".join(arg))
        if key == "Fn::Join" and arg[0] == "" and all(_sub_part(part) is not None for part in arg[1]):
            text = "".join(_sub_part(part) or "" for part in arg[1])
            if len(text) <= 200:
                return _Tag("!Sub", text)
        if key in SHORT_FORMS:
            return _Tag("!" + key.removeprefix("Fn::"), _short(arg))
    return {key: _short(item) for key, item in value.items()}


def _sub_part(part: Any) -> str | None:
    if isinstance(part, str):
        return part.replace("${", "${!")
    # Not SAM's `Ref: <function>.Alias`: inside !Sub, ${X.Alias} would read as the attribute Alias.
    if isinstance(part, dict) and set(part) == {"Ref"} and "." not in str(part["Ref"]):
        return "${" + str(part["Ref"]) + "}"
    if isinstance(part, dict) and set(part) == {"Fn::GetAtt"}:
        return "${" + ".".join(map(str, part["Fn::GetAtt"])) + "}"
    return None


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    pass


def _represent_tag(dumper: yaml.SafeDumper, tag: _Tag) -> yaml.Node:
    if isinstance(tag.value, list):
        return dumper.represent_sequence(tag.tag, tag.value, flow_style=False)
    if isinstance(tag.value, dict):
        return dumper.represent_mapping(tag.tag, tag.value)
    return dumper.represent_scalar(tag.tag, str(tag.value))


_Dumper.add_representer(_Tag, _represent_tag)


def render() -> str:
    """The text of template.yaml."""
    body: str = yaml.dump(
        _short(synthesize()), Dumper=_Dumper, sort_keys=False, width=110, allow_unicode=True
    )
    return HEADER + body


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if TEMPLATE.read_text() != text:
            print(f"{TEMPLATE} is not what the stack makes: run python infra/stratasync_infra/sam.py")
            return 1
        return 0
    TEMPLATE.write_text(text)
    print(f"wrote {TEMPLATE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
