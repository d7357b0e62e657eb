#!/usr/bin/env bash
# Authentication and roles of `coreos etcd` beside real etcd 3.4: the same Debian etcdctl
# session (users, roles, prefix permissions, auth enable, reads and writes inside and
# outside the prefix, txn and watch outside it, a wrong password, a revoked permission
# taking effect on the next request, auth disable) must print the same and exit the same
# on both; then txn and watch outside the prefix, and the JSON gateway with a token
# (python3-etcd3 sends a user's token only over TLS: see etcd-tls.sh).
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server etcd-client curl
. Tests/Interop/lib/server-pair.sh
start_server_pair 25430 25432 --bcrypt-cost 4
session() { # PORT [ETCDCTL]
    local endpoint="127.0.0.1:$1" etcdctl="${2:-etcdctl}" command
    while IFS= read -r command; do
        echo "\$ $command"
        # shellcheck disable=SC2086
        ETCDCTL_API=3 timeout 10 "$etcdctl" --endpoints="$endpoint" $command </dev/null 2>&1 | grep -v '^{"level"'
        echo "exit ${PIPESTATUS[0]}"
    done <<'COMMANDS'
auth enable
user add root:rootpw
auth enable
user grant-role root root
role add app
role add app
role grant-permission app readwrite /app/ --prefix
role grant-permission app read /shared
role grant-permission nope read /x
user add alice:alicepw
user add alice:other
user grant-role alice app
user grant-role alice nope
put /shared hello
auth enable
auth enable
get /shared
--user root:rootpw user list
--user root:rootpw role list
--user root:rootpw user get alice
--user root:rootpw role get app
--user alice:alicepw user get alice
--user alice:alicepw role get app
--user alice:alicepw user list
--user alice:alicepw put /app/a 1
--user alice:alicepw get /app/a
--user alice:alicepw get /app/ --prefix
--user alice:alicepw get /shared
--user alice:alicepw put /shared x
--user alice:alicepw put /other 1
--user alice:alicepw get /other
--user alice:alicepw get / --prefix
--user alice:alicepw del /app/a
--user alice:wrong get /app/a
--user nobody:pw get /app/a
--user root:rootpw user delete root
--user root:rootpw user revoke-role root root
--user root:rootpw role delete root
--user alice:alicepw role add hacker
--user alice:alicepw member list
--user root:rootpw role revoke-permission app /app/ --prefix
--user root:rootpw role revoke-permission app /app/ --prefix
--user alice:alicepw get /app/a
--user root:rootpw user revoke-role alice app
--user root:rootpw user revoke-role alice app
--user alice:alicepw get /shared
--user root:rootpw user passwd alice --interactive=false
--user root:rootpw role delete app
--user root:rootpw user delete alice
--user root:rootpw user delete alice
--user root:rootpw auth disable
auth disable
get /shared
COMMANDS
}
session 25430 >"$work/reference.out"
session 25432 >"$work/ours.out"
failed=0
if ! diff "$work/reference.out" "$work/ours.out"; then
    echo "auth: coreos etcd answers differ from etcd 3.4"
    failed=1
fi
# Our etcdctl, against a second pair of servers: the same session must print the same.
mkdir -p "$work/bin" && ln -sf "$ours_binary" "$work/bin/etcdctl"
pair_pids=("${pids[@]}")
for pid in "${pair_pids[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null; done
pids=()
rm -rf "$work/reference.etcd" "$work/ours.etcd"
start_server_pair 25430 25432 --bcrypt-cost 4
session 25432 "$work/bin/etcdctl" >"$work/our-etcdctl.out"
if ! diff "$work/reference.out" "$work/our-etcdctl.out"; then
    echo "auth: coreos etcdctl prints differently from etcd 3.4's"
    failed=1
fi

# JWT tokens (--auth-token jwt,…): the same session on both, then a token made before an
# auth change (still taken) and a forged one (refused) answer alike.
openssl genrsa -out "$work/jwt.key" 2048 2>/dev/null && openssl rsa -in "$work/jwt.key" -pubout -out "$work/jwt.pub" 2>/dev/null ||
    die "openssl could not make the JWT keys"
