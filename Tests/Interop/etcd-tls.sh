#!/usr/bin/env bash
# TLS on `coreos etcd`, client and peer side. A throwaway CA signs a server certificate for
# 127.0.0.1 and client certificates (CN alice, CN root); another CA signs one that must be
# refused. Checked: Debian's etcdctl 3.4 and python3-etcd3 connect with client
# certificates (python3-etcd3 also with a user, whose token gRPC sends only over TLS); no
# client certificate or an untrusted one is refused; curl gets /health and the JSON
# gateway over HTTP/2 and HTTP/1.1; with auth on, a certificate's common name is the user;
# --auto-tls serves a generated certificate; --cipher-suites limits TLS 1.2 suites; and a
# 3-member cluster runs with peer TLS and peer client-certificate checks.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-client openssl curl python3-etcd3

ours_binary="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
[ -x "$ours_binary" ] || die "build first: $ours_binary is missing"
work="$(mktemp -d)"
pids=()
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done; rm -rf "$work"' EXIT
repo="$(pwd)"
cd "$work"

. "$repo/Tests/Interop/lib/test-ca.sh"
certificate alice ca.crt ca.key "extendedKeyUsage=clientAuth\n"
certificate root ca.crt ca.key "extendedKeyUsage=clientAuth\n"
certificate mallory other-ca.crt other-ca.key "extendedKeyUsage=clientAuth\n"

. "$repo/Tests/Interop/lib/checks.sh"
wait_for() { # command...
    for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}
export ETCDCTL_API=3

# One member with client certificates required.
port=25610
"$ours_binary" etcd --data-dir "$work/tls.etcd" --listen-client-urls "https://127.0.0.1:$port" \
    --advertise-client-urls "https://127.0.0.1:$port" --listen-peer-urls "http://127.0.0.1:$((port + 1))" \
    --cert-file server.crt --key-file server.key --trusted-ca-file ca.crt --client-cert-auth --bcrypt-cost 4 >tls.log 2>&1 &
pids+=($!)
E="etcdctl --endpoints=https://127.0.0.1:$port --cacert=ca.crt --dial-timeout=1s --command-timeout=3s"
wait_for $E --cert=alice.crt --key=alice.key endpoint health || { cat tls.log; die "the TLS member did not come up"; }
check "etcdctl with a client certificate: put" 0 $E --cert=alice.crt --key=alice.key put /app/a 1
check "etcdctl with a client certificate: get" 0 $E --cert=alice.crt --key=alice.key get /app/a
check "etcdctl without a client certificate is refused" 1 $E get /app/a
check "a certificate from another CA is refused" 1 $E --cert=mallory.crt --key=mallory.key get /app/a
check "the wrong CA on the client side is refused" 1 etcdctl --endpoints=https://127.0.0.1:$port --cacert=other-ca.crt \
    --cert=alice.crt --key=alice.key --dial-timeout=1s --command-timeout=2s get /app/a
check "curl /health over HTTP/2" 0 sh -c "curl -sf --http2 --cacert ca.crt --cert alice.crt --key alice.key https://127.0.0.1:$port/health | grep -q true"
check "curl the gateway over HTTP/1.1" 0 sh -c "curl -sf --http1.1 --cacert ca.crt --cert alice.crt --key alice.key -XPOST https://127.0.0.1:$port/v3/kv/range -d '{\"key\":\"L2FwcC9h\"}' | grep -q MQ=="
check "curl without a certificate is refused" 0 sh -c "! curl -s --cacert ca.crt https://127.0.0.1:$port/health"
check "python3-etcd3 with a client certificate" 0 /usr/bin/python3 -c "
import etcd3
c = etcd3.client(host='127.0.0.1', port=$port, ca_cert='ca.crt', cert_key='alice.key', cert_cert='alice.crt')
c.put('/app/py', 'x'); assert c.get('/app/py')[0] == b'x'"

