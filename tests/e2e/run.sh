#!/usr/bin/env bash
# ctest entry for the browser test: tests/e2e/run.sh VRAMFIT_BINARY ARTIFACT_DIR
# Needs node, Debian's chromium (scripts/setup.sh) and tests/e2e/node_modules
# (`npm ci`, run by scripts/test.sh). Without them it skips (exit 77) with the
# reason, except in CI (CI set), where a missing piece is a failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if (($# != 2)); then
  echo "usage: $0 VRAMFIT_BINARY ARTIFACT_DIR" >&2
  exit 2
fi
missing() {
  if [ -n "${CI:-}" ]; then
    echo "e2e: FAIL: $1 (CI is set, so the browser test must run)" >&2
    exit 1
  fi
  echo "e2e: SKIP: $1" >&2
  exit 77
}
chromium=${VRAMFIT_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || missing "$chromium is not installed (scripts/setup.sh installs Debian's chromium)"
command -v node >/dev/null || missing "node is not installed (scripts/setup.sh installs it)"
[ -f "$here/node_modules/playwright-core/package.json" ] ||
  missing "tests/e2e/node_modules is missing (scripts/test.sh runs npm ci there)"
mkdir -p "$2"
exec node "$here/web.e2e.mjs" "$1" "$2"
