# A real etcd 3.4 member and a `coreos etcd` member side by side, each alone in its own
# data directory, for tests that compare the two servers. The caller has sourced
# contrib/lib/common.sh. Sets `work` (removed on exit), `ours_binary`, and `pids`.
# Usage: start_server_pair REFERENCE_CLIENT_PORT OUR_CLIENT_PORT [FLAG...] (flags for both;
# peer ports are the client ports + 1). Returns once both answer /health.
# shellcheck shell=bash

ours_binary="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
work="$(mktemp -d)"
pids=()
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done; rm -rf "$work"' EXIT

start_server_pair() {
    local reference_port=$1 our_port=$2
    shift 2
    etcd --data-dir "$work/reference.etcd" --listen-client-urls "http://127.0.0.1:$reference_port" \
        --advertise-client-urls "http://127.0.0.1:$reference_port" --listen-peer-urls "http://127.0.0.1:$((reference_port + 1))" \
        "$@" >"$work/reference.log" 2>&1 &
    pids+=($!)
    "$ours_binary" etcd --data-dir "$work/ours.etcd" --listen-client-urls "http://127.0.0.1:$our_port" \
        --advertise-client-urls "http://127.0.0.1:$our_port" --listen-peer-urls "http://127.0.0.1:$((our_port + 1))" \
        "$@" >"$work/ours.log" 2>&1 &
    ours_pid=$!
    pids+=($ours_pid)
    local port
    for port in "$reference_port" "$our_port"; do
        for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
    done
}
