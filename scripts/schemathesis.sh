#!/usr/bin/env bash
# Property-based fuzzing of the HTTP API from its own OpenAPI document (Schemathesis from PyPI,
# in a venv) against a running `trellis2 serve --models demo` on loopback, authenticated with a
# token from `trellis2 tokens add`. Bounded: --max-examples per operation and --max-time overall.
# Every response is checked: no 5xx (503 `unavailable` is allowed only while the gateway reports
# its compute as not built, 429/503 `overloaded` always), the error envelope, and Schemathesis's
# schema checks (status codes, content types, headers and bodies as documented). The figures go
# into RELIABILITY.md.
#
#   scripts/schemathesis.sh                      # defaults below
#   ST_MAX_EXAMPLES=200 ST_MAX_TIME=600 scripts/schemathesis.sh
#
# Environment: ST_MAX_EXAMPLES (default 50), ST_MAX_TIME (seconds, default 300), ST_SEED,
# ST_VENV (default ~/.cache/t2-schemathesis-venv), TRELLIS2_BIN (a built `trellis2`; built with
# `cargo build -p t2-cli` otherwise), ST_REPORT=0 to leave RELIABILITY.md alone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ST_MAX_EXAMPLES="${ST_MAX_EXAMPLES:-50}"
ST_MAX_TIME="${ST_MAX_TIME:-300}"
ST_SEED="${ST_SEED:-20260429}"
ST_VENV="${ST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/t2-schemathesis-venv}"
ST_REPORT="${ST_REPORT:-1}"
log() { echo "schemathesis.sh: $*" >&2; }

# --- tools -----------------------------------------------------------------------------------
if [[ ! -x "$ST_VENV/bin/st" ]] || ! "$ST_VENV/bin/pip" freeze 2>/dev/null \
    | grep -qxF "$(cat scripts/schemathesis/requirements.txt)"; then
    log "installing $(cat scripts/schemathesis/requirements.txt) into $ST_VENV"
    python3 -m venv "$ST_VENV"
    "$ST_VENV/bin/pip" install --quiet --disable-pip-version-check -r scripts/schemathesis/requirements.txt
fi
if [[ -z "${TRELLIS2_BIN:-}" ]]; then
    cargo build -p t2-cli
    TRELLIS2_BIN="$(cargo metadata --format-version 1 --no-deps \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/trellis2"
fi

# --- the gateway under test ------------------------------------------------------------------
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

DATA="$WORK/data"
TOKEN="$("$TRELLIS2_BIN" tokens add schemathesis --data "$DATA" | tail -n 1)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
"$TRELLIS2_BIN" serve --models demo --data "$DATA" --listen "127.0.0.1:$PORT" \
    >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
    curl -fsS "$BASE/health" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; log "server exited"; exit 1; }
    sleep 0.2
done
curl -fsS "$BASE/health" >/dev/null

# The compute counts as wired when no upstream reports "not built" (it may still be loading).
ready_json="$(curl -sS "$BASE/ready")"
if grep -q 'not built' <<<"$ready_json"; then
    export T2_COMPUTE_WIRED=0
    log "compute is not wired into this gateway: 503 \`unavailable\` is allowed"
else
    export T2_COMPUTE_WIRED=1
    log "compute is wired: waiting for /ready"
    for _ in $(seq 1 600); do
        [[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/ready")" == 200 ]] && break
        sleep 0.5
    done
fi

# The document is served behind auth; Schemathesis reads it from a file.
curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE/openapi.json" >"$WORK/openapi.json"

