#!/usr/bin/env bash
# `--v2-shared-keyspace`: v2 writes show in the v3 keyspace. A v2 set is a v3 key with the
# same value; a v2 TTL is a lease of the key's own, and the key goes when it expires; a
# recursive v2 delete deletes the v3 keys below; a v3 watch sees v2 writes; the mirror
# survives a restart (it is replayed from the log). Without the flag the keyspaces stay apart.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-client curl
ours_binary="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
work="$(mktemp -d)"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
port=25710
start() { # extra flags
    "$ours_binary" etcd --data-dir "$work/data" --listen-client-urls "http://127.0.0.1:$port" \
        --advertise-client-urls "http://127.0.0.1:$port" --listen-peer-urls "http://127.0.0.1:$((port + 1))" "$@" >>"$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && return; sleep 0.1; done
    cat "$work/log"
    die "the server did not start"
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null; pid=""; }
v2() { curl -sf "$@" >/dev/null || die "v2 call failed: $*"; }
get3() { ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$port" get "$@" --print-value-only; }
failed=0
expect() { # description expected actual
    [ "$2" = "$3" ] || { echo "FAILED: $1: wanted '$2', got '$3'"; failed=1; }
}

start --v2-shared-keyspace
ETCDCTL_API=3 timeout 5 etcdctl --endpoints="127.0.0.1:$port" watch /app/ --prefix >"$work/watch.out" 2>&1 &
watcher=$!
sleep 0.5
v2 -XPUT "http://127.0.0.1:$port/v2/keys/app/config" -d value=one
v2 -XPUT "http://127.0.0.1:$port/v2/keys/app/dir/x" -d value=deep
v2 -XPUT "http://127.0.0.1:$port/v2/keys/app/session?ttl=2" -d value=alive
expect "a v2 set is a v3 key" "one" "$(get3 /app/config)"
expect "a key in a v2 directory" "deep" "$(get3 /app/dir/x)"
lease=$(ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$port" get /app/session -w fields | sed -n 's/^"Lease" : //p')
expect "a v2 TTL is a lease" "yes" "$([ "${lease:-0}" != 0 ] && echo yes || echo no)"
expect "the lease has the TTL" "yes" "$(ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$port" lease timetolive "$(printf %x "$lease")" | grep -qE 'remaining\(([12])s\)' && echo yes || echo no)"
v2 -XPUT "http://127.0.0.1:$port/v2/keys/app/config?prevValue=one" -d value=two
expect "a compare-and-swap updates the v3 key" "two" "$(get3 /app/config)"
sleep 3.5
expect "the v3 key goes when the v2 TTL runs out" "" "$(get3 /app/session)"
v2 -XDELETE "http://127.0.0.1:$port/v2/keys/app/dir?recursive=true"
expect "a recursive v2 delete deletes the v3 keys below" "" "$(get3 /app/dir/x)"
wait "$watcher"
expect "a v3 watch saw the v2 writes" "yes" "$(grep -q '^two$' "$work/watch.out" && grep -q '^deep$' "$work/watch.out" && echo yes || echo no)"
stop
start --v2-shared-keyspace
expect "the mirror is replayed after a restart" "two" "$(get3 /app/config)"
stop
rm -rf "$work/data"
start
v2 -XPUT "http://127.0.0.1:$port/v2/keys/apart" -d value=v2only
expect "without the flag the keyspaces stay apart" "" "$(get3 /apart)"
[ "$failed" = 0 ] || exit 1
echo "v2 shared keyspace: sets, TTL leases, expiry, deletes, watches and restarts mirrored in v3"
