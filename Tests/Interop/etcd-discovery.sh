#!/usr/bin/env bash
# Bootstrapping `coreos etcd` clusters by discovery, both sides:
# 1. our discovery service (`coreos etcd discovery`) on a `coreos etcd` store: a token for
#    3 bootstraps 3 members; a 4th with --discovery-fallback=exit stops with "cluster is
#    full"; a 5th (default fallback) becomes a proxy that serves the cluster; sizes: even
#    warned, above 9 refused unless forced, garbage refused;
# 2. Debian's discovery.etcd.io (the public service's code) over real etcd 3.4 with v2:
#    our members bootstrap from its token the same way;
# 3. --discovery-srv: dnsmasq in a network namespace of its own serves the SRV records
#    (`ip netns exec` gives the members that namespace's resolv.conf).
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server etcd-client etcd-discovery dnsmasq-base iproute2 curl
[ "$(id -u)" = 0 ] || die "needs root for a network namespace"
ours_binary="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
work="$(mktemp -d)"
namespace="coreos-srv-$$"
failed=0
declare -A pid=()
cleanup() {
    for name in "${!pid[@]}"; do kill -9 "${pid[$name]}" 2>/dev/null; wait "${pid[$name]}" 2>/dev/null; done
    ip netns del "$namespace" 2>/dev/null
    rm -rf "/etc/netns/$namespace" "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; failed=1; }
ctl() { ETCDCTL_API=3 etcdctl --command-timeout=5s "$@"; }
wait_health() { for _ in $(seq 150); do curl -sf "http://$1/health" >/dev/null && return 0; sleep 0.1; done; return 1; }
member() { # NAME CLIENT_PORT [FLAGS...]
    local name=$1 port=$2
    shift 2
    "$ours_binary" etcd --name "$name" --data-dir "$work/$name.etcd" \
        --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
        --listen-peer-urls "http://127.0.0.1:$((port + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
        "$@" >"$work/$name.log" 2>&1 &
    pid[$name]=$!
}
started_members() { ctl --endpoints="$1" member list 2>/dev/null | grep -c ', started, '; }

# 1. Our service on our store.
"$ours_binary" etcd --name store --data-dir "$work/store.etcd" --listen-client-urls http://127.0.0.1:25040 \
    --advertise-client-urls http://127.0.0.1:25040 --listen-peer-urls http://127.0.0.1:25041 \
    --initial-advertise-peer-urls http://127.0.0.1:25041 >"$work/store.log" 2>&1 &
pid[store]=$!
"$ours_binary" etcd discovery --listen http://127.0.0.1:25045 --etcd-endpoints 127.0.0.1:25040 >"$work/service.log" 2>&1 &
pid[service]=$!
wait_health 127.0.0.1:25040 || fail "the store did not start"
wait_health 127.0.0.1:25045 || fail "the discovery service did not start"
curl -s -D "$work/even.headers" -o /dev/null 'http://127.0.0.1:25045/new?size=4'
grep -qi '^X-Discovery-Warning: size 4 is even' "$work/even.headers" || fail "an even size was not warned about"
[ "$(curl -s -o /dev/null -w '%{http_code}' 'http://127.0.0.1:25045/new?size=11')" = 400 ] || fail "size 11 was not refused"
[ "$(curl -s -o /dev/null -w '%{http_code}' 'http://127.0.0.1:25045/new?size=11&force=true')" = 200 ] || fail "size 11 with force was refused"
[ "$(curl -s -o /dev/null -w '%{http_code}' 'http://127.0.0.1:25045/new?size=abc')" = 400 ] || fail "size abc was not refused"
[ "$(curl -s -o /dev/null -w '%{http_code}' 'http://127.0.0.1:25045/../../v2/keys')" = 404 ] || fail "a path outside the registry was served"
token=$(curl -s 'http://127.0.0.1:25045/new?size=3')
case "$token" in http://127.0.0.1:25045/*) ;; *) fail "unexpected token URL: $token" ;; esac
for i in 1 2 3; do member "d$i" $((25050 + 2 * i)) --discovery "$token"; done
for _ in $(seq 100); do [ "$(started_members 127.0.0.1:25052)" = 3 ] && break; sleep 0.1; done
[ "$(started_members 127.0.0.1:25052)" = 3 ] || fail "discovery through our service did not form three members"
member d4 25060 --discovery "$token" --discovery-fallback exit
for _ in $(seq 100); do kill -0 "${pid[d4]}" 2>/dev/null || break; sleep 0.1; done
kill -0 "${pid[d4]}" 2>/dev/null && fail "the fourth member did not stop"
wait "${pid[d4]}" 2>/dev/null && fail "the fourth member exited with status 0"
unset 'pid[d4]'
grep -q "cluster is full" "$work/d4.log" || fail "the fourth member did not say the cluster is full"
member d5 25062 --discovery "$token"
wait_health 127.0.0.1:25062 || fail "the fifth member did not come up as a proxy"
grep -q "falling back to proxy" "$work/d5.log" || fail "the fifth member did not say it falls back to proxy"
ctl --endpoints=127.0.0.1:25062 put through-proxy yes >/dev/null || fail "the fallback proxy does not take writes"
[ "$(ctl --endpoints=127.0.0.1:25052 get through-proxy --print-value-only)" = yes ] || fail "the proxy's write is not in the cluster"
[ "$(started_members 127.0.0.1:25052)" = 3 ] || fail "the proxy joined the cluster"
# The registry: one entry per member, the size hidden, v2 JSON.
listing=$(curl -s "$token")
[ "$(echo "$listing" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["node"]["nodes"]))')" = 3 ] ||
    fail "the registry does not list three members: $listing"

# Member IDs as etcd derives them for a discovery cluster: the token URL is the cluster
# token (SHA-1 of the peer URL and the token URL, its first 8 bytes).
expected_ids=$(for i in 1 2 3; do
    /usr/bin/python3 -c 'import hashlib,sys; print(hashlib.sha1((sys.argv[1] + sys.argv[2]).encode()).hexdigest()[:16].lstrip("0"))' \
        "http://127.0.0.1:$((25051 + 2 * i))" "$token"
done | sort)
actual_ids=$(ctl --endpoints=127.0.0.1:25052 member list 2>/dev/null | grep ', started, ' | cut -d, -f1 | sort)
[ "$expected_ids" = "$actual_ids" ] || fail "member IDs are not etcd's for a discovery token (want $expected_ids, got $actual_ids)"

# 2. Debian's discovery.etcd.io over real etcd 3.4 (v2 on).
etcd --name reference --data-dir "$work/reference.etcd" --listen-client-urls http://127.0.0.1:25070 \
    --advertise-client-urls http://127.0.0.1:25070 --listen-peer-urls http://127.0.0.1:25071 --enable-v2 \
    >"$work/reference.log" 2>&1 &
pid[reference]=$!
wait_health 127.0.0.1:25070 || fail "etcd 3.4 did not start"
discovery.etcd.io --addr 127.0.0.1:25075 --etcd http://127.0.0.1:25070 --host http://127.0.0.1:25075 >"$work/upstream-service.log" 2>&1 &
pid[upstream]=$!
for _ in $(seq 50); do token=$(curl -sf 'http://127.0.0.1:25075/new?size=3') && break; sleep 0.1; done
for i in 1 2 3; do member "u$i" $((25080 + 2 * i)) --discovery "$token"; done
for _ in $(seq 100); do [ "$(started_members 127.0.0.1:25082)" = 3 ] && break; sleep 0.1; done
[ "$(started_members 127.0.0.1:25082)" = 3 ] || fail "discovery through discovery.etcd.io did not form three members"
for _ in $(seq 50); do ctl --endpoints=127.0.0.1:25082,127.0.0.1:25084,127.0.0.1:25086 put from-upstream-token yes >/dev/null 2>&1 && break; sleep 0.1; done
ctl --endpoints=127.0.0.1:25082,127.0.0.1:25084,127.0.0.1:25086 put from-upstream-token yes >/dev/null || fail "that cluster refuses writes"

# 3. DNS SRV records from dnsmasq, in a namespace of its own.
ip netns add "$namespace" || die "cannot create a network namespace"
ip -n "$namespace" link set lo up
mkdir -p "/etc/netns/$namespace"
echo "nameserver 127.0.0.1" >"/etc/netns/$namespace/resolv.conf"
srv_args=()
for i in 1 2 3; do
    srv_args+=("--srv-host=_etcd-server._tcp.cluster.test,s$i.cluster.test,$((25101 + 2 * i)),0,10"
        "--host-record=s$i.cluster.test,127.0.0.1")
done
ip netns exec "$namespace" dnsmasq --no-daemon --port=53 --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts \
    "${srv_args[@]}" >"$work/dnsmasq.log" 2>&1 &
pid[dnsmasq]=$!
sleep 0.5
for i in 1 2 3; do
    ip netns exec "$namespace" "$ours_binary" etcd --name "s$i" --data-dir "$work/s$i.etcd" \
        --listen-client-urls "http://127.0.0.1:$((25100 + 2 * i))" --advertise-client-urls "http://127.0.0.1:$((25100 + 2 * i))" \
        --listen-peer-urls "http://127.0.0.1:$((25101 + 2 * i))" \
        --initial-advertise-peer-urls "http://s$i.cluster.test:$((25101 + 2 * i))" \
        --discovery-srv cluster.test >"$work/s$i.log" 2>&1 &
    pid[s$i]=$!
done
in_namespace() { ip netns exec "$namespace" "$@"; }
for _ in $(seq 100); do
    [ "$(in_namespace env ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:25102 member list 2>/dev/null | grep -c ', started, ')" = 3 ] && break
    sleep 0.1
done
[ "$(in_namespace env ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:25102 member list 2>/dev/null | grep -c ', started, ')" = 3 ] ||
    fail "--discovery-srv did not form three members"

if [ "$failed" != 0 ]; then
    for f in "$work"/*.log; do echo "--- $f"; tail -6 "$f"; done
    exit 1
fi
echo "etcd discovery: our service, discovery.etcd.io over etcd 3.4 and DNS SRV each bootstrapped three members; full and fallback handled"
