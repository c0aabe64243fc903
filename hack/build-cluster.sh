#!/usr/bin/env bash
# Builds the binaries of the local single-node cluster that hack/cluster.sh runs, besides the control plane
# of hack/build-control-plane.sh: kube-controller-manager, kube-scheduler, kubelet, kube-proxy and kubectl at
# the Kubernetes version pinned in hack/control-plane/node/go.mod, CoreDNS at $COREDNS_VERSION, and the
# static pause binary of the Pods' sandbox image — all from the Go module proxy. Cached under
# $DRIFTWATCH_CACHE (default ~/.cache/driftwatch) in a folder keyed by the versions and a hash of the build
# inputs. Prints the folder on the last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/control-plane/node
COREDNS_VERSION=${COREDNS_VERSION:-v1.14.7}
k8s_version=$(awk '/^require k8s.io\/kubernetes/ {print $3}' "$src/go.mod")
inputs_hash=$(cat "$src"/go.{mod,sum} "$src"/*.go "$src"/pause/*.go "$0" | sha256sum | cut -c1-12)
cache=${DRIFTWATCH_CACHE:-$HOME/.cache/driftwatch}
out=$cache/cluster/k8s-$k8s_version-coredns-$COREDNS_VERSION-$inputs_hash
binaries=(kube-controller-manager kube-scheduler kubelet kube-proxy kubectl coredns pause)
complete=true
for binary in "${binaries[@]}"; do [ -x "$out/$binary" ] || complete=false; done
if $complete; then
  echo "$out"
  exit 0
fi
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
export CGO_ENABLED=0 GOFLAGS="-trimpath -mod=mod" GOTOOLCHAIN=local
major=${k8s_version#v}; major=${major%%.*}
minor=${k8s_version#v*.}; minor=${minor%%.*}
version_flags="-X k8s.io/component-base/version.gitVersion=$k8s_version \
 -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version \
 -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor"
echo "building kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl $k8s_version ..." >&2
(cd "$src" && go build -ldflags "-s -w $version_flags" -o "$out.tmp/" \
  k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl \
  ./pause)
echo "building coredns $COREDNS_VERSION ..." >&2
GOBIN="$out.tmp" GOFLAGS="-trimpath" go install -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
