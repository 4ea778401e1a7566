#!/usr/bin/env bash
# CI's bounded reliability run (issue 10), after the workspace tests (which build `trellis2`
# and run the load, fault and security tests):
#   1. coverage-guided fuzzing of every parser target (scripts/ci-fuzz.sh), FUZZ_SECONDS each;
#   2. property-based fuzzing of the HTTP API from its OpenAPI document (scripts/schemathesis.sh)
#      against the debug `trellis2` the tests built, for at most ST_MAX_TIME seconds.
# Both fail the run on a finding and refresh their RELIABILITY.md blocks.
#
#   scripts/ci-reliability.sh                    # CI defaults below
#   FUZZ_SECONDS=60 ST_MAX_TIME=300 scripts/ci-reliability.sh
#
# Needs: a C++ compiler (libFuzzer), python3 with venv (Debian: python3-venv), curl, and
# ONNX Runtime (ORT_DYLIB_PATH, set by scripts/setup-onnxruntime.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

export FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
export ST_MAX_TIME="${ST_MAX_TIME:-90}"
export ST_MAX_EXAMPLES="${ST_MAX_EXAMPLES:-30}"

start=$(date +%s)
bash scripts/ci-fuzz.sh
fuzz_done=$(date +%s)

target_dir="$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
if [[ -z "${TRELLIS2_BIN:-}" && -x "$target_dir/debug/trellis2" ]]; then
    export TRELLIS2_BIN="$target_dir/debug/trellis2"
fi
bash scripts/schemathesis.sh
end=$(date +%s)
echo "ci-reliability: fuzzing $((fuzz_done - start)) s, API fuzzing $((end - fuzz_done)) s" >&2
