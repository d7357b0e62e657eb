#!/usr/bin/env bash
# The store's performance goals, measured: real etcd 3.4 (Debian) and `coreos etcd`
# (release build) on this machine, one after the other, with the same load generator
# (`coreos etcd benchmark`), for a 1-member and a 3-member cluster on loopback:
#   put    64 clients / 8 connections, 8-byte keys, 256-byte values (requests/s)
#   put    1 client (p50 latency)
#   range  linearizable, 64 clients / 8 connections (requests/s)
#   RSS    of the first member, empty and after KEYS keys of 256 bytes
#   ready  time from start to the first healthy /health (a linearizable read), holding KEYS keys
# Usage: contrib/bench/etcd-vs-coreos.sh [TOTAL] [KEYS]; prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server etcd-client curl
total="${1:-20000}"
keys="${2:-100000}"
build_release >/dev/null
coreos="$(pwd)/$(release_binary)"
work="$(mktemp -d)"
pids=()
stop_all() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

start_cluster() { # SERVER(etcd|coreos) SIZE
    local cluster="" index
    for index in $(seq "$2"); do cluster+="${cluster:+,}b$index=http://127.0.0.1:$((25600 + 2 * index))"; done
    for index in $(seq "$2"); do start_member "$1" "$index" "$cluster"; done
    endpoints=$(for index in $(seq "$2"); do printf '127.0.0.1:%d,' $((25599 + 2 * index)); done)
    endpoints=${endpoints%,}
    wait_ready "127.0.0.1:25601" >/dev/null
}
start_member() { # SERVER INDEX CLUSTER
    local command=(etcd)
    [ "$1" = coreos ] && command=("$coreos" etcd)
    "${command[@]}" --name "b$2" --data-dir "$work/$1-b$2.etcd" \
        --listen-client-urls "http://127.0.0.1:$((25599 + 2 * $2))" --advertise-client-urls "http://127.0.0.1:$((25599 + 2 * $2))" \
        --listen-peer-urls "http://127.0.0.1:$((25600 + 2 * $2))" --initial-advertise-peer-urls "http://127.0.0.1:$((25600 + 2 * $2))" \
        --initial-cluster "$3" --initial-cluster-token bench >>"$work/$1-b$2.log" 2>&1 &
    pids+=($!)
    [ "$2" = 1 ] && first_pid=$!
    return 0
}
wait_ready() { # ENDPOINT; prints seconds waited
    local started now
    started=$(date +%s.%N)
    # /health answers once a linearizable read succeeds; curl fails at once while nothing
    # listens (etcdctl would wait out its dial timeout and blur the measure).
    for _ in $(seq 3000); do
        if curl -sf --max-time 1 "http://$1/health" >/dev/null 2>&1; then
            now=$(date +%s.%N)
            python3 -c "print('%.2f' % ($now - $started))"
            return
        fi
        sleep 0.02
    done
    echo "never"
}
bench() { # FIELD ARGS...
    local field=$1
    shift
    "$coreos" etcd benchmark "$@" --endpoints="$endpoints" --json |
        python3 -c "import json, sys; print('%.${precision:-0}f' % json.load(sys.stdin)['$field'])"
}
rss_mib() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$first_pid/status"; }

declare -A result
for size in 1 3; do
    for server in etcd coreos; do
        rm -rf "$work"/*.etcd
        start_cluster "$server" "$size"
        sleep 1
        result[$server,$size,rss_empty]=$(rss_mib)
        result[$server,$size,put64]=$(bench requests_per_second put --clients 64 --conns 8 --total "$total" --key-size 8 --val-size 256)
        result[$server,$size,put1]=$(precision=3 bench p50_ms put --clients 1 --conns 1 --total 2000 --key-size 8 --val-size 256)
        result[$server,$size,range64]=$(bench requests_per_second range benchkey --clients 64 --conns 8 --total "$total" --consistency l)
        if [ "$size" = 1 ]; then
            "$coreos" etcd benchmark put --endpoints="$endpoints" --clients 64 --conns 8 --total "$keys" \
                --key-size 16 --val-size 256 --sequential-keys --key-space-size "$keys" --json >/dev/null
            sleep 2
            result[$server,$size,rss_keys]=$(rss_mib)
            kill "$first_pid"
            wait "$first_pid" 2>/dev/null || true
            start_member "$server" 1 "b1=http://127.0.0.1:25602"
            result[$server,$size,ready]=$(wait_ready 127.0.0.1:25601)
        fi
        stop_all
    done
done

row() { # LABEL KEY UNIT
    local etcd=${result[etcd,$2]:-} ours=${result[coreos,$2]:-}
    local ratio
    ratio=$(python3 -c "e, o = '$etcd', '$ours'
try: print('%.2f' % (float(o) / float(e)))
except Exception: print('-')")
    printf '| %s | %s | %s | %s |\n' "$1" "$etcd $3" "$ours $3" "$ratio"
}
echo "| measure | etcd 3.4.23 | coreos etcd | coreos / etcd |"
echo "|---|---|---|---|"
for size in 1 3; do
    row "put, 64 clients / 8 conns, $size member(s)" "$size,put64" "req/s"
    row "put, 1 client, p50, $size member(s)" "$size,put1" "ms"
    row "linearizable range, 64 clients / 8 conns, $size member(s)" "$size,range64" "req/s"
    row "RSS of a fresh member, $size member(s)" "$size,rss_empty" "MiB"
done
row "RSS after $keys keys of 256 bytes, 1 member" "1,rss_keys" "MiB"
row "ready after restart with $keys keys, 1 member" "1,ready" "s"
