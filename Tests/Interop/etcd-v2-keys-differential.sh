#!/usr/bin/env bash
# The v2 keys API of `coreos etcd` beside real etcd 3.4 (v2 switched on): the same
# requests (Tests/Interop/tools/v2-keys-calls.py: set, create, update, compare-and-swap
# and -delete with their failures, directories, in-order keys, hidden names, recursive
# and sorted listings, TTLs, refresh, expiry, bad parameters, waits from the history and
# for the next change) must give the same status, headers and JSON, with store indexes
# compared relative to each server's starting index.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server curl
. Tests/Interop/lib/server-pair.sh
start_server_pair 25310 25312 --enable-v2=true
/usr/bin/python3 Tests/Interop/tools/v2-keys-calls.py 25310 >"$work/reference.out" 2>&1 || { cat "$work/reference.out"; exit 1; }
/usr/bin/python3 Tests/Interop/tools/v2-keys-calls.py 25312 >"$work/ours.out" 2>&1 || { cat "$work/ours.out"; exit 1; }
if ! diff "$work/reference.out" "$work/ours.out"; then
    echo "v2 keys: coreos etcd answers differ from etcd 3.4"
    exit 1
fi
echo "v2 keys: $(grep -c . "$work/ours.out") requests answered as etcd 3.4 answers them"
