#!/usr/bin/env bash
# Runs every test: builds (or reuses) the pinned kube-apiserver + etcd, then `cargo test`.
# Heavy builds are cached outside the clone under $DRIFTWATCH_CACHE (default ~/.cache/driftwatch):
# control-plane binaries keyed by version and build-input hash, Cargo's target dir (Cargo's own
# fingerprints decide what is rebuilt). Wipe them with: rm -rf ~/.cache/driftwatch
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${DRIFTWATCH_CACHE:-$HOME/.cache/driftwatch}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
mkdir -p "$cache"
start=$(date +%s)

# Build the control plane and the Rust tests side by side.
cp_log=$(mktemp)
hack/build-control-plane.sh >"$cp_log" 2>&1 &
cp_pid=$!
cargo test --no-run --locked 2>&1 | grep -vE '^\s+(Compiling|Downloaded|Downloading) ' || { kill $cp_pid 2>/dev/null; exit 1; }
if ! wait $cp_pid; then
  cat "$cp_log" >&2
  echo "error: building the control plane failed" >&2
  exit 1
fi
DRIFTWATCH_CONTROL_PLANE_DIR=$(tail -n 1 "$cp_log")
export DRIFTWATCH_CONTROL_PLANE_DIR
echo "control plane binaries: $DRIFTWATCH_CONTROL_PLANE_DIR (ready after $(( $(date +%s) - start ))s)"

cargo test --locked "$@"
echo "all tests finished in $(( $(date +%s) - start ))s"
