#!/usr/bin/env bash
# Build the LiveStore web app (examples/web-todo) that `stratasync dev` serves at /app/:
# npm ci from its lock file, then vite build into examples/web-todo/dist (never committed).
# Skips both when nothing changed since the last build. Exits 3 when node 20+ or npm is missing
# (scripts/demo.sh then runs the Python demo without the web app).
set -euo pipefail
cd "$(dirname "$0")/../examples/web-todo"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "the web app needs node 20+ and npm, which are not installed" >&2
    exit 3
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    echo "the web app needs node 20+ (this is node $(node --version))" >&2
    exit 3
fi
# What the build depends on: the lock file, the config and the sources.
stamp=$(cat package.json package-lock.json .npmrc index.html vite.config.ts tsconfig.json \
    $(find src -type f | LC_ALL=C sort) | sha256sum | cut -d' ' -f1)
if [ -f dist/.build-stamp ] && [ "$(cat dist/.build-stamp)" = "$stamp" ]; then
    echo "web app: up to date (examples/web-todo/dist)"
    exit 0
fi
lock=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.lock-sha256 ] || [ "$(cat node_modules/.lock-sha256)" != "$lock" ]; then
    echo "== installing the web app's npm packages (examples/web-todo, about 160 MB)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$lock" > node_modules/.lock-sha256
fi
echo "== building the web app with vite (about a minute of CPU)"
start=$(date +%s)
npx --no-install vite build --logLevel warn
echo "$stamp" > dist/.build-stamp
echo "web app: built in $(( $(date +%s) - start )) s (examples/web-todo/dist)"
