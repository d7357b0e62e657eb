#!/usr/bin/env bash
# Regenerates contrib/link-order/coreos.order: the functions a `coreos etcd` member runs
# to start, then those it adds while it serves a small mixed workload.
#
# Why: the release linker (lld) places these functions first and together in .text. A
# member then maps about a tenth of the executable's code instead of scattered pages
# all over it (the kernel maps 64 KiB around every page fault in a file mapping), which
# is most of a fresh member's RSS. A stale list costs nothing but RSS: lld skips names
# that no longer exist, and new functions are placed after the listed ones.
#
# Needs valgrind (callgrind) and a release build; takes about two minutes. After a new
# list, the next release build relinks (build_release names the list by its content).
# Usage: contrib/link-order/generate.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages valgrind curl systemd-journal-remote

build_release >/dev/null
binary=$(release_binary)
work=$(mktemp -d)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# callgrind cannot read the release binary's DWARF; the symbol table is all it needs.
objcopy --strip-debug "$binary" "$work/coreos"
nm --defined-only "$work/coreos" | awk '$2 ~ /^[tTwW]$/ { print $3 }' | sort -u >"$work/defined"
client=127.0.0.1:23979

# profile NAME WORKLOAD: runs a member under callgrind, then WORKLOAD (a shell function)
# against it through the uninstrumented binary; writes the functions the member ran,
# each once, kept only when the symbol table defines them (callgrind also lists
# shared-library functions and marks recursion "'N").
profile() {
    rm -rf "$work/member.etcd"
    valgrind --tool=callgrind --demangle=no --dump-instr=no --callgrind-out-file="$work/$1.callgrind" \
        "$work/coreos" etcd --data-dir "$work/member.etcd" \
        --listen-client-urls "http://$client" --advertise-client-urls "http://$client" \
        --listen-peer-urls http://127.0.0.1:23980 --initial-advertise-peer-urls http://127.0.0.1:23980 \
        --initial-cluster default=http://127.0.0.1:23980 >"$work/member.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 300); do
        curl -fs -m 1 "http://$client/health" >/dev/null 2>&1 && break
        sleep 0.2
    done
    curl -fs "http://$client/health" >/dev/null || die "member under callgrind never became healthy: $(tail -5 "$work/member.log")"
    "$2"
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=""
    sed -nE "s/^c?fn=\([0-9]+\) (.*)$/\1/p" "$work/$1.callgrind" | sed -E "s/'[0-9]+$//" |
        awk '!seen[$0]++' | grep -xFf "$work/defined" >"$work/$1.functions"
}

# What a member serves most: puts, reads, txns, watches, leases, the HTTP endpoints.
etcdctl() { "$binary" etcdctl --endpoints="$client" "$@"; }
nothing() { :; }
workload() {
    "$binary" etcd benchmark put --endpoints="$client" --clients 8 --conns 2 --total 400 --key-size 8 --val-size 256 >/dev/null
    "$binary" etcd benchmark range benchkey --endpoints="$client" --clients 8 --conns 2 --total 400 --consistency l >/dev/null
    "$binary" etcd benchmark range benchkey --endpoints="$client" --clients 8 --conns 2 --total 400 --consistency s >/dev/null
    etcdctl put a 1 >/dev/null
    etcdctl get a --prefix >/dev/null
    etcdctl txn <<<'value("a") = "1"

put a 2

' >/dev/null
    local lease watcher
    lease=$(etcdctl lease grant 60 | awk '{print $2}')
    etcdctl put leased x --lease="$lease" >/dev/null
    etcdctl lease keep-alive --once "$lease" >/dev/null
    "$binary" etcdctl --endpoints="$client" watch a --rev=1 >/dev/null &
    watcher=$!
    sleep 2
    etcdctl put a 3 >/dev/null
    sleep 1
    kill "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
    etcdctl lease revoke "$lease" >/dev/null
    etcdctl endpoint status >/dev/null
    etcdctl compaction 2 >/dev/null
    curl -fs "http://$client/metrics" >/dev/null
    curl -fs "http://$client/version" >/dev/null
}

# profile_command NAME ARGS...: a short-lived applet run under callgrind.
profile_command() {
    local name=$1
    shift
    valgrind --tool=callgrind --demangle=no --dump-instr=no --callgrind-out-file="$work/$name.callgrind" \
        "$work/coreos" "$@" >/dev/null 2>&1 || true
    sed -nE "s/^c?fn=\([0-9]+\) (.*)$/\1/p" "$work/$name.callgrind" | sed -E "s/'[0-9]+$//" |
        awk '!seen[$0]++' | grep -xFf "$work/defined" >"$work/$name.functions"
}

# What a member runs to start first, so that a fresh member's pages are few and
# together; then what serving adds; then what `coreos journal` runs (short-lived, so
# its page faults are most of its time), on journal files made for the purpose.
profile start nothing
profile serve workload
mkdir -p "$work/journal"
python3 Tests/Interop/tools/journal-export.py 2000 |
    /lib/systemd/systemd-journal-remote --split-mode=none --output="$work/journal/remote.journal" - 2>/dev/null
profile_command journal-short journal -D "$work/journal" --no-pager -u unit7 -n 100
profile_command journal-json journal -D "$work/journal" --no-pager -o json -n 200
cat "$work"/{start,serve,journal-short,journal-json}.functions | awk '!seen[$0]++' >contrib/link-order/coreos.order
log "$(wc -l <contrib/link-order/coreos.order) functions in contrib/link-order/coreos.order"
