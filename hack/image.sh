#!/usr/bin/env bash
# Builds driftwatch's container images without a container engine (hack/oci-image.py), from binaries
# already built on this machine, and optionally imports them into the local cluster (hack/cluster.sh).
#
#   hack/image.sh driftwatch DIR [--load]    DIR holds driftwatch and kubectl-drift (target/release, or the
#                                            test build's target/debug)
#   hack/image.sh testbed BINARY [--load]    the end-to-end tests' servers (target/debug/examples/driftwatch-testbed)
#
# The driftwatch image matches the Dockerfile's runtime: the binaries at /usr/local/bin, uid 65532, the same
# entrypoint, nothing writable but /tmp (the chart mounts an emptyDir there), plus exactly the shared
# libraries `ldd` lists and the CA bundle. The tag is a hash of the binaries; archives are cached under
# $DRIFTWATCH_CACHE/images. Prints the image reference on the last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${DRIFTWATCH_CACHE:-$HOME/.cache/driftwatch}/images
kind=${1:-}
src=${2:-}
load=false
[ "${3:-}" = --load ] && load=true
usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
command -v objcopy >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binutils >&2; }

passwd_args=(--text "/etc/passwd=root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
" --text "/etc/group=root:x:0:
nonroot:x:65532:
" --dir /tmp:1777 --dir /home/nonroot:755)
ca_args=()
[ -f /etc/ssl/certs/ca-certificates.crt ] && ca_args=(--file /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt)

case $kind in
  driftwatch)
    [ -x "$src/driftwatch" ] && [ -x "$src/kubectl-drift" ] || { echo "error: $src has no driftwatch and kubectl-drift" >&2; exit 1; }
    tag=dev-$(cat "$src/driftwatch" "$src/kubectl-drift" "$here/oci-image.py" | sha256sum | cut -c1-12)
    ref=driftwatch.local/driftwatch:$tag
    archive=$cache/driftwatch-$tag.tar
    image_args=(--binary "$src/driftwatch:/usr/local/bin/driftwatch" --binary "$src/kubectl-drift:/usr/local/bin/kubectl-drift"
      --entrypoint /usr/local/bin/driftwatch --cmd=--help)
    ;;
  testbed)
    [ -x "$src" ] || { echo "error: $src is not an executable" >&2; exit 1; }
    tag=dev-$(cat "$src" "$here/oci-image.py" | sha256sum | cut -c1-12)
    ref=driftwatch.local/driftwatch-testbed:$tag
    archive=$cache/driftwatch-testbed-$tag.tar
    image_args=(--binary "$src:/usr/local/bin/driftwatch-testbed" --entrypoint /usr/local/bin/driftwatch-testbed)
    ;;
  *) usage ;;
esac

if [ ! -f "$archive" ]; then
  mkdir -p "$cache"
  python3 "$here/oci-image.py" --name "$ref" --output "$archive" --strip --user 65532:65532 \
    "${passwd_args[@]}" "${ca_args[@]}" "${image_args[@]}" \
    --label "org.opencontainers.image.title=$kind" --label "org.opencontainers.image.version=$tag" >&2
fi
if $load; then
  "$here/cluster.sh" load "$archive"
fi
echo "$ref"
