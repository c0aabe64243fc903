#!/usr/bin/env bash
# Copies the single sources of truth into the Helm chart (a chart cannot read files outside its folder):
#   crds/*.yaml                        -> charts/driftwatch/files/crds/
#   config/prometheus/alert.rules.yml  -> charts/driftwatch/files/prometheus/
#   config/grafana/driftwatch.json     -> charts/driftwatch/files/grafana/
# With --check, changes nothing and exits 1 when a copy differs (hack/ops-test.sh runs it that way).
set -euo pipefail
cd "$(dirname "$0")/.."
check=false
[ "${1:-}" = "--check" ] && check=true
chart=charts/driftwatch/files
pairs=()
for f in crds/*.yaml; do pairs+=("$f:$chart/crds/$(basename "$f")"); done
pairs+=("config/prometheus/alert.rules.yml:$chart/prometheus/alert.rules.yml")
pairs+=("config/grafana/driftwatch.json:$chart/grafana/driftwatch.json")
status=0
for pair in "${pairs[@]}"; do
  src=${pair%%:*}; dst=${pair#*:}
  if $check; then
    if ! cmp -s "$src" "$dst"; then
      echo "stale chart copy: $dst differs from $src (run hack/sync-chart-files.sh)" >&2
      status=1
    fi
  else
    mkdir -p "$(dirname "$dst")"
    cp "$src" "$dst"
  fi
done
# No copy without a source (a CRD removed from crds/ must leave the chart too).
for dst in "$chart"/crds/*.yaml; do
  [ -e "$dst" ] || continue
  if [ ! -e "crds/$(basename "$dst")" ]; then
    if $check; then
      echo "chart CRD $dst has no source in crds/" >&2
      status=1
    else
      rm "$dst"
    fi
  fi
done
exit $status
