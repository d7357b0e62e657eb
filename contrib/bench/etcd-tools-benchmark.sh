#!/usr/bin/env bash
# etcd's own load generator (`tools/benchmark` of etcd v3.4.23, built as `etcd-benchmark`
# in ../shared/originals/) against a fresh one-member etcd 3.4 (Debian) and a fresh
# one-member `coreos etcd` (release build), in one run, rounds interleaved so that both
# see the same machine. Workloads (8-byte keys, 256-byte values):
#   put 64/8     64 clients over 8 connections (requests/s)
#   put 8/1      8 clients over 1 connection (requests/s)
#   put 1/1      one client (p50 and p99 latency)
#   range l 64/8 linearizable ranges of one key, 64 clients / 8 connections (requests/s)
#   range s 64/8 serializable ranges (requests/s)
# Usage: contrib/bench/etcd-tools-benchmark.sh [ROUNDS] [TOTAL]; prints a Markdown table
# of medians and the ratio coreos/etcd (for latencies below 1 is better).
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server etcd-client bc
rounds="${1:-3}"
total="${2:-20000}"
originals="$(pwd)/../shared/originals/originals-bin.tar.xz"
[ -f "$originals" ] || die "no $originals: etcd's benchmark tool comes from shared/originals"
build_release >/dev/null
coreos="$(pwd)/$(release_binary)"
work="$(mktemp -d)"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
tar -xJf "$originals" -C "$work" ./etcd-benchmark
bench="$work/etcd-benchmark"

start() { # SERVER: a fresh member on 127.0.0.1:25701
    local command=(etcd)
    [ "$1" = coreos ] && command=("$coreos" etcd)
    rm -rf "$work/member.etcd"
    "${command[@]}" --name bench --data-dir "$work/member.etcd" --listen-client-urls http://127.0.0.1:25701 \
        --advertise-client-urls http://127.0.0.1:25701 --listen-peer-urls http://127.0.0.1:25702 \
        --initial-advertise-peer-urls http://127.0.0.1:25702 --initial-cluster bench=http://127.0.0.1:25702 \
        >"$work/$1.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        ETCDCTL_API=3 etcdctl --endpoints 127.0.0.1:25701 endpoint health >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "$1 did not start: $(tail -3 "$work/$1.log")"
}
stop() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=""; }

# run NAME ARGS...: one etcd-benchmark run; appends "requests/s p50-ms p99-ms" to $work/NAME.
run() {
    local name="$1"
    shift
    "$bench" --precise --endpoints 127.0.0.1:25701 "$@" >"$work/out" 2>&1 || { cat "$work/out"; die "etcd-benchmark $* failed"; }
    awk '/Requests\/sec:/ { rps = $2 } /50% in/ { p50 = $3 * 1000 } /99% in/ { p99 = $3 * 1000 }
         END { printf "%s %s %s\n", rps, p50, p99 }' "$work/out" >>"$work/$name"
}

workloads() { # SERVER
    run "$1-put-64" --clients 64 --conns 8 put --total "$total" --key-size 8 --val-size 256 --key-space-size 100000
    run "$1-put-8" --clients 8 --conns 1 put --total "$total" --key-size 8 --val-size 256 --key-space-size 100000
    run "$1-put-1" --clients 1 --conns 1 put --total $((total / 4)) --key-size 8 --val-size 256 --key-space-size 100000
    ETCDCTL_API=3 etcdctl --endpoints 127.0.0.1:25701 put foo "$(head -c 256 /dev/zero | tr '\0' v)" >/dev/null
    run "$1-range-l" --clients 64 --conns 8 range foo --total "$total" --consistency l
    run "$1-range-s" --clients 64 --conns 8 range foo --total "$total" --consistency s
}

for round in $(seq "$rounds"); do
    for server in etcd coreos; do
        log "round $round/$rounds: $server"
        start "$server"
        workloads "$server"
        stop
    done
done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
column() { awk -v c="$2" '{ print $c }' "$work/$1" | median; }
row() { # LABEL FILE COLUMN UNIT FORMAT
    local ours theirs
    theirs=$(column "etcd-$2" "$3")
    ours=$(column "coreos-$2" "$3")
    printf "| %s | $5 %s | $5 %s | %.2f× |\n" "$1" "$theirs" "$4" "$ours" "$4" "$(echo "$ours / $theirs" | bc -l)"
}
echo
echo "etcd tools/benchmark v3.4.23, $rounds rounds, medians ($total requests a run; 8-byte keys, 256-byte values)"
echo
echo "| workload | etcd 3.4.23 | coreos etcd | coreos / etcd |"
echo "|---|---|---|---|"
row "put, 64 clients / 8 conns" put-64 1 "req/s" %.0f
row "put, 8 clients / 1 conn" put-8 1 "req/s" %.0f
row "put, 1 client, p50" put-1 2 ms %.3f
row "put, 1 client, p99" put-1 3 ms %.3f
row "put, 1 client" put-1 1 "req/s" %.0f
row "range linearizable, 64 / 8" range-l 1 "req/s" %.0f
row "range serializable, 64 / 8" range-s 1 "req/s" %.0f
