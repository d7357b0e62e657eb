#!/usr/bin/env bash
# Watch behaviour etcdctl cannot reach, real etcd 3.4 against `coreos etcd` through raw
# gRPC (Tests/Interop/tools/etcd-watch-probe.py): progress notifications (interval 1 s on
# both), a reader that stops reading during 3000 puts (every event exactly once, in
# order), and fragmentation of a 3 MB history replay; the probe lines must be equal. On
# ours the slow reader must also have gone through the catch-up from history
# (etcd_debugging_mvcc_slow_watcher_total above 0).
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server python3-etcd3 curl
. Tests/Interop/lib/server-pair.sh
start_server_pair 24860 24862 --experimental-watch-progress-notify-interval 1s
failed=0
timeout 300 /usr/bin/python3 Tests/Interop/tools/etcd-watch-probe.py 24860 >"$work/reference.out" 2>&1 || failed=1
timeout 300 /usr/bin/python3 Tests/Interop/tools/etcd-watch-probe.py 24862 >"$work/ours.out" 2>&1 || failed=1
if ! diff "$work/reference.out" "$work/ours.out"; then failed=1; fi
slow=$(curl -s http://127.0.0.1:24862/metrics | awk '$1 == "etcd_debugging_mvcc_slow_watcher_total" { print $2 }')
[ "${slow:-0}" -gt 0 ] || { echo "the slow reader never overflowed its live feed (slow watchers: ${slow:-none})"; failed=1; }
[ "$failed" = 0 ] && echo "etcd server watch: progress notify, slow reader caught up ($slow), fragmentation as etcd" && cat "$work/ours.out"
exit "$failed"
