#!/bin/bash
# Re-captures the four committed logs with the installed node-llama-cpp and
# compares every buffer line with the fixtures (tests/data/logs/llamacpp/).
# Exit 77 (ctest: skipped) when node_modules is absent: CI never runs npm.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
fixtures="$here/../../tests/data/logs/llamacpp"
if [ ! -d "$here/node_modules/node-llama-cpp" ] || ! command -v node >/dev/null || ! command -v python3 >/dev/null; then
  echo "skipped: run 'npm ci' in tools/llamacpp_capture to check the logs live"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for model in lfm2-1.2b mamba-2.8b; do
  python3 "$here/write_gguf.py" "$model" "$tmp/$model.gguf" >/dev/null
  for np in 1 4; do
    fixture="$fixtures/$model-f16-cpu-np$np-node-llama-cpp-3.21.1.log"
    grep -E 'buffer size|: size =' "$fixture" > "$tmp/want"
    # node-llama-cpp's logger sometimes loses a run of lines around its
    # simulated load (seen: 1 in 3 runs): up to 4 tries per capture.
    ok=0
    for try in 1 2 3 4; do
      node "$here/capture.mjs" "$tmp/$model.gguf" 4096 "$np" > "$tmp/log"
      if grep -E 'buffer size|: size =' "$tmp/log" | diff "$tmp/want" - > "$tmp/diff"; then ok=1; break; fi
    done
    if [ $ok = 0 ]; then
      echo "$model -np $np: buffer lines differ from $fixture:"; cat "$tmp/diff"
      status=1
    fi
  done
done
exit $status
