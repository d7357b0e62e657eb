#!/usr/bin/env bash
# flanneld on one host, the parts the three-host test does not reach: waiting for a
# configuration that does not exist yet (with /healthz saying 503 meanwhile), systemd's
# READY=1 on the notify socket, interface choice by --iface-regex, --iface-can-reach and
# --public-ip, masquerade through nft on a host without iptables, and docker-opts' file
# and flags. One host namespace on the lab bridge, `coreos etcd` in the hub.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
. Tests/Interop/lib/checks.sh
. Tests/Interop/lib/flannel-lab.sh
ensure_apt_packages iproute2 nftables curl python3
[ "$(id -u)" -eq 0 ] || die "flannel-host.sh needs root (network namespaces)"
ours="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
work="$(mktemp -d)"
declare -A pid=()
cleanup() {
    for name in "${!pid[@]}"; do kill "${pid[$name]}" 2>/dev/null; done
    sleep 0.3
    for name in "${!pid[@]}"; do kill -9 "${pid[$name]}" 2>/dev/null; done
    wait 2>/dev/null
    lab_teardown
    [ -n "${KEEP:-}" ] && { echo "kept $work"; return; }
    rm -rf "$work"
}
trap cleanup EXIT

endpoint="http://$lab_prefix.254:2379"
lab_create_hub
ip netns exec "$lab_hub" "$ours" etcd --data-dir "$work/etcd" --listen-client-urls "$endpoint" \
    --advertise-client-urls "$endpoint" >"$work/etcd.log" 2>&1 &
pid[etcd]=$!
etcdctl() { ip netns exec "$lab_hub" "$ours" etcdctl --endpoints "$endpoint" "$@"; }
wait_for 20 etcdctl endpoint health || die "etcd did not start"
lab_add_host 1
host="$lab-h1"
# A second interface with an address of its own, and a route to a far network through it.
ip link add "${lab}x1" netns "$lab_hub" type veth peer name eth1 netns "$host"
ip -n "$lab_hub" link set "${lab}x1" up
ip -n "$host" addr add 203.0.113.5/24 dev eth1
ip -n "$host" link set eth1 up
ip -n "$host" route add 192.0.2.128/25 via 203.0.113.1 dev eth1

# A notify socket as systemd would pass it: a datagram socket; the listener records what arrives.
python3 - "$work/notify.sock" "$work/notify.log" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as log:
    while True:
        log.write(s.recv(4096).decode() + "\n")
        log.flush()
EOF
pid[notify]=$!
wait_for 5 test -S "$work/notify.sock"

# Started before any configuration exists: it waits, says so, and /healthz answers 503.
NOTIFY_SOCKET="$work/notify.sock" FLANNELD_ETCD_ENDPOINTS="$endpoint" FLANNELD_IFACE_REGEX='^203\.0\.113\.' \
    ip netns exec "$host" "$ours" flannel --subnet-file "$work/subnet.env" --ip-masq --healthz-port 8471 \
    >"$work/flannel.log" 2>&1 &
pid[flannel]=$!
check "waits for the configuration, saying so" 0 wait_for 10 grep -q "Couldn't fetch network config: /coreos.com/network/config not found" "$work/flannel.log"
check "/healthz is 503 without a lease" 0 bash -c "ip netns exec $host curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8471/healthz | grep -qx 503"
check "no READY=1 yet" 1 grep -q READY=1 "$work/notify.log"
check "network create" 0 ip netns exec "$lab_hub" "$ours" flannel network create --etcd-endpoints "$endpoint" \
    --network 10.88.0.0/16 --backend host-gw --subnet-len 26
check "then it takes a lease" 0 wait_for 10 test -s "$work/subnet.env"
check "READY=1 on the notify socket" 0 wait_for 5 grep -qx READY=1 "$work/notify.log"
check "/healthz is 200" 0 ip netns exec "$host" curl -fsS http://127.0.0.1:8471/healthz
check "--iface-regex chose eth1 by its address" 0 grep -q "Using interface with name eth1 and address 203.0.113.5" "$work/flannel.log"
check "subnet.env with SubnetLen 26" 0 grep -Eqx 'FLANNEL_SUBNET=10\.88\.[0-9]+\.[0-9]+/26' "$work/subnet.env"
check "the lease names eth1's address" 0 bash -c "ip netns exec $lab_hub $ours etcdctl --endpoints $endpoint get --prefix --print-value-only /coreos.com/network/subnets/ | grep -q '\"PublicIP\":\"203.0.113.5\"'"
check "network show lists the lease" 0 ip netns exec "$lab_hub" "$ours" flannel network show --etcd-endpoints "$endpoint"
check "… in its table" 0 grep -Eq '^10\.88\.[0-9]+\.[0-9]+-26 +203\.0\.113\.5 +host-gw +- +lease$' last.out
check "network create refuses to replace a different configuration" 1 ip netns exec "$lab_hub" "$ours" flannel network create \
    --etcd-endpoints "$endpoint" --network 10.99.0.0/16
