#!/usr/bin/env bash
# Checks everything operators install (issue 8) that is not Rust: the Helm chart (lint, schema, rendering of
# every value set in charts/driftwatch/ci/, values that must be refused), chart copies of crds/ and config/,
# Prometheus rules (promtool check + unit tests), the Alertmanager example (amtool check-config + routing),
# the Grafana dashboard (JSON, metric names, PromQL), the Argo CD health/action Lua (lua5.1), and the
# Dockerfile's shape. The Rust side (server-side dry run of every rendered manifest on the real control
# plane, RBAC verbs, CRD equality, the admission policy) is tests/ops_chart.rs, run by `cargo test`.
#
# Installs missing tools first (hack/ops-deps.sh). Prints one line per check and a summary
# `ops: N passed, M failed`; exits non-zero when any check failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
helm_bin=$(hack/ops-deps.sh | tail -n 1) || { echo "error: hack/ops-deps.sh failed" >&2; exit 1; }
export DRIFTWATCH_HELM=$helm_bin
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in the tree
kube_version=1.35.4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
failures=()

# check NAME COMMAND...: runs COMMAND, output to a log shown only when it fails.
check() {
  local name=$1; shift
  local log=$work/log
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "ok    $name"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "FAIL  $name"
    sed 's/^/      /' "$log" | tail -n 40
  fi
}

# refuse PATTERN COMMAND...: COMMAND must fail and its output must contain PATTERN.
refuse() {
  local pattern=$1; shift
  local log=$work/refuse-log
  if "$@" >"$log" 2>&1; then
    echo "expected a failure, but the command succeeded"
    return 1
  fi
  grep -qF -- "$pattern" "$log" || { echo "failed without the expected message '$pattern':"; cat "$log"; return 1; }
}

