#!/usr/bin/env bash
# Overlay throughput and route convergence of `coreos flannel`, side by side in one run.
#
#   contrib/bench/flannel-overlay.sh [ROUNDS] [SECONDS]      (root; defaults 3 rounds, 5 s)
#
# Two hosts in network namespaces on a bridge, one container namespace on each (the lab of
# Tests/Interop/lib/flannel-lab.sh), iperf3 TCP from container 1 to container 2. Modes,
# interleaved within each round so that the machine's load hits them alike:
#   veth          host to host on the underlay (the physical limit)
#   hand-vxlan    flannel.1 built by hand with ip/bridge exactly as flannel programs it
#   coreos-vxlan  the same built by `coreos flannel` (goal: >= 0.95 x hand-vxlan)
#   coreos-hostgw `coreos flannel` host-gw
#   c-udp         TUN flannel0 + the C forwarder in contrib/bench/udp-forwarder.c (flannel's
#                 udp proxy model: poll, one read/sendto per packet)
#   coreos-udp    `coreos flannel` udp (goal: >= 1.0 x c-udp)
# Then route convergence: with `coreos flannel` (vxlan) running on host 1, a new lease is
# written to etcd and the time until host 1's kernel holds its route is measured (goal < 1 s),
# and the time until it is gone after the lease is deleted.
# COREOS_BINARY overrides the binary (default: the release build, built if missing).
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
. Tests/Interop/lib/flannel-lab.sh
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
ensure_apt_packages iperf3 iproute2 iptables busybox-static gcc libc6-dev
rounds=${1:-3}
duration=${2:-5}
if [ -z "${COREOS_BINARY:-}" ]; then
    [ -x "$COREOS_RELEASE_SCRATCH/release/coreos" ] || build_release
    COREOS_BINARY="$PWD/$COREOS_RELEASE_SCRATCH/release/coreos"
fi
ours="$COREOS_BINARY"
work="$(mktemp -d)"
declare -A pid=()
cleanup() {
    for name in "${!pid[@]}"; do kill "${pid[$name]}" 2>/dev/null; done
    sleep 0.3
    for name in "${!pid[@]}"; do kill -9 "${pid[$name]}" 2>/dev/null; done
    wait 2>/dev/null
    lab_teardown
    rm -rf "$work"
}
trap cleanup EXIT

gcc -O2 -o "$work/udp-forwarder" contrib/bench/udp-forwarder.c || die "cannot build the C forwarder"
endpoint="http://$lab_prefix.254:2379"
lab_create_hub
ip netns exec "$lab_hub" "$ours" etcd --data-dir "$work/etcd" --listen-client-urls "$endpoint" \
    --advertise-client-urls "$endpoint" >"$work/etcd.log" 2>&1 &
pid[etcd]=$!
etcdctl() { ip netns exec "$lab_hub" "$ours" etcdctl --endpoints "$endpoint" "$@"; }
for _ in $(seq 100); do etcdctl endpoint health >/dev/null 2>&1 && break; sleep 0.1; done

fake_env() { # FILE SUBNET MTU
    printf 'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=%s\nFLANNEL_MTU=%s\nFLANNEL_IPMASQ=false\n' "$2" "$3" >"$1"
}
start_flannel() { # N
    ip netns exec "$lab-h$1" "$ours" flannel --etcd-endpoints "$endpoint" --iface eth0 \
        --subnet-file "$work/h$1.env" >"$work/h$1.flannel.log" 2>&1 &
    pid[flannel-$1]=$!
}

