#!/usr/bin/env bash
# Set-up command 1: create .venv, install stratasync into it, and run the main job:
# the local dev server (embedded moto: no AWS account, nothing else to install) plus a demo sync.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev-server]'
exec .venv/bin/stratasync demo "$@"