# Auth on: the common name of a certificate is the user; tokens work over TLS.
R="$E --cert=root.crt --key=root.key"
quiet $R user add root:rootpw
quiet $R user grant-role root root
quiet $R role add app
quiet $R role grant-permission app readwrite /app/ --prefix
quiet $R user add alice --no-password
quiet $R user grant-role alice app
quiet $R user add bob:bobpw
quiet $R user grant-role bob app
quiet $R auth enable
check "CN alice writes inside her prefix" 0 $E --cert=alice.crt --key=alice.key put /app/b 2
check "CN alice is refused outside it" 1 $E --cert=alice.crt --key=alice.key put /other 2
check "CN root administers" 0 $R user list
check "python3-etcd3 with a user over TLS" 0 /usr/bin/python3 -c "
import etcd3
c = etcd3.client(host='127.0.0.1', port=$port, ca_cert='ca.crt', cert_key='alice.key', cert_cert='alice.crt', user='bob', password='bobpw')
c.put('/app/bob', 'y'); assert c.get('/app/bob')[0] == b'y'
try:
    c.put('/elsewhere', 'z')
except Exception as error:
    assert 'permission denied' in str(error), error
else:
    raise SystemExit('bob wrote outside his prefix')"
check "python3-etcd3 with a wrong password" 1 /usr/bin/python3 -c "
import etcd3
etcd3.client(host='127.0.0.1', port=$port, ca_cert='ca.crt', cert_key='alice.key', cert_cert='alice.crt', user='bob', password='wrong')"

# Plain HTTP on one client URL and TLS on another, on one member; the lock service (which
# calls the member's own first URL) works with TLS configured.
dual=25660
"$ours_binary" etcd --data-dir "$work/dual.etcd" --listen-client-urls "http://127.0.0.1:$dual,https://127.0.0.1:$((dual + 2))" \
    --advertise-client-urls "http://127.0.0.1:$dual" --listen-peer-urls "http://127.0.0.1:$((dual + 1))" \
    --cert-file server.crt --key-file server.key >dual.log 2>&1 &
pids+=($!)
wait_for curl -sf "http://127.0.0.1:$dual/health" || { cat dual.log; die "the two-URL member did not come up"; }
check "two client URLs: plain HTTP" 0 curl -sf "http://127.0.0.1:$dual/health"
check "two client URLs: TLS" 0 curl -sf --cacert ca.crt "https://127.0.0.1:$((dual + 2))/health"
check "two client URLs: etcdctl over TLS" 0 etcdctl --endpoints="https://127.0.0.1:$((dual + 2))" --cacert=ca.crt put k v
check "two client URLs: the lock service" 0 sh -c "curl -sf --max-time 5 -XPOST http://127.0.0.1:$dual/v3/lock/lock -d '{\"name\":\"bA==\"}' | grep -q key"

# --auto-tls: a generated certificate, kept in the data directory.
auto=25620
"$ours_binary" etcd --data-dir "$work/auto.etcd" --listen-client-urls "https://127.0.0.1:$auto" \
    --advertise-client-urls "https://127.0.0.1:$auto" --listen-peer-urls "http://127.0.0.1:$((auto + 1))" --auto-tls >auto.log 2>&1 &
pids+=($!)
# etcdctl 3.4 speaks TLS without a CA only with --insecure-transport=false, for etcd too.
A="etcdctl --endpoints=https://127.0.0.1:$auto --insecure-skip-tls-verify --insecure-transport=false --dial-timeout=1s --command-timeout=2s"
wait_for $A endpoint health || { cat auto.log; die "the auto-TLS member did not come up"; }
check "--auto-tls: put with verification skipped" 0 $A put k v
check "--auto-tls: the certificate is in fixtures/client" 0 test -s "$work/auto.etcd/fixtures/client/cert.pem"
check "--auto-tls: a verifying client refuses it" 1 etcdctl --endpoints=https://127.0.0.1:$auto --cacert=ca.crt --dial-timeout=1s --command-timeout=2s get k

# --cipher-suites: TLS 1.2 clients get only the suites named.
suites=25630
"$ours_binary" etcd --data-dir "$work/suites.etcd" --listen-client-urls "https://127.0.0.1:$suites" \
    --advertise-client-urls "https://127.0.0.1:$suites" --listen-peer-urls "http://127.0.0.1:$((suites + 1))" \
    --cert-file server.crt --key-file server.key --cipher-suites TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 >suites.log 2>&1 &
