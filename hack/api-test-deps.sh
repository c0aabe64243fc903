#!/usr/bin/env bash
# Installs what the API, dashboard and Alertmanager tests need, skipping what is already there (idempotent):
# Debian's chromium (headless browser for Playwright; no browser download), playwright-core from npm
# (tests/browser, pinned by package-lock.json), schemathesis from PyPI (OpenAPI fuzzing) and Debian's
# prometheus-alertmanager (alertmanager + amtool).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
{ command -v amtool >/dev/null && command -v prometheus-alertmanager >/dev/null; } || need_apt+=(prometheus-alertmanager)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
# Playwright must never download a browser: the tests drive /usr/bin/chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --silent; else npm install --no-audit --no-fund --silent; fi)
fi
if ! command -v schemathesis >/dev/null && ! python3 -m schemathesis.cli --version >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'schemathesis>=4.1,<5'
fi
echo "api test dependencies ready: $(command -v chromium) $(command -v amtool) schemathesis $(schemathesis --version 2>/dev/null | head -1)"
