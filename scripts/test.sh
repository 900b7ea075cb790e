#!/usr/bin/env bash
# Set up, build and run every test. With VRAMFIT_SANITIZE=1 (as CI does) the
# suite also runs once more under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The browser test's driver: playwright-core, pinned in tests/e2e/package-lock.json
# (it drives Debian's chromium; no browser is downloaded).
if ! (cd tests/e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error); then
  if [ -n "${CI:-}" ]; then exit 1; fi
  echo "test: npm ci failed in tests/e2e; the browser test will be skipped" >&2
fi
jobs=$(nproc)
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release -j "$jobs"
if [ "${VRAMFIT_SANITIZE:-0}" = 1 ]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$jobs"
  ctest --preset asan -j "$jobs"
fi
