#!/usr/bin/env bash
# Builds kube-apiserver and etcd at the versions pinned in hack/control-plane/*/go.mod from the Go module
# proxy, and caches them under $DRIFTWATCH_CACHE (default ~/.cache/driftwatch) in a folder keyed by the
# versions and a hash of the build inputs, so a stale cache can never be used. Prints the folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/control-plane
k8s_version=$(awk '/^require k8s.io\/kubernetes/ {print $3}' "$src/apiserver/go.mod")
etcd_version=$(awk '/^require go.etcd.io\/etcd\/server\/v3/ {print $3}' "$src/etcd/go.mod")
inputs_hash=$(cat "$src"/apiserver/go.{mod,sum} "$src"/apiserver/*.go "$src"/etcd/go.{mod,sum} "$src"/etcd/*.go \
  "$0" | sha256sum | cut -c1-12)
cache=${DRIFTWATCH_CACHE:-$HOME/.cache/driftwatch}
out=$cache/control-plane/k8s-$k8s_version-etcd-$etcd_version-$inputs_hash
if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$out.tmp"
export CGO_ENABLED=0 GOFLAGS="-trimpath -mod=mod" GOTOOLCHAIN=local
major=${k8s_version#v}; major=${major%%.*}
minor=${k8s_version#v*.}; minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version \
 -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean"
echo "building etcd $etcd_version ..." >&2
(cd "$src/etcd" && go build -ldflags "-s -w" -o "$out.tmp/etcd" .)
echo "building kube-apiserver $k8s_version (several minutes on a cold cache) ..." >&2
(cd "$src/apiserver" && go build -ldflags "$ldflags" -o "$out.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
