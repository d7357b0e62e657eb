#!/usr/bin/env bash
# `coreos etcd benchmark put` against h2load (nghttp2-client) on the same fresh etcd 3.4
# member, side by side: 1, 16 and 64 clients over 1, 2 and 8 connections, REPS interleaved
# repetitions each. h2load posts one pre-encoded gRPC Put (8-byte key, 256-byte value) and
# is the fastest generator known on this machine; the ratio ours/h2load says whether our
# client is the bottleneck. Usage: contrib/bench/etcd-put-vs-h2load.sh [REPS] [TOTAL]
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server nghttp2-client
reps="${1:-3}"
total="${2:-20000}"
build_release >/dev/null
coreos="$(pwd)/$(release_binary)"
work="$(mktemp -d)"
etcd_pid=""
cleanup() {
    [ -n "$etcd_pid" ] && kill "$etcd_pid" 2>/dev/null && wait "$etcd_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
port=25479
etcd --name bench --data-dir "$work/bench.etcd" \
    --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$((port + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-cluster "bench=http://127.0.0.1:$((port + 1))" >"$work/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 100); do
    "$coreos" etcdctl --endpoints=127.0.0.1:$port endpoint health >/dev/null 2>&1 && break
    sleep 0.1
done

# A gRPC message: flag byte, 4-byte big-endian length, then PutRequest{key=1, value=2}.
python3 - "$work/put.bin" <<'PY'
import struct, sys
key, value = b"benchkey", b"v" * 256
message = b"\x0a" + bytes([len(key)]) + key + b"\x12" + bytes([0x80, 0x02]) + value
open(sys.argv[1], "wb").write(b"\x00" + struct.pack(">I", len(message)) + message)
PY

h2load_rate() { # clients connections
    local streams=$(($1 / $2))
    h2load -n "$total" -c "$2" -m "$streams" -d "$work/put.bin" \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        "http://127.0.0.1:$port/etcdserverpb.KV/Put" 2>/dev/null |
        awk '/^finished in/ { gsub(",", "", $4); print $4 }'
}
ours_rate() { # clients connections
    "$coreos" etcd benchmark put --endpoints=127.0.0.1:$port --clients "$1" --conns "$2" --total "$total" \
        --key-size 8 --val-size 256 --json |
        python3 -c 'import json, sys; print("%.0f" % json.load(sys.stdin)["requests_per_second"])'
}
median() { tr ' ' '\n' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

printf '%-16s %-28s %-28s %s\n' "clients/conns" "h2load req/s (median; all)" "coreos req/s (median; all)" "ratio"
for shape in "1 1" "16 2" "64 8"; do
    set -- $shape
    h2=()
    ours=()
    for _ in $(seq "$reps"); do
        h2+=("$(h2load_rate "$1" "$2")")
        ours+=("$(ours_rate "$1" "$2")")
    done
    h2_median=$(echo "${h2[*]}" | median)
    ours_median=$(echo "${ours[*]}" | median)
    ratio=$(python3 -c "print('%.2f' % ($ours_median / $h2_median))")
    printf '%-16s %-28s %-28s %s\n' "$1/$2" "$h2_median; ${h2[*]}" "$ours_median; ${ours[*]}" "$ratio"
done