# --- run -------------------------------------------------------------------------------------
# Built-in not_a_server_error is replaced by t2_server_error (same rule plus the one allowance
# above). positive_data_acceptance is off: the document types `image`/`state` as plain strings,
# so a schema-valid body is almost never a decodable image or a signed state, and its rejection
# with 400 is the correct answer, not a finding.
export PYTHONPATH="$ROOT/scripts/schemathesis${PYTHONPATH:+:$PYTHONPATH}"
export SCHEMATHESIS_HOOKS=t2_hooks
start=$(date +%s)
rc=0
"$ST_VENV/bin/st" run "$WORK/openapi.json" --url "$BASE" \
    -H "Authorization: Bearer $TOKEN" \
    --checks all --exclude-checks not_a_server_error,positive_data_acceptance \
    --max-examples "$ST_MAX_EXAMPLES" --max-time "$ST_MAX_TIME" --seed "$ST_SEED" \
    --workers 2 --request-timeout 120 --no-color \
    --report junit,ndjson --report-dir "$WORK/report" >"$WORK/st.log" 2>&1 || rc=$?
secs=$(($(date +%s) - start))
cat "$WORK/st.log"
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "the gateway died during the run:"
    tail -n 50 "$WORK/server.log" >&2
    rc=1
fi

# --- report ----------------------------------------------------------------------------------
summary="$(python3 - "$WORK/report" <<'EOF'
import glob, sys, xml.etree.ElementTree as ET
cases = failures = errors = 0
ops = []
for path in glob.glob(sys.argv[1] + "/*.xml"):
    for tc in ET.parse(path).getroot().iter("testcase"):
        cases += 1
        bad = tc.find("failure") is not None or tc.find("error") is not None
        failures += tc.find("failure") is not None
        errors += tc.find("error") is not None
        ops.append((tc.get("name"), "fail" if bad else "pass"))
print(f"{cases}|{failures}|{errors}")
for name, state in sorted(ops):
    print(f"{name}|{state}")
EOF
)"
IFS='|' read -r ops_n fails errs <<<"$(head -n 1 <<<"$summary")"
calls="$(python3 - "$WORK/report" <<'EOF'
import glob, json, sys
n = 0
statuses = {}
for path in glob.glob(sys.argv[1] + "/*.ndjson"):
    for line in open(path):
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        text = json.dumps(ev)
        # Count every recorded interaction's response status, whatever the event nesting.
        def walk(o):
            global n
            if isinstance(o, dict):
                r = o.get("response")
                if isinstance(r, dict) and isinstance(r.get("status_code"), int):
                    n += 1
                    statuses[r["status_code"]] = statuses.get(r["status_code"], 0) + 1
                for v in o.values():
                    walk(v)
            elif isinstance(o, list):
                for v in o:
                    walk(v)
        walk(ev)
print(n, " ".join(f"{k}:{v}" for k, v in sorted(statuses.items())))
EOF
)"
log "operations $ops_n, failed $fails, errors $errs, responses checked ${calls%% *}, ${secs}s"

if [[ "$ST_REPORT" != 0 ]]; then
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    ops_table="| operation | result |
|---|---|"
    while IFS='|' read -r name state; do
        [[ -n "$name" ]] && ops_table+="
| \`$name\` | $state |"
    done <<<"$(tail -n +2 <<<"$summary")"
    wired=$([[ "$T2_COMPUTE_WIRED" == 1 ]] && echo "wired (no 503 \`unavailable\` allowed)" \
        || echo "**not wired** in \`trellis2 serve\` at this commit: every valid request ends in 503 \`unavailable\`, which is allowed until the wiring lands")
    section="<!-- schemathesis:begin (written by scripts/schemathesis.sh; edits inside are overwritten) -->
Last run: $(date -u +%Y-%m-%dT%H:%MZ), commit \`$commit\`, $(cat scripts/schemathesis/requirements.txt)
against \`trellis2 serve --models demo\` on loopback, all checks but \`positive_data_acceptance\`
(\`not_a_server_error\` replaced by \`t2_server_error\`, plus \`t2_error_envelope\`), up to
$ST_MAX_EXAMPLES examples per operation, seed $ST_SEED, ${secs} s. Compute: $wired.
Responses checked: ${calls%% *} (by status: ${calls#* }). Result: $([[ $rc == 0 ]] && echo 'no failure' || echo "**FAILED** ($fails operations failed, $errs errored)").

$ops_table
<!-- schemathesis:end -->"
    python3 - "$ROOT/RELIABILITY.md" "$section" schemathesis <<'EOF'
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
exit "$rc"
