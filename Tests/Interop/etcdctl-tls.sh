#!/usr/bin/env bash
# TLS with client certificates: a throwaway CA signs a server certificate for 127.0.0.1
# and a client certificate; etcd 3.4 requires client certificates. Debian's etcdctl and
# ours must both succeed with --cacert/--cert/--key, and both must fail the same way
# without a client certificate or with an untrusted CA.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server etcd-client openssl

ours_binary="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
[ -x "$ours_binary" ] || die "build first: $ours_binary is missing"
work="$(mktemp -d)"
etcd_pid=""
cleanup() {
    [ -n "$etcd_pid" ] && kill "$etcd_pid" 2>/dev/null && wait "$etcd_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
ln -s "$ours_binary" "$work/etcdctl"
repo="$(pwd)"
cd "$work"

. "$repo/Tests/Interop/lib/test-ca.sh"
certificate client ca.crt ca.key "extendedKeyUsage=clientAuth\n"

port=24479
etcd --name tls --data-dir "$work/tls.etcd" \
    --listen-client-urls "https://127.0.0.1:$port" --advertise-client-urls "https://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$((port + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-cluster "tls=http://127.0.0.1:$((port + 1))" \
    --cert-file server.crt --key-file server.key --client-cert-auth --trusted-ca-file ca.crt >etcd.log 2>&1 &
etcd_pid=$!
tls="--endpoints=https://127.0.0.1:$port --cacert=ca.crt --cert=client.crt --key=client.key"
for _ in $(seq 100); do
    etcdctl $tls endpoint health >/dev/null 2>&1 && break
    sleep 0.1
done

. "$repo/Tests/Interop/lib/checks.sh"
check "ours puts over mutual TLS" 0 ./etcdctl $tls put secure yes
check "Debian's etcdctl reads it" 0 etcdctl $tls get secure
[ "$(sed -n 2p out)" = yes ] || { failed=$((failed + 1)); echo "FAILED: value over TLS: $(cat out)"; }
check "ours reads it back" 0 ./etcdctl $tls get secure -w json
grep -q '"value":"eWVz"' out || { failed=$((failed + 1)); echo "FAILED: json over TLS: $(cat out)"; }
check "ours runs a txn over TLS" 0 ./etcdctl $tls txn <<<$'\n\nput secure again\n\n\n'
check "ours without a client certificate is refused" 1 ./etcdctl --endpoints=https://127.0.0.1:$port --cacert=ca.crt --command-timeout=2s get secure
check "Debian's without a client certificate is refused" 1 etcdctl --endpoints=https://127.0.0.1:$port --cacert=ca.crt --command-timeout=2s get secure
check "ours refuses a server signed by an untrusted CA" 1 ./etcdctl --endpoints=https://127.0.0.1:$port --cacert=other-ca.crt --cert=client.crt --key=client.key --command-timeout=2s get secure
check "ours with --insecure-skip-tls-verify and a client certificate" 0 ./etcdctl --endpoints=https://127.0.0.1:$port --insecure-skip-tls-verify --cert=client.crt --key=client.key get secure

echo "etcdctl TLS: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
