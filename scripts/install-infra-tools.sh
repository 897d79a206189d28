#!/usr/bin/env bash
# The tools that check the deployable stacks (tests/infra): cfn-lint, the CDK library (aws-cdk-lib,
# constructs) and uv into .venv via the `infra` extra, the SAM CLI into its own venv .venv-sam (it pins
# other boto3/pydantic versions than stratasync's), and .venv-sam/wheelhouse: the wheels of
# functions/requirements.txt for Lambda (arm64, CPython 3.13) and for this machine, so tests/infra
# builds the SAM artifact and the CDK layer offline. About 2 minutes on a fresh machine, seconds when
# everything is there. The CDK CLI (npm aws-cdk) is needed only to deploy: not installed.
#
#   bash scripts/install-infra-tools.sh            both parts
#   bash scripts/install-infra-tools.sh --sam      only .venv-sam and its wheelhouse (touches no
#                                                  file of .venv: scripts/test.sh runs it beside pip)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SAM_CLI_VERSION=${SAM_CLI_VERSION:-1.170.0}
if [ "${1:-}" != "--sam" ]; then
    echo "== installing infrastructure tools (cfn-lint, aws-cdk-lib, uv into .venv)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[infra]'
fi
echo "== installing the SAM CLI into .venv-sam"
[ -x .venv-sam/bin/python ] || "$PYTHON" -m venv .venv-sam
if ! .venv-sam/bin/sam --version 2>/dev/null | grep -qF "$SAM_CLI_VERSION"; then
    .venv-sam/bin/python -m pip install --quiet --disable-pip-version-check "aws-sam-cli==$SAM_CLI_VERSION"
fi

# `sam build` runs the function runtime's python (python3.13): on PATH, or pyenv's.
runtime_python() {
    local candidate
    for candidate in "${PYTHON313:-}" python3.13 "$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13 \
        "$HOME"/.pyenv/versions/3.13*/bin/python3.13; do
        if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
            command -v "$candidate"
            return
        fi
    done
}
PY313=$(runtime_python || true)
WHEELHOUSE=.venv-sam/wheelhouse
STAMP="$WHEELHOUSE/requirements.txt"
if ! cmp -s functions/requirements.txt "$STAMP"; then
    echo "== downloading the Lambda dependencies' wheels into $WHEELHOUSE"
    rm -rf "$WHEELHOUSE" && mkdir -p "$WHEELHOUSE"
    .venv-sam/bin/python -m pip download --quiet --disable-pip-version-check --dest "$WHEELHOUSE" \
        --requirement functions/requirements.txt --only-binary=:all: --implementation cp --python-version 3.13 \
        --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 --platform manylinux_2_34_aarch64
    if [ -n "$PY313" ]; then  # sam build first downloads for the machine it runs on
        "$PY313" -m pip download --quiet --disable-pip-version-check --dest "$WHEELHOUSE" \
            --requirement functions/requirements.txt --only-binary=:all:
    fi
    cp functions/requirements.txt "$STAMP"
fi
[ -n "$PY313" ] || echo "warning: no python3.13 found: tests/infra cannot run sam build" >&2