jwt="jwt,pub-key=$work/jwt.pub,priv-key=$work/jwt.key,sign-method=RS256,ttl=5m"
for pid in "${pids[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null; done
pids=()
rm -rf "$work/reference.etcd" "$work/ours.etcd"
start_server_pair 25430 25432 --bcrypt-cost 4 --auth-token "$jwt"
session 25430 >"$work/reference-jwt.out"
session 25432 >"$work/ours-jwt.out"
if ! diff "$work/reference-jwt.out" "$work/ours-jwt.out"; then
    echo "auth with JWT tokens: coreos etcd answers differ from etcd 3.4"
    failed=1
fi
old_token() { # PORT
    local E="etcdctl --endpoints=127.0.0.1:$1"
    $E --user root:rootpw auth enable >/dev/null 2>&1
    local token
    token=$(curl -s -XPOST "127.0.0.1:$1/v3/auth/authenticate" -d '{"name":"root","password":"rootpw"}' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    echo "fresh token: $(curl -s -o /dev/null -w '%{http_code}' -XPOST -H "Authorization: $token" "127.0.0.1:$1/v3/auth/user/list" -d '{}')"
    $E --user root:rootpw role add later >/dev/null 2>&1
    echo "after an auth change: $(curl -s -XPOST -H "Authorization: $token" "127.0.0.1:$1/v3/auth/user/list" -d '{}')"
    # Forged: one signature character changed well inside (the last one may carry only
    # padding bits, and then decodes to the same signature on any server).
    local forged
    forged=$(/usr/bin/python3 -c 'import sys; t = sys.argv[1]; i = len(t) - 10; print(t[:i] + ("A" if t[i] != "A" else "B") + t[i + 1:])' "$token")
    echo "a forged token: $(curl -s -XPOST -H "Authorization: $forged" "127.0.0.1:$1/v3/auth/user/list" -d '{}')"
    $E --user root:rootpw auth disable >/dev/null 2>&1
}
old_token 25430 | sed 's/"raft_term":"[0-9]*"//' >"$work/reference-old.out"
old_token 25432 | sed 's/"raft_term":"[0-9]*"//' >"$work/ours-old.out"
if ! diff "$work/reference-old.out" "$work/ours-old.out"; then
    echo "JWT revisions: coreos etcd answers differ from etcd 3.4"
    failed=1
fi

# Txn and watch are checked too: a second pass with a limited user, on ours (root and its
# role are left from the session).
E="etcdctl --endpoints=127.0.0.1:25432"
export ETCDCTL_API=3
$E role add app >/dev/null &&
    $E role grant-permission app readwrite /app/ --prefix >/dev/null && $E user add bob:bobpw >/dev/null &&
    $E user grant-role bob app >/dev/null && $E auth enable >/dev/null || { echo "auth setup failed"; failed=1; }
txn_out=$(printf 'value("/app/a") = "1"\n\nput /secret 1\n\n\n' | $E --user bob:bobpw txn 2>&1 | grep -v '^{"level"')
[ "$txn_out" = "Error: etcdserver: permission denied" ] || { echo "txn outside the prefix was not refused: $txn_out"; failed=1; }
watch_out=$(timeout 5 $E --user bob:bobpw watch /secret 2>&1 | grep -v '^{"level"')
echo "$watch_out" | grep -q "permission denied" || { echo "watch outside the prefix was not refused: $watch_out"; failed=1; }
# The gateway: a token from /v3/auth/authenticate in the Authorization header.
token=$(curl -s -XPOST 127.0.0.1:25432/v3/auth/authenticate -d '{"name":"bob","password":"bobpw"}' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
ok=$(curl -s -XPOST -H "Authorization: $token" 127.0.0.1:25432/v3/kv/put -d '{"key":"L2FwcC9i","value":"eA=="}')
denied=$(curl -s -o /dev/null -w '%{http_code}' -XPOST -H "Authorization: $token" 127.0.0.1:25432/v3/kv/put -d '{"key":"L290aGVy","value":"eA=="}')
echo "$ok" | grep -q '"revision"' && [ "$denied" = 403 ] || { echo "gateway with a token: $ok / $denied"; failed=1; }
[ "$failed" = 0 ] || exit 1
echo "auth: $(grep -c '^\$' "$work/ours.out") etcdctl commands answered as etcd 3.4 answers them (Debian's etcdctl and ours); txn, watch and the gateway checked, with simple and JWT tokens"
