#!/usr/bin/env bash
# The HTTP API surface of `coreos etcd` (release build) beside etcd 3.4, one fresh member
# each, REPS interleaved repetitions, median printed:
#   - v3 JSON gateway range over HTTP/1.1 (h2load --h1, 10 connections);
#   - v3 JSON gateway range over TLS with HTTP/2 (h2load, 10 connections);
#   - v2 GET /v2/keys/k over HTTP/1.1 (h2load --h1, 10 connections);
#   - Authenticate (bcrypt cost 10): 20 sequential calls through the gateway.
# Usage: contrib/bench/etcd-api-surface.sh [REPS] [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server etcd-client nghttp2-client openssl curl
reps="${1:-3}"
requests="${2:-20000}"
build_release >/dev/null
coreos="$(pwd)/$(release_binary)"
work="$(mktemp -d)"
pids=()
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; done; rm -rf "$work"' EXIT
cd "$work"
repo="$OLDPWD"
. "$repo/Tests/Interop/lib/test-ca.sh"

start() { # NAME PORT COMMAND...
    local name=$1 port=$2
    shift 2
    "$@" --name "$name" --data-dir "$work/$name.etcd" --enable-v2=true \
        --listen-client-urls "http://127.0.0.1:$port,https://127.0.0.1:$((port + 2))" \
        --advertise-client-urls "http://127.0.0.1:$port" --listen-peer-urls "http://127.0.0.1:$((port + 1))" \
        --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" --initial-cluster "$name=http://127.0.0.1:$((port + 1))" \
        --cert-file server.crt --key-file server.key >"$work/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && return; sleep 0.1; done
    cat "$work/$name.log"
    die "$name did not start"
}
start etcd 25810 etcd
start coreos 25820 "$coreos" etcd
for port in 25810 25820; do
    for _ in $(seq 50); do
        curl -sf -XPOST "http://127.0.0.1:$port/v3/kv/put" -d '{"key":"YmVuY2g=","value":"dg=="}' >/dev/null && break
        sleep 0.1
    done
    curl -sf -XPUT "http://127.0.0.1:$port/v2/keys/k" -d value=v >/dev/null
done
echo '{"key":"YmVuY2g="}' >range.json

rate() { # h2load arguments: requests per second, or 0 when requests failed
    h2load "$@" 2>&1 | awk '/^finished in/ { rate = $4 } /^status codes:/ { ok = ($5 == 0 && $7 == 0 && $9 == 0) } END { print (ok ? rate : 0) }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
measure() { # LABEL PORT-ETCD PORT-COREOS SCHEME PATH [h2load options]
    local label=$1 etcd_port=$2 coreos_port=$3 scheme=$4 path=$5
    shift 5
    local etcd_rates=() coreos_rates=()
    for _ in $(seq "$reps"); do
        etcd_rates+=("$(rate -n "$requests" -c 10 "$@" "$scheme://127.0.0.1:$etcd_port$path")")
        coreos_rates+=("$(rate -n "$requests" -c 10 "$@" "$scheme://127.0.0.1:$coreos_port$path")")
    done
    printf '%-38s etcd %10.0f req/s   coreos %10.0f req/s\n' "$label" \
        "$(printf '%s\n' "${etcd_rates[@]}" | median)" "$(printf '%s\n' "${coreos_rates[@]}" | median)"
}
measure "gateway range, HTTP/1.1" 25810 25820 http /v3/kv/range --h1 -d range.json
measure "gateway range, TLS + HTTP/2" 25812 25822 https /v3/kv/range -d range.json
measure "v2 GET /v2/keys/k, HTTP/1.1" 25810 25820 http /v2/keys/k --h1

# Authenticate: bcrypt (cost 10) dominates; 20 calls one after another.
for port in 25810 25820; do
    E="etcdctl --endpoints=127.0.0.1:$port"
    $E user add root:rootpw >/dev/null && $E user grant-role root root >/dev/null && $E auth enable >/dev/null
done
authenticate() { # PORT: milliseconds for 20 calls
    local start end
    start=$(date +%s%N)
    for _ in $(seq 20); do
        curl -sf -XPOST "http://127.0.0.1:$1/v3/auth/authenticate" -d '{"name":"root","password":"rootpw"}' >/dev/null
    done
    end=$(date +%s%N)
    echo $(((end - start) / 20000000))
}
printf '%-38s etcd %10s ms/call   coreos %10s ms/call\n' "Authenticate (bcrypt cost 10)" "$(authenticate 25810)" "$(authenticate 25820)"