check "… saying how" 0 grep -q -- "--force replaces it" last.err
kill "${pid[flannel]}"
wait "${pid[flannel]}"
check "SIGTERM ends flanneld with status 0" 0 test $? = 0
unset "pid[flannel]"

# --iface-can-reach picks the interface the route uses; --public-ip overrides the address.
ip netns exec "$host" "$ours" flannel --etcd-endpoints "$endpoint" --iface-can-reach 192.0.2.200 --public-ip 198.18.0.7 \
    --subnet-file "$work/subnet2.env" >"$work/flannel2.log" 2>&1 &
pid[flannel]=$!
check "--iface-can-reach chose eth1" 0 wait_for 10 grep -q "Using interface with name eth1 and address 203.0.113.5" "$work/flannel2.log"
check "--public-ip is the published address" 0 wait_for 10 grep -q "Using 198.18.0.7 as external address" "$work/flannel2.log"
kill "${pid[flannel]}"
wait "${pid[flannel]}"
unset "pid[flannel]"

# A host with nft and no iptables: the rules go into table ip flannel.
mkdir -p "$work/bin"
for tool in nft ip; do ln -sf "$(command -v $tool)" "$work/bin/$tool"; done
PATH="$work/bin" ip netns exec "$host" "$ours" flannel --etcd-endpoints "$endpoint" --iface eth0 --ip-masq \
    --iptables-resync 1 --subnet-file "$work/subnet3.env" >"$work/flannel3.log" 2>&1 &
pid[flannel]=$!
check "nft: subnet.env written" 0 wait_for 10 test -s "$work/subnet3.env"
check "nft: masquerade through nft" 0 grep -q "Setting up masking rules (nftables)" "$work/flannel3.log"
gateway=$(sed -n 's/^FLANNEL_SUBNET=//p' "$work/subnet3.env" | cut -d/ -f1)
subnet="${gateway%.*}.$((${gateway##*.} - 1))/26"
check "nft: table ip flannel with flannel's four rules" 0 bash -c "ip netns exec $host nft list table ip flannel | grep -c -e return -e masquerade | grep -qx 4"
check "nft: a deleted table is restored" 0 bash -c "ip netns exec $host nft delete table ip flannel && sleep 2.5 && ip netns exec $host nft list table ip flannel | grep -q 'ip daddr $subnet return'"
kill "${pid[flannel]}"
wait "${pid[flannel]}"
unset "pid[flannel]"

# docker-opts: mk-docker-opts.sh's variables, to a file, individually or combined, -m.
check "docker-opts -d FILE" 0 "$ours" flannel docker-opts -f "$work/subnet.env" -d "$work/docker_opts.env"
check "… the individual and combined variables" 0 grep -qx "DOCKER_OPT_BIP=\"--bip=$(sed -n 's/^FLANNEL_SUBNET=//p' "$work/subnet.env")\"" "$work/docker_opts.env"
check "… --ip-masq=false when flannel masquerades" 0 grep -qx 'DOCKER_OPT_IPMASQ="--ip-masq=false"' "$work/docker_opts.env"
check "docker-opts -c -m -k NAME" 0 "$ours" flannel docker-opts -f "$work/subnet.env" -c -m -k FLANNEL_DOCKER
check "… only the combined variable, without --ip-masq" 0 grep -Eqx 'FLANNEL_DOCKER=" --bip=10\.88\.[0-9.]+/26 --mtu=1500"' last.out
check "docker-opts without subnet.env fails" 1 "$ours" flannel docker-opts -f "$work/missing.env"
check "flanneld with a stray argument is a usage error" 2 "$ours" flannel stray
check "flanneld --version" 0 "$ours" flannel --version

echo "flannel-host: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
