#!/usr/bin/env bash
# python3-etcd3 against real etcd 3.4 and against `coreos etcd`: the same API calls
# (Tests/Interop/tools/etcd3-client-calls.py: KV, prefixes and ranges, put_if_not_exists,
# replace, transactions, deletes, leases with keys, locks, watch_once, compaction,
# members, status, alarms, defragment) must print the same lines on both.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server python3-etcd3 curl
. Tests/Interop/lib/server-pair.sh
start_server_pair 24870 24872
/usr/bin/python3 Tests/Interop/tools/etcd3-client-calls.py 24870 >"$work/reference.out" 2>&1 || { cat "$work/reference.out"; exit 1; }
/usr/bin/python3 Tests/Interop/tools/etcd3-client-calls.py 24872 >"$work/ours.out" 2>&1 || { cat "$work/ours.out"; exit 1; }
if ! diff "$work/reference.out" "$work/ours.out"; then
    echo "python3-etcd3: coreos etcd answers differ from etcd 3.4"
    exit 1
fi
echo "python3-etcd3: $(grep -c . "$work/ours.out") calls answered as etcd 3.4 answers them"
