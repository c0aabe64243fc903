#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for the end-to-end tests and the quickstart:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy (iptables mode) and
# CoreDNS at the pinned versions (built from the Go module proxy by hack/build-control-plane.sh and
# hack/build-cluster.sh), with Debian's containerd, runc and CNI plugins. Needs root.
#
#   hack/cluster.sh up        start it (idempotent); prints the kubeconfig path last
#   hack/cluster.sh down      stop it and remove everything it made
#   hack/cluster.sh status    say whether it runs; exit 0 when the node is Ready
#   hack/cluster.sh load F…   import OCI image archives (hack/oci-image.py) into the node's containerd
#   hack/cluster.sh env       print `export KUBECONFIG=…; export PATH=…` for a shell to eval
#
# All traffic stays on this machine. The node's address lives on a bridge of its own with no other member
# ($DRIFTWATCH_NODE_IP, /32); Pods live on a second bridge made by the CNI bridge plugin (no masquerade;
# a forward rule drops whatever a Pod sends anywhere but to other Pods), Services are kube-proxy's ClusterIPs,
# and CoreDNS answers cluster names only (no forwarding). There is no registry: images are imported.
# `down` removes every process, mount, network namespace, bridge and iptables chain that `up` made, and
# restores the two sysctls it changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=${DRIFTWATCH_CLUSTER_DIR:-/var/lib/driftwatch-cluster}
node_ip=${DRIFTWATCH_NODE_IP:-10.250.0.1}
node_bridge=dw-node0
pod_bridge=dw-cni0
pod_cidr=${DRIFTWATCH_POD_CIDR:-10.244.0.0/24}
service_cidr=10.96.0.0/24
kubernetes_service_ip=10.96.0.1
node_name=driftwatch-node
pause_image=driftwatch.local/pause:1
fw_chain=DW-CLUSTER-FORWARD
log() { echo "cluster: $*" >&2; }
die() { echo "cluster: error: $*" >&2; exit 1; }

pid_alive() { [ -f "$state/pids/$1" ] && kill -0 "$(cat "$state/pids/$1")" 2>/dev/null; }

# start NAME COMMAND...: runs COMMAND in the background in a session of its own, logging to logs/NAME.log.
start() {
  local name=$1; shift
  setsid "$@" >"$state/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$state/pids/$name"
}

# wait_for WHAT SECONDS COMMAND...: polls COMMAND until it succeeds (bounded), else fails with the log.
wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "timed out after ${seconds}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

kubectl_admin() { "$bin/kubectl" --kubeconfig "$state/admin.kubeconfig" "$@"; }

binaries() {
  cp_bin=${DRIFTWATCH_CONTROL_PLANE_DIR:-$("$here/build-control-plane.sh" | tail -n 1)}
  bin=${DRIFTWATCH_CLUSTER_BIN_DIR:-$("$here/build-cluster.sh" | tail -n 1)}
}