pids+=($!)
wait_for curl -sf --cacert ca.crt "https://127.0.0.1:$suites/health" || { cat suites.log; die "the cipher-suite member did not come up"; }
check "a named suite is accepted" 0 sh -c "openssl s_client -connect 127.0.0.1:$suites -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256 </dev/null 2>&1 | grep -q 'Cipher is ECDHE-RSA-AES128-GCM-SHA256'"
check "another suite is refused" 1 sh -c "openssl s_client -connect 127.0.0.1:$suites -tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384 </dev/null 2>&1 | grep -q 'Cipher is ECDHE'"
check "an unknown suite name stops the server" 1 "$ours_binary" etcd --data-dir "$work/bad.etcd" --listen-client-urls https://127.0.0.1:25640 \
    --advertise-client-urls https://127.0.0.1:25640 --listen-peer-urls http://127.0.0.1:25641 --cert-file server.crt --key-file server.key \
    --cipher-suites TLS_NO_SUCH_SUITE
check "https without a certificate stops the server" 1 "$ours_binary" etcd --data-dir "$work/bad2.etcd" \
    --listen-client-urls https://127.0.0.1:25642 --advertise-client-urls https://127.0.0.1:25642 --listen-peer-urls http://127.0.0.1:25643

# Three members with peer TLS and peer certificate checks.
cluster="one=https://127.0.0.1:25651,two=https://127.0.0.1:25653,three=https://127.0.0.1:25655"
for member in one:25650 two:25652 three:25654; do
    name=${member%%:*} client=${member##*:}
    "$ours_binary" etcd --name "$name" --data-dir "$work/$name.etcd" --listen-client-urls "http://127.0.0.1:$client" \
        --advertise-client-urls "http://127.0.0.1:$client" --listen-peer-urls "https://127.0.0.1:$((client + 1))" \
        --initial-advertise-peer-urls "https://127.0.0.1:$((client + 1))" --initial-cluster "$cluster" \
        --peer-cert-file server.crt --peer-key-file server.key --peer-trusted-ca-file ca.crt --peer-client-cert-auth \
        >"$name.log" 2>&1 &
    pids+=($!)
done
C="etcdctl --endpoints=http://127.0.0.1:25650,http://127.0.0.1:25652,http://127.0.0.1:25654"
wait_for etcdctl --endpoints=http://127.0.0.1:25654 --dial-timeout=1s --command-timeout=2s put /cluster/ready yes || { tail -5 one.log two.log three.log; die "the peer-TLS cluster did not form"; }
check "peer TLS: a write on one member" 0 etcdctl --endpoints=http://127.0.0.1:25650 put /cluster/k v
check "peer TLS: read on another" 0 sh -c "etcdctl --endpoints=http://127.0.0.1:25654 get /cluster/k --print-value-only | grep -qx v"
check "peer TLS: three members listed with https peer URLs" 0 sh -c "$C member list | grep -c https://127.0.0.1 | grep -qx 3"
check "peer TLS: a plain TCP peer connection carries no Raft traffic" 0 sh -c "! curl -s --max-time 2 http://127.0.0.1:25651/members | grep -q peerURLs"

# /v2/stats/leader: one member leads and reports both followers acknowledging; the others
# answer 403 as etcd's followers do.
leader_stats() {
    for client in 25650 25652 25654; do curl -s -f "http://127.0.0.1:$client/v2/stats/leader" && return; done
}
check "v2 stats: the leader reports two followers that acknowledge" 0 /usr/bin/python3 -c "
import json, sys
stats = json.loads(sys.argv[1])
followers = stats['followers']
assert len(followers) == 2 and all(f['counts']['success'] > 0 and f['latency']['maximum'] > 0 for f in followers.values()), stats" "$(leader_stats)"
check "v2 stats: followers refuse /v2/stats/leader with 403" 0 sh -c "[ \$(for c in 25650 25652 25654; do curl -s -o /dev/null -w '%{http_code} ' http://127.0.0.1:\$c/v2/stats/leader; done | tr ' ' '\n' | grep -c 403) = 2 ]"

echo "etcd TLS: $passed passed, $failed failed"
[ "$failed" = 0 ]
