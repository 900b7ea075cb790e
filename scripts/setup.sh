#!/usr/bin/env bash
# Installs what vramfit needs to build and test on Debian (12+), if missing.
# Runs as root (CI) or through sudo. Everything comes from Debian's archive.
set -euo pipefail

PKGS=(g++ cmake ninja-build pkg-config nlohmann-json3-dev libcli11-dev libfmt-dev
      libcpp-httplib-dev libcurl4-openssl-dev libgtest-dev libgmock-dev libbenchmark-dev
      python3 chromium nodejs)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm installs the browser test's driver (tests/e2e); any npm will do.
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
