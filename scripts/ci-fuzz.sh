#!/usr/bin/env bash
# Bounded coverage-guided fuzzing (cargo-fuzz / libFuzzer, AddressSanitizer) of every parser that
# sees outside bytes (fuzz/README.md lists the targets). Installs cargo-fuzz from crates.io,
# builds every target, replays each committed corpus (fuzz/corpus/<target>/, seeds and the
# regression inputs of crashes already fixed) and fuzzes each target for a bounded time, then
# writes the figures into RELIABILITY.md. Exits non-zero on any crash, timeout, leak or OOM;
# the input that did it is left in fuzz/artifacts/<target>/.
#
#   scripts/ci-fuzz.sh                         # every target, FUZZ_SECONDS each
#   FUZZ_SECONDS=300 scripts/ci-fuzz.sh image_decode state_decode
#
# Environment:
#   FUZZ_SECONDS   fuzzing time per target (default 45)
#   FUZZ_PARALLEL  targets fuzzed at once (default: the number of cores, at most 2)
#   FUZZ_REPORT    0 to leave RELIABILITY.md alone
#   FUZZ_TARGET_DIR  cargo target dir of the sanitizer builds (default fuzz/target)
#   FUZZ_CORPUS_RUN  scratch corpus the fuzzer adds to (default fuzz/corpus-run; it grows across
#                    runs and is replayed first, which libFuzzer does not count in -max_total_time)
#   FUZZ_CODEGEN_UNITS  codegen units of the sanitizer build (default 16: cargo-fuzz's own
#                    default of 1 makes the cold build of the whole dependency graph far slower)
#   FUZZ_QUICK     1 for the per-commit CI smoke run: `--dev` build (fuzz/Cargo.toml's dev
#                  profile, opt-level 1) without a sanitizer, which builds in about half the
#                  time of the ASan release build; report off unless FUZZ_REPORT=1. Memory
#                  errors in Rust need `unsafe`, and the C decoders are not ASan-instrumented by
#                  cargo-fuzz either way, so what the smoke run loses is mostly speed per input.
#
# The toolchain is stable Rust: RUSTC_BOOTSTRAP=1 lets it accept the nightly flags cargo-fuzz
# passes (-Zsanitizer=address, -Cpasses=sancov-module). Measured on 2 cores: a cold sanitizer
# build of the whole dependency graph takes ~9 min with 16 codegen units (37 min with
# cargo-fuzz's default of 1, on cores shared with other builds); fuzzing takes about
# 9 × FUZZ_SECONDS / 2 plus a few seconds per target; installing cargo-fuzz ~25 s.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

export RUSTC_BOOTSTRAP=1
FUZZ_SECONDS="${FUZZ_SECONDS:-45}"
CORES="$(nproc 2>/dev/null || echo 2)"
FUZZ_PARALLEL="${FUZZ_PARALLEL:-$((CORES < 2 ? 1 : 2))}"
FUZZ_QUICK="${FUZZ_QUICK:-0}"
if [[ "$FUZZ_QUICK" == 1 ]]; then
    FUZZ_REPORT="${FUZZ_REPORT:-0}"
else
    FUZZ_REPORT="${FUZZ_REPORT:-1}"
fi
CARGO_FUZZ_VERSION=0.13.2
FUZZ_CORPUS_RUN="${FUZZ_CORPUS_RUN:-$ROOT/fuzz/corpus-run}"
FUZZ_CODEGEN_UNITS="${FUZZ_CODEGEN_UNITS:-16}"
TARGET_DIR_ARGS=()
if [[ -n "${FUZZ_TARGET_DIR:-}" ]]; then
    TARGET_DIR_ARGS=(--target-dir "$FUZZ_TARGET_DIR")
fi
# The same flags for build and run, so `cargo fuzz run` never rebuilds differently.
if [[ "$FUZZ_QUICK" == 1 ]]; then
    BUILD_ARGS=("${TARGET_DIR_ARGS[@]}" --dev --sanitizer none)
    PROFILE_DIR=debug
    BUILD_DESC="dev profile (opt-level 1) + debug assertions, no sanitizer"
