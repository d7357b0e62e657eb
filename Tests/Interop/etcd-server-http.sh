#!/usr/bin/env bash
# HTTP/1.1 on the gRPC client port, `coreos etcd` against real etcd 3.4: /version,
# /health and an unknown path answer byte for byte the same (the Date header aside);
# /metrics carries etcd's main series with the same types; gRPC keeps working on the
# same port before and after.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server etcd-client curl
. Tests/Interop/lib/server-pair.sh
start_server_pair 24840 24842
for port in 24840 24842; do
    for _ in $(seq 100); do ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:$port put probe x >/dev/null 2>&1 && break; sleep 0.1; done
done
failed=0
fetch() { curl -si "$@" | tr -d '\r' | grep -v '^Date: '; }
for request in "GET /version" "GET /health" "GET /no-such-path" "GET /health?serializable=true" "POST /version" "PUT /health"; do
    method=${request% *} path=${request#* }
    if ! diff <(fetch -X "$method" "http://127.0.0.1:24840$path") <(fetch -X "$method" "http://127.0.0.1:24842$path") >"$work/diff"; then
        echo "DIFFERS: $request"
        cat "$work/diff"
        failed=1
    fi
done
series=(etcd_server_has_leader etcd_server_is_leader etcd_server_leader_changes_seen_total etcd_server_proposals_committed_total
    etcd_server_proposals_applied_total etcd_server_proposals_pending etcd_server_proposals_failed_total
    etcd_disk_wal_fsync_duration_seconds etcd_disk_wal_write_bytes_total etcd_mvcc_db_total_size_in_bytes
    etcd_mvcc_db_total_size_in_use_in_bytes etcd_mvcc_put_total etcd_mvcc_range_total etcd_server_quota_backend_bytes
    etcd_server_version etcd_server_id)
curl -s http://127.0.0.1:24840/metrics >"$work/reference.metrics"
curl -s http://127.0.0.1:24842/metrics >"$work/ours.metrics"
for name in "${series[@]}"; do
    want=$(grep "^# TYPE $name " "$work/reference.metrics")
    got=$(grep "^# TYPE $name " "$work/ours.metrics")
    if [ -z "$got" ] || [ "$want" != "$got" ]; then echo "metric $name: want [$want], got [$got]"; failed=1; fi
done
for line in 'etcd_server_has_leader 1' 'etcd_server_is_leader 1' 'etcd_server_quota_backend_bytes 2.147483648e+09' \
    'etcd_server_version{server_version="3.4.23"} 1'; do
    grep -qxF "$line" "$work/ours.metrics" || { echo "metric line missing: $line"; failed=1; }
done
[ "$(ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:24842 get probe --print-value-only)" = x ] || { echo "gRPC broken after HTTP/1.1"; failed=1; }
[ "$failed" = 0 ] && echo "etcd server http: /version /health /metrics as etcd on the gRPC port"
exit "$failed"
