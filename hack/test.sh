#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what is missing (idempotent), builds (or reuses) the pinned
# kube-apiserver + etcd and the rest of the local cluster (hack/build-cluster.sh), runs the non-Rust operator
# checks (hack/ops-test.sh), starts the single-node cluster of the end-to-end tests (hack/cluster.sh, needs
# root), then `cargo test`, and stops the cluster again.
# Heavy builds are cached outside the clone under $DRIFTWATCH_CACHE (default ~/.cache/driftwatch):
# control-plane and tool binaries keyed by version and build-input hash, and Cargo's target dir (Cargo's
# own fingerprints decide what is rebuilt). Wipe them with: rm -rf ~/.cache/driftwatch
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${DRIFTWATCH_CACHE:-$HOME/.cache/driftwatch}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
mkdir -p "$cache"
start=$(date +%s)
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl; }

# Build the control plane, the tools and the Rust tests side by side.
cp_log=$(mktemp)
hack/build-control-plane.sh >"$cp_log" 2>&1 &
cp_pid=$!
cluster_log=$(mktemp)
hack/build-cluster.sh >"$cluster_log" 2>&1 &
cluster_pid=$!
deps_log=$(mktemp)
# One job for both installers: they share apt and dpkg's lock. ops-deps.sh prints helm's path last.
{ hack/api-test-deps.sh >&2 && hack/test-deps.sh >&2 && hack/ops-deps.sh; } >"$deps_log" 2>&1 &
deps_pid=$!
if ! cargo test --no-run --locked 2>&1 | { grep -vE '^\s+(Compiling|Downloaded|Downloading) ' || true; }; then
  kill $cp_pid $cluster_pid $deps_pid 2>/dev/null
  exit 1
fi
for job in "$cp_pid:$cp_log:control plane" "$cluster_pid:$cluster_log:cluster binaries" "$deps_pid:$deps_log:test tools"; do
  IFS=: read -r pid log what <<<"$job"
  if ! wait "$pid"; then
    cat "$log" >&2
    echo "error: installing/building the $what failed" >&2
    exit 1
  fi
done
DRIFTWATCH_CONTROL_PLANE_DIR=$(tail -n 1 "$cp_log")
DRIFTWATCH_CLUSTER_BIN_DIR=$(tail -n 1 "$cluster_log")
DRIFTWATCH_HELM=$(tail -n 1 "$deps_log")
export DRIFTWATCH_CONTROL_PLANE_DIR DRIFTWATCH_CLUSTER_BIN_DIR DRIFTWATCH_HELM
echo "control plane: $DRIFTWATCH_CONTROL_PLANE_DIR; cluster: $DRIFTWATCH_CLUSTER_BIN_DIR; helm: $DRIFTWATCH_HELM (ready after $(( $(date +%s) - start ))s)"

# The end-to-end tests' cluster: started here (unless it is already up) and stopped on exit.
if ! hack/cluster.sh status >/dev/null 2>&1; then
  # `down` fails when it leaves anything behind (a process, mount, netns, bridge, route or iptables chain).
  trap 'hack/cluster.sh down >/dev/null || { echo "error: the cluster was not torn down cleanly" >&2; exit 1; }' EXIT
  cluster_start=$(date +%s)
  hack/cluster.sh up >/dev/null
  echo "cluster up in $(( $(date +%s) - cluster_start ))s"
fi

hack/ops-test.sh
# --no-fail-fast: one failing test binary does not hide the results of the others.
cargo test --locked --no-fail-fast "$@"
echo "all tests finished in $(( $(date +%s) - start ))s"
