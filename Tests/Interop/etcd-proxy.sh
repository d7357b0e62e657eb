#!/usr/bin/env bash
# The worker-node proxy (`coreos etcd --proxy on|readonly`) in front of a three-member
# `coreos etcd` cluster: python3-etcd3's calls (Tests/Interop/tools/etcd3-client-calls.py)
# through the proxy must print what they print against a real etcd 3.4 member; identical
# watches are coalesced into one on the cluster; watches and writes go on when the member
# the proxy uses is killed; a read-only proxy serves reads and refuses writes (gRPC and
# v2 HTTP); the proxy picks up a member added later from the member list.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server etcd-client python3-etcd3 curl
ours_binary="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
work="$(mktemp -d)"
failed=0
declare -A pid=()
cleanup() {
    for name in "${!pid[@]}"; do kill -9 "${pid[$name]}" 2>/dev/null; wait "${pid[$name]}" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; failed=1; }
ctl() { ETCDCTL_API=3 etcdctl --command-timeout=5s "$@"; }
base=25010
cluster="p0=http://127.0.0.1:$((base + 1)),p1=http://127.0.0.1:$((base + 3)),p2=http://127.0.0.1:$((base + 5))"
for i in 0 1 2; do
    "$ours_binary" etcd --name "p$i" --data-dir "$work/p$i.etcd" \
        --listen-client-urls "http://127.0.0.1:$((base + 2 * i))" --advertise-client-urls "http://127.0.0.1:$((base + 2 * i))" \
        --listen-peer-urls "http://127.0.0.1:$((base + 2 * i + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((base + 2 * i + 1))" \
        --initial-cluster "$cluster" >"$work/p$i.log" 2>&1 &
    pid[p$i]=$!
done
proxy=127.0.0.1:25020 readonly=127.0.0.1:25022 reference=25030
# Started with the members: the proxy waits for them.
"$ours_binary" etcd --proxy on --listen-client-urls "http://$proxy" --initial-cluster "$cluster" \
    --proxy-refresh-interval 1000 >"$work/proxy.log" 2>&1 &
pid[proxy]=$!
"$ours_binary" etcd --proxy readonly --listen-client-urls "http://$readonly" --initial-cluster "$cluster" >"$work/readonly.log" 2>&1 &
pid[readonly]=$!
etcd --data-dir "$work/reference.etcd" --listen-client-urls "http://127.0.0.1:$reference" \
    --advertise-client-urls "http://127.0.0.1:$reference" --listen-peer-urls "http://127.0.0.1:$((reference + 1))" \
    >"$work/reference.log" 2>&1 &
pid[reference]=$!
for endpoint in "$proxy" "$readonly" "127.0.0.1:$reference"; do
    for _ in $(seq 150); do curl -sf "http://$endpoint/health" >/dev/null && break; sleep 0.1; done
    curl -sf "http://$endpoint/health" >/dev/null || fail "$endpoint is not healthy"
done

# python3-etcd3 through the proxy answers as a real member does.
/usr/bin/python3 Tests/Interop/tools/etcd3-client-calls.py "$reference" >"$work/reference.out" 2>&1 || { cat "$work/reference.out"; fail "reference run failed"; }
/usr/bin/python3 Tests/Interop/tools/etcd3-client-calls.py "${proxy#*:}" >"$work/proxy.out" 2>&1 || fail "the run through the proxy failed"
grep -v "^members:\|^status:" "$work/reference.out" >"$work/reference.cmp"
grep -v "^members:\|^status:" "$work/proxy.out" >"$work/proxy.cmp"
grep -q "^members: .*p0.*p1\|^members: .*p1.*p0" "$work/proxy.out" || fail "members through the proxy: $(grep ^members: "$work/proxy.out")"
diff "$work/reference.cmp" "$work/proxy.cmp" || fail "python3-etcd3 through the proxy differs from etcd 3.4"

# Four identical watchers share one watch on the cluster.
for i in 1 2 3 4; do
    # etcdctl itself in the background (not the `ctl` function), so $! is its PID.
    ETCDCTL_API=3 etcdctl --endpoints="$proxy" watch shared/ --prefix >"$work/watch$i.out" 2>&1 &
    pid[watch$i]=$!
