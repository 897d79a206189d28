#!/usr/bin/env bash
# The tools that check the deployable stacks (tests/infra): cfn-lint and the CDK library (aws-cdk-lib,
# constructs) into .venv via the `infra` extra, and the SAM CLI into its own venv .venv-sam (it pins
# other boto3/pydantic versions than stratasync's). About 1 to 2 minutes on a fresh machine, a few
# seconds when everything is there. The CDK CLI (npm aws-cdk) is needed only to deploy: not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SAM_CLI_VERSION=${SAM_CLI_VERSION:-1.170.0}
echo "== installing infrastructure tools (cfn-lint, aws-cdk-lib into .venv; aws-sam-cli into .venv-sam)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[infra]'
[ -x .venv-sam/bin/python ] || "$PYTHON" -m venv .venv-sam
if ! .venv-sam/bin/sam --version 2>/dev/null | grep -qF "$SAM_CLI_VERSION"; then
    .venv-sam/bin/python -m pip install --quiet --disable-pip-version-check "aws-sam-cli==$SAM_CLI_VERSION"
fi
