#!/usr/bin/env bash
# fleetd's API over TLS with client certificates (fleet's own TCP API has no access
# control). Two machines listen on https:// with a throwaway CA; fleetctl reaches them with
# --ca-file/--cert-file/--key-file; no certificate, one from another CA, plain HTTP and
# TLS 1.1 are refused; `fleetctl journal` through one machine reaches the unit's machine
# over TLS with the first machine's certificate; an https:// listener without a certificate
# is a configuration error.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages openssl curl
ours_binary="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
[ -x "$ours_binary" ] || die "build first: $ours_binary is missing"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
    pkill -f "fleet-tls-test-unit" 2>/dev/null
    [ -n "${KEEP:-}" ] && { echo "kept $work"; return; }
    rm -rf "$work"
}
trap cleanup EXIT
repo="$(pwd)"
cd "$work" || die "no work directory"
. "$repo/Tests/Interop/lib/test-ca.sh"
certificate alice ca.crt ca.key "extendedKeyUsage=clientAuth\n"
certificate mallory other-ca.crt other-ca.key "extendedKeyUsage=clientAuth\n"
. "$repo/Tests/Interop/lib/checks.sh"

port=26960
m1=33333333cccccccccccccccccccccccc
m2=44444444dddddddddddddddddddddddd
"$ours_binary" etcd --name solo --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$port" \
    --advertise-client-urls "http://127.0.0.1:$port" --listen-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" --initial-cluster "solo=http://127.0.0.1:$((port + 1))" >etcd.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
start_fleet() { # NAME ID ROLE API-PORT
    "$ours_binary" fleet --machine-id "$2" --etcd_servers "http://127.0.0.1:$port" --metadata "role=$3" --public_ip 127.0.0.1 \
        --listen "https://127.0.0.1:$4" --api_certfile server.crt --api_keyfile server.key --api_cafile ca.crt \
        --agent_ttl 5s --engine_reconcile_interval 1 --log_directory "$work/logs" --runtime_directory "$work/run" >"$1.log" 2>&1 &
    pids+=($!)
}
start_fleet m1 $m1 core $((port + 2))
start_fleet m2 $m2 worker $((port + 3))
endpoint="https://127.0.0.1:$((port + 2))"
fleetctl() { "$ours_binary" fleetctl --endpoint "$endpoint" --ca-file ca.crt --cert-file alice.crt --key-file alice.key "$@"; }
for _ in $(seq 100); do [ "$(fleetctl list-machines --no-legend 2>/dev/null | wc -l)" = 2 ] && break; sleep 0.1; done

check "fleetctl with a client certificate lists both machines" 0 bash -c "[ \$('$ours_binary' fleetctl --endpoint $endpoint --ca-file ca.crt --cert-file alice.crt --key-file alice.key list-machines --no-legend | wc -l) = 2 ]"
check "fleetctl without a client certificate is refused" 1 "$ours_binary" fleetctl --endpoint "$endpoint" --ca-file ca.crt list-machines
check "a certificate from another CA is refused" 1 "$ours_binary" fleetctl --endpoint "$endpoint" --ca-file ca.crt \
    --cert-file mallory.crt --key-file mallory.key list-machines
check "fleetctl trusting another CA refuses the server" 1 "$ours_binary" fleetctl --endpoint "$endpoint" --ca-file other-ca.crt \
    --cert-file alice.crt --key-file alice.key list-machines
check "curl with the client certificate: 200" 0 test "$(curl -s -o /dev/null -w '%{http_code}' --cacert ca.crt --cert alice.crt --key alice.key "$endpoint/fleet/v1/machines")" = 200
check "plain HTTP to the TLS port gets no API answer" 0 bash -c "! curl -sf http://127.0.0.1:$((port + 2))/fleet/v1/machines"
check "TLS 1.1 is refused" 0 bash -c "! openssl s_client -connect 127.0.0.1:$((port + 2)) -tls1_1 -cert alice.crt -key alice.key </dev/null >/dev/null 2>&1"

printf '[Unit]\nDescription=over TLS\n\n[Service]\nExecStart=/bin/bash -c "exec -a fleet-tls-test-unit bash -c \\"while :; do echo tick; sleep 0.2; done\\""\n\n[X-Fleet]\nMachineMetadata=role=worker\n' >tls.service
check "start places the unit on the worker" 0 fleetctl start tls.service
check "... on the worker" 0 grep -q 44444444 last.out
for _ in $(seq 100); do fleetctl journal --lines 1 tls.service 2>/dev/null | grep -q tick && break; sleep 0.1; done
check "journal through the first machine reaches the worker over TLS" 0 bash -c "'$ours_binary' fleetctl --endpoint $endpoint --ca-file ca.crt --cert-file alice.crt --key-file alice.key journal --lines 2 tls.service | grep -q tick"
check "status likewise" 0 bash -c "'$ours_binary' fleetctl --endpoint $endpoint --ca-file ca.crt --cert-file alice.crt --key-file alice.key status tls.service | grep -q 'fleet-tls-test-unit\|tls.service'"
check "destroy" 0 fleetctl destroy tls.service

check "an https:// listener without a certificate is a configuration error" 2 timeout 10 "$ours_binary" fleet --machine-id $m1 \
    --etcd_servers "http://127.0.0.1:$port" --listen "https://127.0.0.1:$((port + 4))" --log_directory "$work/logs" --runtime_directory "$work/run"
check "... which says what is missing" 0 grep -q "api_certfile" last.err

echo "fleet TLS: $passed passed, $failed failed"
[ "$failed" = 0 ]