done
sleep 1
metrics=$(curl -s "http://$proxy/metrics" | grep -v "^#")
echo "$metrics" | grep -q '^coreos_etcd_proxy_watchers 4$' || fail "the proxy does not count four watchers: $metrics"
echo "$metrics" | grep -q '^coreos_etcd_proxy_upstream_watches 1$' || fail "identical watches were not coalesced: $metrics"
ctl --endpoints="$proxy" put shared/a 1 >/dev/null || fail "put through the proxy failed"

# Kill the member the proxy talks to (the one answering its status): watches and writes go on.
used=$(ctl --endpoints="$proxy" endpoint status -w json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["member_id"])')
for i in 0 1 2; do
    id=$(ctl --endpoints="127.0.0.1:$((base + 2 * i))" endpoint status -w json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["member_id"])')
    [ "$id" = "$used" ] && victim=p$i
done
log "killing $victim, the member the proxy uses"
kill -9 "${pid[$victim]}"
unset "pid[$victim]"
for _ in $(seq 50); do ctl --endpoints="$proxy" put shared/b 2 >/dev/null 2>&1 && break; sleep 0.2; done
ctl --endpoints="$proxy" put shared/c 3 >/dev/null || fail "writes through the proxy stopped after a member was lost"
sleep 1
for i in 1 2 3 4; do
    [ "$(grep -c '^shared/' "$work/watch$i.out")" = 3 ] || { fail "watcher $i did not see all three writes"; cat "$work/watch$i.out"; }
done

# The read-only proxy serves reads and refuses writes.
[ "$(ctl --endpoints="$readonly" get shared/a --print-value-only)" = 1 ] || fail "the read-only proxy does not serve reads"
output=$(ctl --endpoints="$readonly" put shared/x 1 2>&1) && fail "the read-only proxy accepted a put"
echo "$output" | grep -q "read-only" || fail "read-only put: unexpected answer: $output"
output=$(ctl --endpoints="$readonly" txn <<<$'\nput shared/x 1\n\n' 2>&1) && echo "$output" | grep -q OK && fail "the read-only proxy accepted a writing txn"
status=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "http://$readonly/v2/keys/x" -d value=1)
[ "$status" = 501 ] || fail "the read-only proxy answered $status to a v2 PUT"
[ "$(curl -s "http://$readonly/version")" != "" ] || fail "the read-only proxy does not pass GET /version"

# A member added later (replacing the killed one) is picked up from the member list.
ctl --endpoints="127.0.0.1:$base,127.0.0.1:$((base + 2)),127.0.0.1:$((base + 4))" member remove \
    "$(ctl --endpoints="$proxy" member list | awk -F', ' -v n="$victim" '$3 == n { print $1 }')" >/dev/null || fail "removing $victim failed"
output=$(ctl --endpoints="$proxy" member add p3 --peer-urls="http://127.0.0.1:$((base + 7))") || fail "member add through the proxy failed: $output"
"$ours_binary" etcd --name p3 --data-dir "$work/p3.etcd" \
    --listen-client-urls "http://127.0.0.1:$((base + 6))" --advertise-client-urls "http://127.0.0.1:$((base + 6))" \
    --listen-peer-urls "http://127.0.0.1:$((base + 7))" --initial-advertise-peer-urls "http://127.0.0.1:$((base + 7))" \
    --initial-cluster "$(echo "$output" | sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p')" --initial-cluster-state existing \
    >"$work/p3.log" 2>&1 &
pid[p3]=$!
for _ in $(seq 100); do grep -q "127.0.0.1:$((base + 6))" "$work/proxy.log" && break; sleep 0.1; done
grep -q "127.0.0.1:$((base + 6))" "$work/proxy.log" || fail "the proxy did not pick up the new member"

if [ "$failed" != 0 ]; then
    for f in "$work"/*.log; do echo "--- $f"; tail -8 "$f"; done
    exit 1
fi
echo "etcd proxy: python3-etcd3 answers as etcd 3.4, watches coalesced and kept across a member loss, read-only enforced"
