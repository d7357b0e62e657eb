#!/usr/bin/env bash
# `coreos node` with no configuration, as the quick start runs it, inside a network
# namespace of its own (one interface with a default route, so flannel can run): etcd,
# flannel and fleetd come up in order, the three commands it suggests work (a unit from
# contrib/examples runs), a killed service is restarted, and SIGTERM stops everything,
# leaving no process behind.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
. Tests/Interop/lib/checks.sh
. Tests/Interop/lib/flannel-lab.sh
[ "$(id -u)" -eq 0 ] || die "node-single.sh needs root (network namespaces)"
ours="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
work="$(mktemp -d)"
node_pid=""
cleanup() {
    [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null && sleep 2
    pkill -9 -f "$work" 2>/dev/null
    wait 2>/dev/null
    lab_teardown
    [ -n "${KEEP:-}" ] && { echo "kept $work"; return; }
    rm -rf "$work"
}
trap cleanup EXIT

lab_create_hub
lab_add_host 1
ip -n "$lab-h1" route add default via "$lab_prefix.254"
socket="$work/run/fleet.sock"
ip netns exec "$lab-h1" "$ours" node --data-dir "$work/data" --run-dir "$work/run" --machine-id 5ab1e0000000000000000000000000a1 \
    >"$work/node.out" 2>"$work/node.err" &
node_pid=$!
check "the node comes up" 0 wait_for 90 grep -q "coreos node is up" "$work/node.out"
check "… etcd, flannel and fleet in that order" 0 bash -c "grep -o '^coreos node: [a-z]*: ready' $work/node.err | awk '{print \$3}' | tr -d : | tr '\n' ' ' | grep -qx 'etcd flannel fleet '"
check "… printing the three commands to try" 0 grep -q "fleetctl --endpoint unix://$socket list-machines" "$work/node.out"
check "etcdctl member list" 0 ip netns exec "$lab-h1" "$ours" etcdctl member list
check "flannel leased a subnet of the default network" 0 grep -q '^FLANNEL_NETWORK=10.5.0.0/16$' "$work/run/flannel/subnet.env"
check "fleetctl list-machines" 0 ip netns exec "$lab-h1" "$ours" fleetctl --endpoint "unix://$socket" list-machines
check "… shows this machine" 0 grep -q "5ab1e000" last.out
check "fleetctl start contrib/examples/hello.service" 0 ip netns exec "$lab-h1" "$ours" fleetctl --endpoint "unix://$socket" start contrib/examples/hello.service
check "… the unit runs" 0 wait_for 20 bash -c "ip netns exec $lab-h1 $ours fleetctl --endpoint unix://$socket list-units --no-legend | grep -q 'hello.service.*active.*running'"
fleet_child=$(pgrep -f -n "coreos fleet" -P "$node_pid")
check "a killed fleetd is restarted" 0 kill -9 "$fleet_child"
check "… and answers again" 0 wait_for 30 bash -c "grep -q 'fleet: exited with status' $work/node.err && ip netns exec $lab-h1 $ours fleetctl --endpoint unix://$socket list-machines"
children=$(pgrep -P "$node_pid" | tr '\n' ' ')
kill "$node_pid"
wait "$node_pid"
check "SIGTERM stops the node with status 0" 0 test $? = 0
node_pid=""
check "… stopping fleet, flannel, etcd in that order" 0 bash -c "grep -o '^coreos node: [a-z]*: stopping' $work/node.err | awk '{print \$3}' | tr -d : | tr '\n' ' ' | grep -qx 'fleet flannel etcd '"
check "… leaving none of its services running" 1 bash -c "for p in $children; do kill -0 \$p 2>/dev/null && exit 0; done; exit 1"
check "a worker without a cluster to proxy to is refused" 1 "$ours" node --role worker --data-dir "$work/w" --run-dir "$work/w/run"
check "… saying what it needs" 0 grep -q "initial_cluster or discovery" last.err

echo "node-single: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
