#!/usr/bin/env bash
# Set up, build, and run the main job on the built-in catalog:
#   scripts/run.sh                      -> vramfit infer meta-llama/Llama-3.1-8B --gpu RTX-4090
#   scripts/run.sh infer MODEL [flags]  -> any vramfit command
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target vramfit
if (($# == 0)); then set -- infer meta-llama/Llama-3.1-8B --gpu RTX-4090; fi
exec build/release/vramfit "$@"