# --- Helm chart -----------------------------------------------------------------------------------------
chart=charts/driftwatch
check "chart copies of crds/, alert rules and dashboard are up to date" hack/sync-chart-files.sh --check
check "helm lint --strict (defaults)" "$helm_bin" lint --strict "$chart" --kube-version "$kube_version"
for values in "$chart"/ci/*-values.yaml; do
  set_name=$(basename "$values" -values.yaml)
  check "helm lint --strict ($set_name)" "$helm_bin" lint --strict "$chart" -f "$values" --kube-version "$kube_version"
  check "helm template ($set_name)" "$helm_bin" template driftwatch "$chart" --namespace driftwatch \
    --kube-version "$kube_version" -f "$values" --output-dir "$work/rendered-$set_name"
done
check "values.schema.json refuses an unknown top-level key" \
  refuse 'additional properties' "$helm_bin" template driftwatch "$chart" --kube-version "$kube_version" --set replicas=2
check "values.schema.json refuses a non-numeric replicaCount" \
  refuse 'replicaCount' "$helm_bin" template driftwatch "$chart" --kube-version "$kube_version" --set-string replicaCount=two
check "values.schema.json refuses an unknown log format" \
  refuse 'logFormat' "$helm_bin" template driftwatch "$chart" --kube-version "$kube_version" --set controller.logFormat=xml
check "values.schema.json refuses a bad metric prefix" \
  refuse 'metricsPrefix' "$helm_bin" template driftwatch "$chart" --kube-version "$kube_version" --set controller.metricsPrefix=video-ai
check "namespaced RBAC without watchNamespaces is refused" \
  refuse 'rbac.namespaced=true needs controller.watchNamespaces' \
  "$helm_bin" template driftwatch "$chart" --kube-version "$kube_version" --set rbac.namespaced=true
check "a Kubernetes older than the chart's kubeVersion (1.30, ValidatingAdmissionPolicy v1) is refused" \
  refuse 'incompatible with Kubernetes' "$helm_bin" template driftwatch "$chart" --kube-version 1.29.0

# The standalone roles and policy of config/rbac/ (the package feature's files) are what the chart ships.
if [ -d config/rbac ]; then
  check "chart user roles and admission policies equal config/rbac/" bash -c "
    '$helm_bin' template driftwatch '$chart' --namespace driftwatch-system --kube-version '$kube_version' \
      --set serviceAccount.name=driftwatch-controller >'$work/rbac-rendered.yaml' &&
    python3 hack/ops-check-rbac.py '$work/rbac-rendered.yaml' config/rbac"
else
  echo "skip  chart user roles and admission policies equal config/rbac/ (no config/rbac/ on this branch; not counted)"
fi

# --- Prometheus -----------------------------------------------------------------------------------------
check "promtool check rules config/prometheus/alert.rules.yml" promtool check rules config/prometheus/alert.rules.yml
check "promtool test rules config/prometheus/alert.rules.test.yml" \
  promtool test rules config/prometheus/alert.rules.test.yml
check "alert rules: the original HighDriftDetected rule is there (aggregated across replicas), every alert is unit-tested with namespace/monitor labels" \
  python3 hack/ops-check-rules.py config/prometheus/alert.rules.yml config/prometheus/alert.rules.test.yml
check "runbook anchors of the alerts and the docs resolve to headings of docs/operations.md" \
  python3 hack/ops-check-runbooks.py config/prometheus/alert.rules.yml docs/operations.md docs docs/reference \
    README.md charts/driftwatch/README.md config/alertmanager/alertmanager.yml
rule_out=$work/chart-rules.yml
check "promtool check rules on the chart's PrometheusRule (custom prefix)" bash -c "
  '$helm_bin' template driftwatch '$chart' -f '$chart/ci/full-values.yaml' --kube-version '$kube_version' \
    --show-only templates/prometheusrule.yaml \
  | python3 -c 'import sys, yaml; d = yaml.safe_load(sys.stdin); yaml.safe_dump(d[\"spec\"], sys.stdout)' >'$rule_out' \
  && grep -q 'ml_drift_drift_score' '$rule_out' && ! grep -q 'video_ai_' '$rule_out' && promtool check rules '$rule_out'"

check "metric names of the contract pass promtool's naming lint (promtool check metrics)" bash -c \
  "python3 hack/ops_metrics.py >'$work/exposition.txt' && promtool check metrics <'$work/exposition.txt'"

# --- Alertmanager ---------------------------------------------------------------------------------------
am=config/alertmanager/alertmanager.yml
check "amtool check-config $am" amtool check-config "$am"
route() { amtool config routes test --config.file="$am" --verify.receivers="$1" "${@:2}"; }
check "route: HighDriftDetected -> operator receiver and team" \
  route driftwatch-operator,ml-team alertname=HighDriftDetected severity=warning namespace=ml monitor=frames
check "route: DriftThresholdExceeded -> operator receiver and team" \
  route driftwatch-operator,ml-team alertname=DriftThresholdExceeded severity=warning namespace=ml monitor=frames
check "route: DriftDetected (calibrated verdict) -> pager and team, not the operator" \
  route ml-team-pager,ml-team alertname=DriftDetected severity=warning namespace=ml monitor=frames
check "route: RetrainingFailed -> pager and team" \
  route ml-team-pager,ml-team alertname=RetrainingFailed severity=critical namespace=ml monitor=frames
check "route: DriftCheckStale -> team only" \
  route ml-team alertname=DriftCheckStale severity=warning namespace=ml monitor=frames
check "route: unrelated alert -> default" route default alertname=KubePodCrashLooping severity=warning
check "operator receiver posts to /api/v1/alertmanager with bearer auth" python3 -c "
import yaml, sys
c = yaml.safe_load(open('$am'))
r = [r for r in c['receivers'] if r['name'] == 'driftwatch-operator'][0]['webhook_configs'][0]
assert r['url'].endswith('/api/v1/alertmanager'), r['url']
assert r['http_config']['authorization']['type'] == 'Bearer', r['http_config']
assert r['http_config']['authorization'].get('credentials_file') or r['http_config']['authorization'].get('credentials')
"

# --- Grafana --------------------------------------------------------------------------------------------
check "dashboard: valid JSON, templated by namespace/monitor, only exported metrics" \
  python3 hack/ops-check-dashboard.py config/grafana/driftwatch.json "$work/dashboard-queries.yml"
check "dashboard: every query is valid PromQL (promtool)" promtool check rules "$work/dashboard-queries.yml"

# --- Argo CD --------------------------------------------------------------------------------------------
check "argocd-cm.yaml is generated from config/argocd/*/*.lua" python3 hack/ops-argocd.py check
check "argocd-cm.yaml parses; scripts extracted" python3 hack/ops-argocd.py extract "$work/argocd-lua"
check "Argo CD health checks and actions (lua5.1)" lua5.1 config/argocd/test/run.lua "$work/argocd-lua"

# --- Dockerfile -----------------------------------------------------------------------------------------
check "Dockerfile: multi-stage, numeric non-root user, ships every [[bin]] of Cargo.toml" python3 -c "
import re
d = open('Dockerfile').read()
froms = re.findall(r'^FROM\s', d, re.M)
assert len(froms) >= 2, 'not multi-stage'
users = re.findall(r'^USER\s+(\S+)', d, re.M)
assert users and re.fullmatch(r'[1-9][0-9]*(:[0-9]+)?', users[-1]), f'last USER must be numeric non-root: {users}'
bins = re.findall(r'\[\[bin\]\]\s*\nname\s*=\s*\"([^\"]+)\"', open('Cargo.toml').read())
assert bins, 'no [[bin]] in Cargo.toml'
for b in bins:
    assert re.search(rf'COPY --from=\S+ \S*/{re.escape(b)} /usr/local/bin/{re.escape(b)}\b', d), f'binary {b} not copied to /usr/local/bin'
assert '--locked' in d, 'cargo build must use --locked'
"

echo "ops: $passed passed, $failed failed"
if [ "$failed" -gt 0 ]; then
  printf '  failed: %s\n' "${failures[@]}"
  exit 1
fi