else
    BUILD_ARGS=("${TARGET_DIR_ARGS[@]}" --codegen-units "$FUZZ_CODEGEN_UNITS")
    PROFILE_DIR=release
    BUILD_DESC="release + debug assertions + ASan, $FUZZ_CODEGEN_UNITS codegen units"
fi

ALL_TARGETS=(http_generate http_extract_glb image_check image_decode state_decode grpc_requests
    safetensors_load model_config onnx_load)
if [[ $# -gt 0 ]]; then
    TARGETS=("$@")
else
    TARGETS=("${ALL_TARGETS[@]}")
fi

log() { echo "ci-fuzz: $*" >&2; }

# --- tools -----------------------------------------------------------------------------------
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
# libFuzzer's C++ runtime is compiled by libfuzzer-sys's build script.
command -v c++ >/dev/null 2>&1 || { log "a C++ compiler is needed (apt-get install g++)"; exit 1; }
# onnx_load loads ONNX Runtime (the CPU wheel from PyPI, as the tests do).
if [[ -z "${ORT_DYLIB_PATH:-}" ]]; then
    eval "$(bash scripts/setup-onnxruntime.sh)"
fi

# --- build -----------------------------------------------------------------------------------
scratch_start=$({ find "$FUZZ_CORPUS_RUN" -type f 2>/dev/null || true; } | wc -l)
build_dir="${FUZZ_TARGET_DIR:-$ROOT/fuzz/target}/x86_64-unknown-linux-gnu/$PROFILE_DIR"
build_kind=$([[ -d "$build_dir" ]] && echo "incremental" || echo "cold")
build_start=$(date +%s)
log "building ${#TARGETS[@]} targets ($BUILD_DESC, $build_kind)"
if [[ "${TARGETS[*]}" == "${ALL_TARGETS[*]}" ]]; then
    cargo fuzz build "${BUILD_ARGS[@]}" # one cargo invocation: the bins link in parallel
else
    for t in "${TARGETS[@]}"; do
        cargo fuzz build "${BUILD_ARGS[@]}" "$t"
    done
fi
build_seconds=$(($(date +%s) - build_start))
# The 5-minute load average at the end says whether other work shared the cores.
build_load=$(cut -d' ' -f2 /proc/loadavg 2>/dev/null || echo "?")
log "build took ${build_seconds}s ($build_kind, load average $build_load on $CORES cores)"

# --- fuzz ------------------------------------------------------------------------------------
RESULTS="${FUZZ_TARGET_DIR:-$ROOT/fuzz/target}/ci-fuzz-results"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

# Per-target libFuzzer options. Leak checking is off for onnx_load: ONNX Runtime keeps
# process-wide allocations it never frees. -timeout: an input that runs longer is a finding
# (a decoding path an attacker could use to pin a core), and so is an allocation past
# -malloc_limit_mb (a bomb that got past the limits).
extra_flags() {
    case "$1" in
        onnx_load) echo "-detect_leaks=0 -max_len=8192" ;;
        image_decode | image_check | http_generate) echo "-max_len=32768" ;;
        *) echo "" ;;
    esac
}

