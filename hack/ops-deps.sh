#!/usr/bin/env bash
# Installs the tools hack/ops-test.sh needs, only what is missing (idempotent):
#   Debian packages: prometheus (promtool), prometheus-alertmanager (amtool), lua5.1
#   helm, built from the Go module proxy at a pinned version into a cache folder outside the repo,
#   keyed by version: ${DRIFTWATCH_CACHE:-~/.cache/driftwatch}/tools/helm-<version>/helm
# Prints the helm binary path on the last line of stdout.
set -euo pipefail
HELM_VERSION=${HELM_VERSION:-v3.21.4}
cache=${DRIFTWATCH_CACHE:-$HOME/.cache/driftwatch}

need_apt=()
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v amtool >/dev/null || need_apt+=(prometheus-alertmanager)
command -v lua5.1 >/dev/null || need_apt+=(lua5.1)
command -v python3 >/dev/null || need_apt+=(python3)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # --no-install-recommends: the prometheus package recommends node exporters etc. we do not need.
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
fi

# The checkers run on the machine's python3 (may be a pyenv build that Debian's python3-yaml misses).
python3 -c "import yaml" 2>/dev/null || python3 -m pip install -q pyyaml >&2

helm_dir=$cache/tools/helm-$HELM_VERSION
if [ ! -x "$helm_dir/helm" ]; then
  command -v go >/dev/null || { echo "error: Go is required to build helm" >&2; exit 1; }
  echo "building helm $HELM_VERSION from the Go module proxy (a few minutes on a cold cache) ..." >&2
  mkdir -p "$helm_dir.tmp"
  GOBIN="$helm_dir.tmp" CGO_ENABLED=0 GOFLAGS="-trimpath" GOTOOLCHAIN=local \
    go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  rm -rf "$helm_dir"
  mv "$helm_dir.tmp" "$helm_dir"
fi
echo "$helm_dir/helm"
