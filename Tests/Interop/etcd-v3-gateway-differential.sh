#!/usr/bin/env bash
# The v3 JSON gateway of `coreos etcd` beside real etcd 3.4: the same requests
# (Tests/Interop/tools/v3-gateway-calls.py: KV, txn, leases, keep-alive and watch streams,
# compaction, cluster, maintenance, auth listings, bad bodies) must give the same status,
# content type and JSON (key order included), with cluster-specific values masked.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server etcd-client curl
. Tests/Interop/lib/server-pair.sh
start_server_pair 25410 25412
/usr/bin/python3 Tests/Interop/tools/v3-gateway-calls.py 25410 >"$work/reference.out" 2>&1 || { cat "$work/reference.out"; exit 1; }
/usr/bin/python3 Tests/Interop/tools/v3-gateway-calls.py 25412 >"$work/ours.out" 2>&1 || { cat "$work/ours.out"; exit 1; }
if ! diff "$work/reference.out" "$work/ours.out"; then
    echo "v3 gateway: coreos etcd answers differ from etcd 3.4"
    exit 1
fi
echo "v3 gateway: $(grep -c . "$work/ours.out") answers as etcd 3.4 gives them"