install_host_packages() {
  local need=()
  command -v containerd >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  [ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
  command -v iptables >/dev/null || need+=(iptables)
  command -v conntrack >/dev/null || need+=(conntrack)
  command -v openssl >/dev/null || need+=(openssl)
  command -v objcopy >/dev/null || need+=(binutils)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing Debian packages: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  fi
  # The package may start a system containerd; this cluster runs its own on its own socket.
}

kubeconfig() { # kubeconfig FILE USER TOKEN
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: driftwatch
  cluster:
    server: https://$node_ip:6443
    certificate-authority: $state/pki/ca.crt
users:
- name: $2
  user:
    token: $3
contexts:
- name: driftwatch
  context:
    cluster: driftwatch
    user: $2
current-context: driftwatch
EOF
}

make_certs() {
  local pki=$state/pki
  mkdir -p "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=driftwatch-cluster-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  # cert NAME SUBJECT [SANS]: a key and a certificate signed by the cluster CA.
  cert() {
    openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
    local ext=$pki/$1.ext
    if [ -n "${3:-}" ]; then
      printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" >"$ext"
    else
      printf 'extendedKeyUsage=clientAuth\n' >"$ext"
    fi
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 30 \
      -extfile "$ext" -out "$pki/$1.crt" 2>/dev/null
  }
  cert apiserver "/CN=kube-apiserver" "IP:$node_ip,IP:$kubernetes_service_ip,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert kubelet "/CN=$node_name" "IP:$node_ip,DNS:$node_name"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  # Static tokens: one per component, the admin, and two plain users for RBAC tests (no rights until bound).
  : >"$pki/tokens.csv"
  token() { # token NAME USER GROUPS
    local value
    value=$(openssl rand -hex 16)
    echo "$value,$2,$2,\"$3\"" >>"$pki/tokens.csv"
    kubeconfig "$state/$1.kubeconfig" "$2" "$value"
  }
  token admin driftwatch-admin system:masters
  token controller-manager system:kube-controller-manager ""
  token scheduler system:kube-scheduler ""
  token kubelet "system:node:$node_name" system:nodes
  token kube-proxy system:kube-proxy ""
  token coredns driftwatch:coredns ""
  token alice alice "driftwatch:e2e-users"
  token bob bob "driftwatch:e2e-users"
  chmod 600 "$pki"/*.key "$pki/tokens.csv" "$state"/*.kubeconfig
}

write_configs() {
  mkdir -p "$state/containerd" "$state/cni/net.d" "$state/kubelet"
  cat >"$state/containerd/config.toml" <<EOF
version = 2
root = "$state/containerd/root"
state = "$state/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$state/containerd/containerd.sock"
[ttrpc]
  address = "$state/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$state/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  # Processes here lack CAP_SYS_RESOURCE: without this every sandbox fails to start.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/cni/net.d"
EOF
  cat >"$state/cni/net.d/10-driftwatch.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "driftwatch",
  "plugins": [{
    "type": "bridge",
    "bridge": "$pod_bridge",
    "isGateway": true,
    "ipMasq": false,
    "hairpinMode": true,
    "ipam": {
      "type": "host-local",
      "ranges": [[{"subnet": "$pod_cidr"}]],
      "routes": [{"dst": "0.0.0.0/0"}],
      "dataDir": "$state/cni/ipam"
    }
  }]
}
EOF
  cat >"$state/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $state/pki/kubelet.crt
tlsPrivateKeyFile: $state/pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $state/pki/ca.crt}
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://$state/containerd/containerd.sock
# cgroups are v1 here; containerd's runc uses cgroupfs.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
clusterDNS: [$node_ip]
clusterDomain: cluster.local
resolvConf: ""
# No registry: never collect the imported images.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# Absolute floors: a big disk that builds keep nearly full must not taint the node with disk-pressure
# (the default 10 % of 250 GB is 25 GB); pressure ends 30 s after the disk recovers.
evictionHard:
  memory.available: 100Mi
  nodefs.available: 512Mi
  nodefs.inodesFree: 1%
  imagefs.available: 512Mi
evictionPressureTransitionPeriod: 30s
serializeImagePulls: false
staticPodPath: ""
maxPods: 60
EOF
  cat >"$state/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $state/kube-proxy.kubeconfig
hostnameOverride: $node_name
mode: iptables
clusterCIDR: $pod_cidr
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [$node_ip/32]
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
  cat >"$state/kube-scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $state/scheduler.kubeconfig
leaderElection:
  leaderElect: false
EOF
  cat >"$state/Corefile" <<EOF
cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $node_ip
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $state/coredns.kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
.:53 {
    bind $node_ip
    # Names outside the cluster are not looked up anywhere: nothing leaves this machine.
    template ANY ANY {
        rcode NXDOMAIN
    }
}
EOF
}

setup_network() {
  # Remember the two sysctls this changes, to restore them on `down`.
  [ -f "$state/sysctl.saved" ] || {
    echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)" >"$state/sysctl.saved"
    if [ -f /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
      echo "bridge_nf=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables)" >>"$state/sysctl.saved"
    fi
  }
  ip link show "$node_bridge" >/dev/null 2>&1 || ip link add "$node_bridge" type bridge
  ip addr replace "$node_ip/32" dev "$node_bridge"
  ip link set "$node_bridge" up
  # Service addresses without a kube-proxy rule end on the empty node bridge, never on the host's default route.
  ip route replace "$service_cidr" dev "$node_bridge"
  # Pods reach Services through the node (ClusterIP DNAT), and replies between Pods on one bridge must pass
  # iptables for the reverse NAT.
  echo 1 >/proc/sys/net/ipv4/ip_forward
  [ ! -f /proc/sys/net/bridge/bridge-nf-call-iptables ] || echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
  # Forwarding is on for the Pod bridge only: whatever a Pod sends elsewhere through the node is dropped.
  iptables -w -N "$fw_chain" 2>/dev/null || iptables -w -F "$fw_chain"
  iptables -w -A "$fw_chain" -s "$pod_cidr" -o "$pod_bridge" -j RETURN
  iptables -w -A "$fw_chain" -s "$pod_cidr" -j DROP
  iptables -w -C FORWARD -j "$fw_chain" 2>/dev/null || iptables -w -I FORWARD 1 -j "$fw_chain"
}

start_processes() {
  mkdir -p "$state/logs" "$state/pids"
  if ! pid_alive etcd; then
    start etcd "$cp_bin/etcd" --data-dir "$state/etcd" \
      --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
      --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
      --initial-cluster default=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
      --unsafe-no-fsync --log-level error --quota-backend-bytes 4294967296
  fi
  if ! pid_alive containerd; then
    start containerd containerd --config "$state/containerd/config.toml"
  fi
  if ! pid_alive kube-apiserver; then
    start kube-apiserver "$cp_bin/kube-apiserver" \
      --etcd-servers http://127.0.0.1:2379 \
      --bind-address "$node_ip" --advertise-address "$node_ip" --secure-port 6443 \
      --tls-cert-file "$state/pki/apiserver.crt" --tls-private-key-file "$state/pki/apiserver.key" \
      --client-ca-file "$state/pki/ca.crt" --token-auth-file "$state/pki/tokens.csv" \
      --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
      --service-cluster-ip-range "$service_cidr" \
      --service-account-issuer https://kubernetes.default.svc.cluster.local \
      --service-account-key-file "$state/pki/sa.pub" --service-account-signing-key-file "$state/pki/sa.key" \
      --kubelet-client-certificate "$state/pki/apiserver-kubelet-client.crt" \
      --kubelet-client-key "$state/pki/apiserver-kubelet-client.key" \
      --kubelet-certificate-authority "$state/pki/ca.crt" --kubelet-preferred-address-types InternalIP \
      --allow-privileged=false --profiling=false --v=1
  fi
  wait_for "the API server" 120 kubectl_admin get --raw /readyz
  # CoreDNS reads Services, EndpointSlices, Namespaces (and Pods for `pods insecure`).
  kubectl_admin apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "driftwatch:coredns"}
rules:
- apiGroups: [""]
  resources: [services, endpoints, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "driftwatch:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "driftwatch:coredns"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "driftwatch:coredns"}]
EOF
  if ! pid_alive kube-controller-manager; then
    start kube-controller-manager "$bin/kube-controller-manager" \
      --kubeconfig "$state/controller-manager.kubeconfig" \
      --authentication-kubeconfig "$state/controller-manager.kubeconfig" \
      --authorization-kubeconfig "$state/controller-manager.kubeconfig" \
      --bind-address 127.0.0.1 --use-service-account-credentials --leader-elect=false \
      --service-account-private-key-file "$state/pki/sa.key" --root-ca-file "$state/pki/ca.crt" \
      --service-cluster-ip-range "$service_cidr" --cluster-cidr "$pod_cidr" --allocate-node-cidrs=false \
      --profiling=false --v=1
  fi
  if ! pid_alive kube-scheduler; then
    start kube-scheduler "$bin/kube-scheduler" --config "$state/kube-scheduler.yaml" \
      --authentication-kubeconfig "$state/scheduler.kubeconfig" \
      --authorization-kubeconfig "$state/scheduler.kubeconfig" --bind-address 127.0.0.1 --v=1
  fi
  wait_for "containerd" 60 ctr --address "$state/containerd/containerd.sock" version
  import_pause_image
  if ! pid_alive kubelet; then
    start kubelet "$bin/kubelet" --config "$state/kubelet/config.yaml" \
      --kubeconfig "$state/kubelet.kubeconfig" --root-dir "$state/kubelet/root" \
      --hostname-override "$node_name" --node-ip "$node_ip" --v=1
  fi
  if ! pid_alive kube-proxy; then
    start kube-proxy "$bin/kube-proxy" --config "$state/kube-proxy.yaml" --v=1
  fi
  if ! pid_alive coredns; then
    start coredns "$bin/coredns" -conf "$state/Corefile"
  fi
}

import_pause_image() {
  local archive=$state/images/pause.tar
  mkdir -p "$state/images"
  python3 "$here/oci-image.py" --name "$pause_image" --output "$archive" --entrypoint /pause \
    --user 65535:65535 --file "$bin/pause:/pause" >/dev/null
  ctr --address "$state/containerd/containerd.sock" -n k8s.io images import "$archive" >/dev/null
}

node_ready() {
  [ "$(kubectl_admin get node "$node_name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

cmd_up() {
  [ "$(id -u)" = 0 ] || die "needs root (it runs containerd and the kubelet and sets up a bridge)"
  install_host_packages
  binaries
  if [ -f "$state/admin.kubeconfig" ] && all_running && node_ready; then
    log "already up"
    echo "$state/admin.kubeconfig"
    return
  fi
  if [ -d "$state" ]; then
    log "a previous cluster was left behind; removing it first"
    cmd_down
  fi
  local t0
  t0=$(date +%s)
  mkdir -p "$state/logs" "$state/pids"
  echo "$bin" >"$state/bin-dir"
  make_certs
  write_configs
  setup_network
  start_processes
  if ! wait_for "the node to be Ready" 180 node_ready; then
    tail -n 30 "$state/logs/kubelet.log" >&2
    die "the node did not become Ready (logs in $state/logs)"
  fi
  # ServiceAccounts come from the controller-manager; wait for the default namespace's.
  wait_for "the default ServiceAccount" 60 kubectl_admin get serviceaccount default -n default
  log "up in $(( $(date +%s) - t0 ))s: node $node_name at $node_ip, Pods $pod_cidr, Services $service_cidr"
  log "use it with: eval \"\$($0 env)\""
  echo "$state/admin.kubeconfig"
}

all_running() {
  local name
  for name in etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns; do
    pid_alive "$name" || return 1
  done
}

cmd_status() {
  [ -d "$state" ] || { echo "down"; return 1; }
  local name code=0
  for name in etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns; do
    if pid_alive "$name"; then echo "running  $name (pid $(cat "$state/pids/$name"))"; else echo "stopped  $name"; code=1; fi
  done
  bin=$(cat "$state/bin-dir" 2>/dev/null || true)
  if [ -n "$bin" ] && node_ready; then echo "node $node_name Ready"; else echo "node $node_name not Ready"; code=1; fi
  return $code
}

cmd_env() {
  [ -f "$state/admin.kubeconfig" ] || die "the cluster is not up (hack/cluster.sh up)"
  echo "export KUBECONFIG=$state/admin.kubeconfig"
  echo "export PATH=$(cat "$state/bin-dir"):\$PATH"
}

cmd_load() {
  [ -S "$state/containerd/containerd.sock" ] || die "the cluster is not up (hack/cluster.sh up)"
  local archive
  for archive in "$@"; do
    ctr --address "$state/containerd/containerd.sock" -n k8s.io images import "$archive" >&2
  done
}

stop_process() { # stop_process NAME: SIGTERM, then SIGKILL after 10 s
  local pid
  [ -f "$state/pids/$1" ] || return 0
  pid=$(cat "$state/pids/$1")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$state/pids/$1"
}

kill_pods() {
  # Container processes live in the kubelet's cgroups (cgroupfs); their shims carry our socket path.
  local round pids
  for round in 1 2 3; do
    pids=$(cat /sys/fs/cgroup/*/kubepods/cgroup.procs /sys/fs/cgroup/*/kubepods/*/cgroup.procs \
      /sys/fs/cgroup/*/kubepods/*/*/cgroup.procs /sys/fs/cgroup/*/kubepods/*/*/*/cgroup.procs 2>/dev/null | sort -u || true)
    pids="$pids $(pgrep -f "containerd-shim.*$state/containerd" || true)"
    [ -n "${pids// /}" ] || break
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.5
  done
  local dir
  for dir in /sys/fs/cgroup/*/kubepods; do
    [ -d "$dir" ] || continue
    find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

remove_iptables() { # remove_iptables CMD: every chain named KUBE-*, CNI-* or DW-* and the jumps to them
  local ipt=$1 table chain rule
  command -v "$ipt" >/dev/null || return 0
  for table in filter nat mangle; do
    # Jumps from the built-in chains first, then flush and delete the chains themselves.
    { "$ipt-save" -t "$table" 2>/dev/null || true; } \
      | { grep -E '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j (KUBE-|CNI-|DW-)' || true; } \
      | while read -r rule; do
        eval "$ipt -w -t $table ${rule/-A /-D }" 2>/dev/null || true
      done
    for chain in $("$ipt-save" -t "$table" 2>/dev/null | sed -n 's/^:\(\(KUBE\|CNI\|DW\)-[^ ]*\) .*/\1/p'); do
      "$ipt" -w -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $("$ipt-save" -t "$table" 2>/dev/null | sed -n 's/^:\(\(KUBE\|CNI\|DW\)-[^ ]*\) .*/\1/p'); do
      "$ipt" -w -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
}

cmd_down() {
  [ "$(id -u)" = 0 ] || die "needs root"
  local name
  for name in kube-proxy kubelet kube-scheduler kube-controller-manager coredns; do stop_process "$name"; done
  kill_pods
  for name in containerd kube-apiserver etcd; do stop_process "$name"; done
  # Any process of ours that lost its pid file (e.g. an interrupted `up`).
  pkill -KILL -f -- "$state/" 2>/dev/null || true
  sleep 0.2
  # Mounts under the state folder (the kubelet's volumes, containerd's snapshots and sandbox files), deepest first.
  local mount_point
  for mount_point in $(awk -v s="$state/" 'index($2, s) == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$mount_point" 2>/dev/null || true
  done
  local ns
  for ns in /var/run/netns/cni-*; do
    [ -e "$ns" ] || continue
    umount -l "$ns" 2>/dev/null || true
    rm -f "$ns"
  done
  ip link show "$pod_bridge" >/dev/null 2>&1 && ip link delete "$pod_bridge"
  ip link show "$node_bridge" >/dev/null 2>&1 && ip link delete "$node_bridge"
  local veth
  for veth in $(ip -o link show type veth 2>/dev/null | awk -F': ' '/master '"$pod_bridge"'/ {print $2}' | cut -d@ -f1); do
    ip link delete "$veth" 2>/dev/null || true
  done
  remove_iptables iptables
  remove_iptables ip6tables
  if command -v conntrack >/dev/null; then conntrack -D -s "$pod_cidr" >/dev/null 2>&1 || true; fi
  if [ -f "$state/sysctl.saved" ]; then
    # shellcheck disable=SC1091
    . "$state/sysctl.saved"
    echo "${ip_forward:-0}" >/proc/sys/net/ipv4/ip_forward
    [ -z "${bridge_nf:-}" ] || echo "$bridge_nf" >/proc/sys/net/bridge/bridge-nf-call-iptables
  fi
  rm -rf "$state"
  if ! residue=$(leftovers); then
    log "down left these behind:"
    echo "$residue" >&2
    return 1
  fi
  log "down: no process, mount, network namespace, bridge or iptables chain of the cluster is left"
}

# leftovers: prints what `down` should have removed and fails when anything is left.
leftovers() {
  local found="" ipt
  add() { [ -z "$1" ] || found+="$1"$'\n'; }
  add "$(pgrep -af -- "$state/" 2>/dev/null | sed 's/^/process: /')"
  add "$(awk -v s="$state/" 'index($2, s) == 1 {print "mount: " $2}' /proc/mounts)"
  add "$(ls /var/run/netns/ 2>/dev/null | grep '^cni-' | sed 's/^/netns: /')"
  add "$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | grep -E "^($pod_bridge|$node_bridge)(@|$)" | sed 's/^/link: /')"
  add "$(ip route show "$service_cidr" 2>/dev/null | sed 's/^/route: /')"
  for ipt in iptables ip6tables; do
    command -v "$ipt-save" >/dev/null || continue
    add "$({ "$ipt-save" 2>/dev/null || true; } | grep -E '^:(KUBE|CNI|DW)-|-j (KUBE|CNI|DW)-' | sed "s/^/$ipt: /")"
  done
  [ ! -d "$state" ] || add "folder: $state"
  [ -z "$found" ] || { printf '%s' "$found"; return 1; }
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  load) shift; cmd_load "$@" ;;
  *) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