setup() { # MODE
    local mode=$1 n mac
    lab_add_host 1
    lab_add_host 2
    case $mode in
    veth) return ;;
    hand-vxlan)
        for n in 1 2; do
            ip -n "$lab-h$n" link add flannel.1 type vxlan id 1 local "$lab_prefix.$n" dev eth0 dstport 8472 nolearning
            ip -n "$lab-h$n" link set flannel.1 mtu 1450
            ip -n "$lab-h$n" addr add "10.5.$n.0/32" dev flannel.1
            ip -n "$lab-h$n" link set flannel.1 up
            fake_env "$work/h$n.env" "10.5.$n.1/24" 1450
        done
        for n in 1 2; do
            local peer=$((3 - n))
            mac=$(ip netns exec "$lab-h$peer" cat /sys/class/net/flannel.1/address)
            ip -n "$lab-h$n" neigh replace "10.5.$peer.0" lladdr "$mac" dev flannel.1 nud permanent
            bridge -n "$lab-h$n" fdb replace "$mac" dev flannel.1 dst "$lab_prefix.$peer" self permanent
            ip -n "$lab-h$n" route replace "10.5.$peer.0/24" via "10.5.$peer.0" dev flannel.1 onlink
        done
        ;;
    c-udp)
        for n in 1 2; do
            local peer=$((3 - n))
            ip netns exec "$lab-h$n" "$work/udp-forwarder" flannel0 "$lab_prefix.$n" 8285 "10.5.$peer.0/24=$lab_prefix.$peer" &
            pid[forwarder-$n]=$!
            wait_for 5 ip -n "$lab-h$n" link show flannel0
            ip -n "$lab-h$n" link set flannel0 mtu 1472
            ip -n "$lab-h$n" addr add "10.5.$n.0/16" dev flannel0
            ip -n "$lab-h$n" link set flannel0 up
            fake_env "$work/h$n.env" "10.5.$n.1/24" 1472
        done
        ;;
    coreos-*)
        local type=${mode#coreos-}
        [ "$type" = hostgw ] && type=host-gw
        etcdctl del --prefix /coreos.com/network/ >/dev/null
        ip netns exec "$lab_hub" "$ours" flannel network create --etcd-endpoints "$endpoint" --force \
            "{\"Network\":\"10.5.0.0/16\",\"Backend\":{\"Type\":\"$type\"}}" >/dev/null \
            || die "network create failed"
        for n in 1 2; do start_flannel "$n"; done
        for n in 1 2; do wait_for 20 test -s "$work/h$n.env" || die "$mode: no subnet.env on host $n"; done
        ;;
    esac
    for n in 1 2; do lab_add_container "$n" "$work/h$n.env"; done
    wait_for 10 ip netns exec "$lab-c1" busybox ping -c 1 -W 1 "$(lab_container_ip "$work/h2.env")" \
        || die "$mode: container 1 cannot reach container 2"
}
teardown() {
    local name
    for name in "${!pid[@]}"; do
        [ "$name" = etcd ] && continue
        kill "${pid[$name]}" 2>/dev/null
        wait "${pid[$name]}" 2>/dev/null
        unset "pid[$name]"
    done
    lab_remove_hosts
    rm -f "$work"/h*.env
}
measure() { # MODE: prints "Gbit/s retransmits ping-median-ms"
    local mode=$1 client=$lab-c1 server=$lab-c2 target
    if [ "$mode" = veth ]; then
        client=$lab-h1 server=$lab-h2 target=$lab_prefix.2
    else
        target=$(lab_container_ip "$work/h2.env")
    fi
    ip netns exec "$server" iperf3 -s -1 >/dev/null 2>&1 &
    local server_pid=$!
    sleep 0.3
    ip netns exec "$client" iperf3 -c "$target" -t "$duration" -J >"$work/iperf.json" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    local ping_ms
    ping_ms=$(ip netns exec "$client" busybox ping -c 50 -i 0.01 "$target" 2>/dev/null |
        sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -n | awk '{v[NR]=$1} END {print (NR ? v[int((NR+1)/2)] : "-")}')
    python3 -c '
import json, sys
result = json.load(open(sys.argv[1]))["end"]
print("%.2f %d" % (result["sum_received"]["bits_per_second"] / 1e9, result["sum_sent"].get("retransmits", 0)))
' "$work/iperf.json" | tr '\n' ' '
    echo "$ping_ms"
}

modes=(veth hand-vxlan coreos-vxlan coreos-hostgw c-udp coreos-udp)
declare -A results=()
printf '%-6s %-14s %8s %8s %10s\n' round mode Gbit/s retrans ping-ms
for round in $(seq "$rounds"); do
    for mode in "${modes[@]}"; do
        setup "$mode"
        line=$(measure "$mode")
        teardown
        results[$round-$mode]=${line%% *}
        # shellcheck disable=SC2086
        printf '%-6s %-14s %8s %8s %10s\n' "$round" "$mode" $line
    done
done

ratio_summary() { # OURS REFERENCE
    local r values=()
    for r in $(seq "$rounds"); do
        values+=("$(awk -v a="${results[$r-$1]}" -v b="${results[$r-$2]}" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')")
    done
    printf '%s / %s per round: %s; median %s\n' "$1" "$2" "${values[*]}" \
        "$(printf '%s\n' "${values[@]}" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')"
}
echo
ratio_summary coreos-vxlan hand-vxlan
ratio_summary coreos-udp c-udp
ratio_summary coreos-vxlan veth

# Route convergence: a lease appears (or goes) in etcd; how long until host 1's kernel agrees.
lab_add_host 1
etcdctl del --prefix /coreos.com/network/ >/dev/null
ip netns exec "$lab_hub" "$ours" flannel network create --etcd-endpoints "$endpoint" --force '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}' >/dev/null
start_flannel 1
wait_for 20 test -s "$work/h1.env" || die "convergence: flanneld did not start"
now_ms() { echo $(($(date +%s%N) / 1000000)); }
adds=() removes=()
for i in $(seq 20); do
    subnet="10.5.$((100 + i)).0"
    value="{\"PublicIP\":\"$lab_prefix.$((100 + i))\",\"PublicIPv6\":null,\"BackendType\":\"vxlan\",\"BackendData\":{\"VNI\":1,\"VtepMAC\":\"0a:00:00:00:00:$(printf %02x "$i")\"},\"BackendV6Data\":null}"
    start=$(now_ms)
    etcdctl put "/coreos.com/network/subnets/$subnet-24" "$value" >/dev/null
    until ip -n "$lab-h1" route show "$subnet/24" | grep -q .; do :; done
    adds+=($(($(now_ms) - start)))
    start=$(now_ms)
    etcdctl del "/coreos.com/network/subnets/$subnet-24" >/dev/null
    while ip -n "$lab-h1" route show "$subnet/24" | grep -q .; do :; done
    removes+=($(($(now_ms) - start)))
done
stats() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {printf "median %d ms, max %d ms (n=%d)", v[int((NR+1)/2)], v[NR], NR}'; }
echo "route convergence after a new lease (etcdctl put included): $(stats "${adds[@]}")"
echo "route removal after a deleted lease (etcdctl del included): $(stats "${removes[@]}")"
