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
ensure_apt_packages etcd-client python3-etcd3 iproute2 iputils-ping
[ "$(id -u)" = 0 ] || die "needs root for a network namespace"
ours_binary="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
work="$(mktemp -d)"
# Two fresh network namespaces joined by a veth pair: m1, m2 and the clients in one, m3
# in the other. Nothing of the host's network (its firewall, its addresses, leftovers of
# a killed run) is in the path; blackhole routes on both sides partition m3.
majority="coreos-fault-$$-a" minority="coreos-fault-$$-b"
majority_ip=10.231.7.1 minority_ip=10.231.7.2
declare -A pid=()
cleanup() {
    for name in "${!pid[@]}"; do kill -9 "${pid[$name]}" 2>/dev/null; done
    wait 2>/dev/null
    ip netns del "$majority" 2>/dev/null
    ip netns del "$minority" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
/usr/bin/python3 Tests/Interop/tools/linearizability.py --self-test || die "the checker cannot tell histories apart"

ip netns add "$majority" && ip netns add "$minority" || die "cannot create network namespaces"
ip -n "$majority" link add cfa type veth peer name cfb netns "$minority" || die "cannot create veth pair"
ip -n "$majority" addr add "$majority_ip/24" dev cfa
ip -n "$minority" addr add "$minority_ip/24" dev cfb
for ns in "$majority" "$minority"; do
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "$([ "$ns" = "$majority" ] && echo cfa || echo cfb)" up
done
in_majority() { ip netns exec "$majority" "$@"; }
for _ in $(seq 50); do in_majority ping -c1 -W1 "$minority_ip" >/dev/null 2>&1 && break; sleep 0.1; done
in_majority ping -c1 -W1 "$minority_ip" >/dev/null 2>&1 || die "the namespaces cannot reach each other"

declare -A client=([m1]="$majority_ip:24901" [m2]="$majority_ip:24903" [m3]="$minority_ip:24905")
declare -A peer=([m1]="$majority_ip:24902" [m2]="$majority_ip:24904" [m3]="$minority_ip:24906")
cluster="m1=http://${peer[m1]},m2=http://${peer[m2]},m3=http://${peer[m3]}"
start() { # NAME
    local prefix=(ip netns exec "$majority")
    [ "$1" = m3 ] && prefix=(ip netns exec "$minority")
    "${prefix[@]}" "$ours_binary" etcd --name "$1" --data-dir "$work/$1.etcd" \
        --listen-client-urls "http://${client[$1]}" --advertise-client-urls "http://${client[$1]}" \
        --listen-peer-urls "http://${peer[$1]}" --initial-advertise-peer-urls "http://${peer[$1]}" \
        --initial-cluster "$cluster" --initial-cluster-token fault-test --snapshot-count 500 >>"$work/$1.log" 2>&1 &
    pid[$1]=$!
}
ctl() { in_majority env ETCDCTL_API=3 etcdctl --command-timeout=3s "$@"; }
leader() {
    for name in m1 m2 m3; do
        if ctl --endpoints="${client[$name]}" endpoint status -w json 2>/dev/null |
            python3 -c 'import json,sys; r=json.load(sys.stdin); s=r[0]["Status"] if r else {}; sys.exit(0 if s and s.get("leader")==s["header"]["member_id"] else 1)'; then
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

in_majority /usr/bin/python3 Tests/Interop/tools/etcd-workload.py 30 "$work/history" "$work/acked" "${client[m1]}" "${client[m2]}" "${client[m3]}" &
workload=$!
sleep 5
victim=$(wait_for_leader)
log "kill -9 the leader ($victim)"
kill -9 "${pid[$victim]}"
sleep 3
start "$victim"
sleep 4
log "partition m3"
ip -n "$majority" route add blackhole "$minority_ip/32"
ip -n "$minority" route add blackhole "$majority_ip/32"
sleep 6
log "heal m3"
ip -n "$majority" route del blackhole "$minority_ip/32"
ip -n "$minority" route del blackhole "$majority_ip/32"
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
        ctl --endpoints="${client[$name]}" endpoint status -w table 2>&1 | tail -3
        echo "--- last lines of $name's log"
        tail -40 "$work/$name.log"
        failed=1
    fi
done
# A final linearizable read of every register joins the history.
in_majority /usr/bin/python3 - "$work/history" "${client[m1]}" <<'PY'
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
[ "$failed" != 0 ] && [ -n "${HOLD_ON_FAILURE:-}" ] && { echo "holding: $work"; sleep "$HOLD_ON_FAILURE"; }
exit "$failed"
