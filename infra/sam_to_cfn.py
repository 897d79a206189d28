"""Expand template.yaml into plain CloudFormation with AWS's SAM translator, offline.

Run with the SAM CLI's venv (it has ``samtranslator``): ``.venv-sam/bin/python infra/sam_to_cfn.py
template.yaml out.json``. cfn-lint 1.x checks SAM resources against SAM's schema only; what the
transform makes of them (the functions' runtime from Globals, their roles and policies, the API's
stage) is checked by linting this output (tests/infra/test_templates.py).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform  # type: ignore[import-not-found, unused-ignore]
from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-not-found, unused-ignore]

#: The managed policies SAM attaches (what the IAM API would answer; no AWS call offline).
MANAGED_POLICIES = {
    name: f"arn:aws:iam::aws:policy/{path}{name}"
    for name, path in [
        ("AWSLambdaBasicExecutionRole", "service-role/"),
        ("AWSXrayWriteOnlyAccess", ""),
        ("AWSXRayDaemonWriteAccess", ""),
    ]
}


class _ManagedPolicies:
    def load(self) -> dict[str, str]:
        return MANAGED_POLICIES


def main(source: str, target: str) -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template: dict[str, Any] = yaml_parse(Path(source).read_text())
    # Local CodeUri folders are uploaded by `sam build`/`sam deploy`; stand in an S3 location.
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function":
            properties.setdefault("CodeUri", template.get("Globals", {}).get("Function", {}).get("CodeUri"))
            properties["CodeUri"] = "s3://stratasync-artifacts/functions.zip"
    template.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    result = transform(template, {}, _ManagedPolicies())
    Path(target).write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
