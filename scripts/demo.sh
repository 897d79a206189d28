#!/usr/bin/env bash
# Set-up command 1: create .venv, install stratasync into it, and run the main job:
# the local dev server (embedded moto: no AWS account, nothing else to install) plus a demo sync,
# then the LiveStore web app at /app/ with a Python agent in the same store (until Ctrl-C).
#
#   bash scripts/demo.sh             the demo, then the web app and the agent
#   bash scripts/demo.sh --no-web    the Python demo only (also what runs when node/npm are missing)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev-server]'
web=(--web-app examples/web-todo/dist)
if [ "${1:-}" = "--no-web" ]; then
    shift
    web=()
else
    status=0
    bash scripts/build-web-app.sh || status=$?
    if [ "$status" -ne 0 ]; then
        web=()
        if [ "$status" -eq 3 ]; then
            echo "note: the web app is skipped (it is built with node 20+ and npm); the Python demo runs" >&2
        else
            echo "note: the web app did not build (see above); the Python demo runs without it" >&2
        fi
    fi
fi
exec .venv/bin/stratasync demo "${web[@]}" "$@"
