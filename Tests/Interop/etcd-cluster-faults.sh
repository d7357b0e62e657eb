#!/usr/bin/env bash
# Fault test of a three-member `coreos etcd` cluster under a concurrent client workload
# (Tests/Interop/tools/etcd-workload.py, six clients over all members): the leader is
# killed with SIGKILL and restarted, a member is cut off from the others (it lives in a
# network namespace of its own; blackhole routes on both sides partition it) and healed,
# and the leader is killed once more. Afterwards every acknowledged write-once key must be
# present on every member, and the recorded history of the shared registers must be
# linearizable (Tests/Interop/tools/linearizability.py, which first proves on known
# histories that it can tell). Snapshots every 500 entries, so restarted and cut-off
# members also catch up from snapshots.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-client python3-etcd3 iproute2
[ "$(id -u)" = 0 ] || die "needs root for a network namespace"
ours_binary="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
work="$(mktemp -d)"
namespace="coreos-fault-$$"
host_link="cfh$$" inner_link="cfn$$"
host_ip=10.231.7.1 inner_ip=10.231.7.2
declare -A pid=()
cleanup() {
    for name in "${!pid[@]}"; do kill -9 "${pid[$name]}" 2>/dev/null; done
    wait 2>/dev/null
    ip route del blackhole "$inner_ip/32" 2>/dev/null
    ip link del "$host_link" 2>/dev/null
    ip netns del "$namespace" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
/usr/bin/python3 Tests/Interop/tools/linearizability.py --self-test || die "the checker cannot tell histories apart"

ip netns add "$namespace" || die "cannot create network namespace"
ip link add "$host_link" type veth peer name "$inner_link" || die "cannot create veth pair"
ip link set "$inner_link" netns "$namespace"
ip addr add "$host_ip/24" dev "$host_link"
ip link set "$host_link" up
ip -n "$namespace" addr add "$inner_ip/24" dev "$inner_link"
ip -n "$namespace" link set "$inner_link" up
ip -n "$namespace" link set lo up

declare -A client=([m1]="$host_ip:24901" [m2]="$host_ip:24903" [m3]="$inner_ip:24905")
declare -A peer=([m1]="$host_ip:24902" [m2]="$host_ip:24904" [m3]="$inner_ip:24906")
cluster="m1=http://${peer[m1]},m2=http://${peer[m2]},m3=http://${peer[m3]}"
start() { # NAME
    local prefix=()
    [ "$1" = m3 ] && prefix=(ip netns exec "$namespace")
    "${prefix[@]}" "$ours_binary" etcd --name "$1" --data-dir "$work/$1.etcd" \
        --listen-client-urls "http://${client[$1]}" --advertise-client-urls "http://${client[$1]}" \
        --listen-peer-urls "http://${peer[$1]}" --initial-advertise-peer-urls "http://${peer[$1]}" \
        --initial-cluster "$cluster" --initial-cluster-token fault-test --snapshot-count 500 >>"$work/$1.log" 2>&1 &
    pid[$1]=$!
}
ctl() { ETCDCTL_API=3 etcdctl --command-timeout=3s "$@"; }
leader() {
    for name in m1 m2 m3; do
        if ctl --endpoints="${client[$name]}" endpoint status -w json 2>/dev/null |
            python3 -c 'import json,sys; s=json.load(sys.stdin)[0]["Status"]; sys.exit(0 if s.get("leader")==s["header"]["member_id"] else 1)'; then
            echo "$name"
            return
        fi
    done
}
wait_for_leader() {
    for _ in $(seq 100); do
        current=$(leader)
        [ -n "$current" ] && { echo "$current"; return; }
        sleep 0.1
    done
}
for name in m1 m2 m3; do start "$name"; done
[ -n "$(wait_for_leader)" ] || die "no leader elected"

/usr/bin/python3 Tests/Interop/tools/etcd-workload.py 30 "$work/history" "$work/acked" "${client[m1]}" "${client[m2]}" "${client[m3]}" &
workload=$!
sleep 5
victim=$(wait_for_leader)
log "kill -9 the leader ($victim)"
kill -9 "${pid[$victim]}"
sleep 3
start "$victim"
sleep 4
log "partition m3"
ip route add blackhole "$inner_ip/32"
ip -n "$namespace" route add blackhole "$host_ip/32"
sleep 6
log "heal m3"
ip route del blackhole "$inner_ip/32"
ip -n "$namespace" route del blackhole "$host_ip/32"
sleep 4
victim=$(wait_for_leader)
log "kill -9 the leader ($victim) again"
kill -9 "${pid[$victim]}"
sleep 2
start "$victim"
wait "$workload" || die "the workload failed"

failed=0
sleep 2
for name in m1 m2 m3; do
    # Every member, once caught up, holds every acknowledged write-once key.
    for _ in $(seq 50); do
        ctl --endpoints="${client[$name]}" get own/ --prefix --keys-only --consistency=s 2>/dev/null | grep . | sort >"$work/$name.keys"
        missing=$(sort "$work/acked" | grep . | comm -23 - "$work/$name.keys" | wc -l)
        [ "$missing" = 0 ] && break
        sleep 0.2
    done
    if [ "$missing" != 0 ]; then
        echo "member $name is missing $missing acknowledged keys"
        failed=1
    fi
done
# A final linearizable read of every register joins the history.
/usr/bin/python3 - "$work/history" "${client[m1]}" <<'PY'
import json, sys, time, etcd3
host, port = sys.argv[2].rsplit(":", 1)
c = etcd3.client(host=host, port=int(port), timeout=5)
with open(sys.argv[1], "a") as h:
    for i in range(4):
        t = time.monotonic() + 1e6  # after everything
        value, _ = c.get(f"reg/{i}")
        h.write(json.dumps({"key": f"reg/{i}", "kind": "read", "value": value.decode() if value else None,
                            "call": t, "return": t + 1}) + "\n")
PY
/usr/bin/python3 Tests/Interop/tools/linearizability.py "$work/history" || failed=1
echo "acknowledged write-once keys: $(grep -c . "$work/acked")"
[ "$failed" = 0 ] && echo "etcd cluster faults: nothing acknowledged lost, history linearizable"
exit "$failed"