fuzz_one() {
    local t=$1
    local run_corpus="$FUZZ_CORPUS_RUN/$t" seeds="$ROOT/fuzz/corpus/$t"
    local out="$RESULTS/$t"
    mkdir -p "$run_corpus" "$seeds" "$out" "$ROOT/fuzz/artifacts/$t"
    local before
    before=$(find "$ROOT/fuzz/artifacts/$t" -type f | wc -l)
    local start rc=0
    start=$(date +%s)
    # New inputs go to the first (scratch) corpus dir; the committed seeds are only read.
    # shellcheck disable=SC2046
    cargo fuzz run "${BUILD_ARGS[@]}" "$t" "$run_corpus" "$seeds" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout=20 -rss_limit_mb=4096 -malloc_limit_mb=4096 \
        -print_final_stats=1 $(extra_flags "$t") >"$out/log" 2>&1 || rc=$?
    local secs=$(($(date +%s) - start))
    local after
    after=$(find "$ROOT/fuzz/artifacts/$t" -type f | wc -l)
    local execs corp cov
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$out/log" | tail -n1 | grep -o '[0-9]*$' || true)
    [[ -n "$execs" ]] || execs=$(grep -oE '^#[0-9]+' "$out/log" | tail -n1 | tr -d '#' || true)
    corp=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$out/log" | tail -n1 | sed 's/corp: //' || true)
    cov=$(grep -oE 'cov: [0-9]+' "$out/log" | tail -n1 | grep -o '[0-9]*$' || true)
    local seeds_n
    seeds_n=$(find "$seeds" -type f | wc -l)
    local crashes=$((after - before))
    if [[ $rc -ne 0 && $crashes -eq 0 ]]; then crashes=1; fi
    printf '%s|%s|%s|%s|%s|%s|%s|%s\n' "$t" "$secs" "${execs:-0}" "${corp:-?}" "$seeds_n" \
        "${cov:-?}" "$crashes" "$rc" >"$out/row"
    if [[ $rc -ne 0 ]]; then
        log "$t FAILED (exit $rc); last lines of $out/log:"
        grep -E 'ERROR|panicked|SUMMARY|Test unit written|artifact' "$out/log" | head -n 20 >&2 || true
    else
        log "$t: ${execs:-?} executions in ${secs}s, corpus ${corp:-?}, coverage ${cov:-?} edges"
    fi
}

fuzz_start=$(date +%s)
running=0
for t in "${TARGETS[@]}"; do
    fuzz_one "$t" &
    running=$((running + 1))
    if [[ $running -ge $FUZZ_PARALLEL ]]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true
fuzz_seconds=$(($(date +%s) - fuzz_start))

# --- report ----------------------------------------------------------------------------------
failed=0
total_execs=0
table="| target | seconds | executions | exec/s | corpus (entries/bytes) | committed seeds | coverage (edges) | crashes |
|---|---:|---:|---:|---|---:|---:|---:|"
for t in "${TARGETS[@]}"; do
    IFS='|' read -r name secs execs corp seeds_n cov crashes rc <"$RESULTS/$t/row"
    [[ "$rc" == 0 ]] || failed=1
    total_execs=$((total_execs + execs))
    rate=$((secs > 0 ? execs / secs : 0))
    table+="
| \`$name\` | $secs | $execs | $rate | $corp | $seeds_n | $cov | $crashes |"
done
echo "$table"

if [[ "$FUZZ_REPORT" != 0 ]]; then
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    section="<!-- ci-fuzz:begin (written by scripts/ci-fuzz.sh; edits inside are overwritten) -->
Last run: $(date -u +%Y-%m-%dT%H:%MZ), commit \`$commit\`, $CORES cores, ${FUZZ_SECONDS} s per
target, $FUZZ_PARALLEL at a time, libFuzzer, $BUILD_DESC, overflow checks
(\`cargo fuzz\` $CARGO_FUZZ_VERSION on $(rustc --version | cut -d' ' -f1-2) with
RUSTC_BOOTSTRAP=1). Build: ${build_seconds} s ($build_kind;
load average $build_load on $CORES cores at its end). Fuzzing: ${fuzz_seconds} s, from the committed
seeds plus $scratch_start inputs kept from earlier runs. Inputs executed in total: $total_execs.
Result: $([[ $failed == 0 ]] && echo 'no crash, timeout, leak or OOM' || echo '**FAILED** (see fuzz/artifacts/)').

$table
<!-- ci-fuzz:end -->"
    python3 - "$ROOT/RELIABILITY.md" "$section" ci-fuzz <<'EOF'
import re, sys
path, section, tag = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
pattern = re.compile(r"<!-- %s:begin.*?<!-- %s:end -->" % (tag, tag), re.S)
if not pattern.search(text):
    sys.exit(f"{path} has no <!-- {tag}:begin --> ... <!-- {tag}:end --> block")
open(path, "w").write(pattern.sub(lambda _: section, text))
EOF
    log "RELIABILITY.md updated"
fi

if [[ $failed != 0 ]]; then
    log "FAILED: a target crashed (inputs in fuzz/artifacts/<target>/, logs in $RESULTS)"
    exit 1
fi
log "ok: ${#TARGETS[@]} targets, $total_execs executions, no crash"
