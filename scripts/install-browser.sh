#!/usr/bin/env bash
# The browser tier's tools (tests/browser): Debian's Chromium (apt-get, when missing and we are
# root) and puppeteer-core from tests/browser's lock file (it downloads no browser of its own).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== installing Chromium (apt-get, about 480 MB on disk)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "warning: chromium is missing (apt-get install chromium): the browser tier will not run" >&2
    fi
fi
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
