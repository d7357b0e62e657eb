#!/usr/bin/env bash
# coreos run's default network, inside network and mount namespaces this test makes (so
# the bridge, the masquerade rule and /run/flannel are its own): a pod gets an address,
# a route and its gateway; two pods talk to each other; flannel's subnet.env decides the
# subnet when it exists; nothing is left when the pods are gone.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh

ours="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
[ -x "$ours" ] || die "build first: $ours is missing"
[ "$(id -u)" = 0 ] || die "needs root"
command -v iptables >/dev/null || die "iptables is missing (package iptables)"
images=/var/tmp/coreos-runtime-images
Tests/Interop/tools/runtime-images.sh "$images" || die "building the test images failed"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

unshare --net --mount --propagation private bash -s "$ours" "$images" "$work" <<'INSIDE'
set -uo pipefail
ours=$1
images=$2
work=$3
ip link set lo up
mount -t tmpfs tmpfs /run
store="$work/store"
mkdir -p "$work/rkt/net.d"
cat >"$work/rkt/net.d/10-blue.conf" <<'JSON'
{"cniVersion": "0.3.1", "name": "blue", "type": "bridge", "bridge": "blue0", "ipMasq": false,
 "ipam": {"type": "host-local", "subnet": "10.77.0.0/24"}}
JSON
run() { "$ours" run --dir "$store" --local-config="$work/rkt" --insecure-options=image "$@"; }
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done; }
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

out=$(run run "$images/busybox.aci" --exec /bin/sh -- -c \
    'ip -4 addr show eth0 | grep -o "inet [0-9./]*"; ip route | grep -o "default via [0-9.]*"; ping -c1 -W2 172.16.28.1 >/dev/null && echo gateway-ok')
[ "$out" = "$(printf 'inet 172.16.28.2/24\ndefault via 172.16.28.1\ngateway-ok')" ] || fail "default network: '$out'"
iptables -t nat -S POSTROUTING | grep -q -- '-s 172.16.28.0/24 ! -d 172.16.28.0/24 .*MASQUERADE' || fail "no masquerade rule"
[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || fail "forwarding is off"

# Two pods: a listener and a client that finds it by the address status reports.
run run --uuid-file-save="$work/server" "$images/busybox.aci" --exec /bin/sh -- -c 'echo hello-from-server | nc -l -p 8080' >"$work/server.out" &
pids+=($!)
address=""
for _ in $(seq 50); do
    [ -s "$work/server" ] && address=$(run status "$(cat "$work/server")" 2>/dev/null | sed -n 's/^networks=default:ip4=//p')
    [ -n "$address" ] && break
    sleep 0.1
done
[ -n "$address" ] || fail "status shows no address for the server pod"
sleep 0.3
out=$(run run "$images/busybox.aci" --exec /bin/sh -- -c "nc $address 8080 </dev/null")
[ "$out" = hello-from-server ] || fail "pod to pod: '$out' (server at $address)"
wait "${pids[0]}"

# --port: the host port reaches the app's named port (ACI "http", OCI "8080-tcp").
for image in "$images/busybox.aci=http" "oci:$images/oci:web=8080-tcp"; do
    name=${image##*=}
    run run --port="$name:18080" "${image%=*}" --exec /bin/sh -- -c 'echo forwarded | nc -l -p 8080' &
    pids+=($!)
    got=$(python3 - <<'PY'
import socket, time
for _ in range(50):
    try:
        with socket.create_connection(("172.16.28.1", 18080), timeout=2) as connection:
            data = connection.recv(100).decode().strip()
            if data:
                print(data)
                break
    except OSError:
        pass
    time.sleep(0.1)
PY
)
    [ "$got" = forwarded ] || fail "--port $name: got '$got'"
    wait "${pids[-1]}"
    iptables -t nat -S | grep -q 'coreos run pod' && fail "--port $name: forwarding rules left after the pod"
done
run run --port=nope:1 "$images/busybox.aci" --exec /bin/true 2>/dev/null
[ $? = 254 ] || fail "an undeclared port name was accepted"

# A second network from net.d: eth1 on it, the default route stays on the default network.
out=$(run run --net=default,blue "$images/busybox.aci" --exec /bin/sh -- -c \
    'for i in eth0 eth1; do ip -4 addr show $i | grep -o "inet [0-9./]*"; done; ip route | grep -o "default via [0-9.]*"')
[ "$out" = "$(printf 'inet 172.16.28.2/24\ninet 10.77.0.2/24\ndefault via 172.16.28.1')" ] || fail "--net=default,blue: '$out'"
out=$(run run --net=blue "$images/busybox.aci" --exec /bin/sh -- -c 'ip -4 addr show eth0 | grep -o "inet [0-9./]*"; ping -c1 -W2 10.77.0.1 >/dev/null && echo gateway-ok')
[ "$out" = "$(printf 'inet 10.77.0.2/24\ngateway-ok')" ] || fail "--net=blue: '$out'"
run run --net=red "$images/busybox.aci" --exec /bin/true 2>"$work/err"
[ $? = 254 ] && grep -q 'no network red' "$work/err" || fail "an unknown network: $(cat "$work/err")"

# flannel's lease decides the subnet and the gateway.
mkdir -p /run/flannel
printf 'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n' >/run/flannel/subnet.env
ip link delete coreos0 2>/dev/null
out=$(run run "$images/busybox.aci" --exec /bin/sh -- -c 'ip -4 addr show eth0 | grep -o "inet [0-9./]*"; cat /sys/class/net/eth0/mtu')
[ "$out" = "$(printf 'inet 10.5.72.2/24\n1450')" ] || fail "flannel subnet: '$out'"

# Nothing left behind.
run gc --grace-period=0s >/dev/null
[ "$(ip -o link show type veth | wc -l)" = 0 ] || fail "veths left: $(ip -o link show type veth)"
[ -z "$(ls "$store/net/default" 2>/dev/null)" ] || fail "addresses not released: $(ls "$store/net/default")"
[ "$failures" = 0 ] || exit 1
echo "runtime network: all checks passed"
INSIDE
status=$?
[ "$status" = 0 ] || die "runtime network checks failed"
