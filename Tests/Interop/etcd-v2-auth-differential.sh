#!/usr/bin/env bash
# v2 authentication of `coreos etcd` beside real etcd 3.4 (v2 switched on): Debian's
# etcdctl in v2 mode (roles, users, grants and their errors, auth enable and disable, keys
# as a guest, as a user with a role, as root, with wrong credentials) and raw /v2/auth
# requests must give the same output, statuses and JSON on both. Also the v2 long poll:
# its status and X-Etcd-Index arrive before the event does.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server etcd-client curl
. Tests/Interop/lib/server-pair.sh
# A low bcrypt cost on both: the debug build hashes slowly, and the cost changes no answer.
start_server_pair 25420 25422 --enable-v2=true --bcrypt-cost=4

session() { # PORT
    local url="http://127.0.0.1:$1" command
    set -f # patterns such as /* are etcd's, not the shell's
    while IFS= read -r command; do
        echo "\$ ${command//$1/PORT}"
        case "$command" in
        curl*)
            # shellcheck disable=SC2086
            eval "curl -sS -i ${command#curl } 2>&1" | tr -d '\r' | grep -v -E '^(Date|X-Etcd-Cluster-Id|X-Raft-Index|X-Raft-Term):'
            echo
            ;;
        *)
            # shellcheck disable=SC2086
            eval "ETCDCTL_API=2 etcdctl --endpoints=$url $command" 2>&1 | sed -E 's/\[[0-9]+\]$/[INDEX]/'
            echo "exit ${PIPESTATUS[0]}"
            ;;
        esac
    done <<COMMANDS
role add foo
role add foo
role list
role grant --rw --path=/foo foo
role grant --read --path=/foo foo
role grant --read --path=/bar/* foo
role get foo
role revoke --read --path=/nope foo
user add username:password
user add username:other
user grant --roles foo username
user grant --roles foo username
user revoke --roles bar username
user get username
user list
curl $url/v2/auth/users
curl $url/v2/auth/roles/foo
curl -X PUT $url/v2/auth/users/x -d '{"user":"x"}'
curl -X PUT $url/v2/auth/users/y -d '{"user":"z","password":"p"}'
curl -X PUT $url/v2/auth/users/y -d 'not json'
curl -X PUT $url/v2/auth/roles/root -d '{"role":"root"}'
curl -X POST $url/v2/auth/users
curl $url/v2/auth/users/a/b
curl $url/v2/auth/enable
auth enable
user add root:123
auth enable
auth enable
curl $url/v2/auth/enable
set /foo as-guest
--username root:123 set /foo as-root
--username username:password set /foo as-user
--username username:password get /foo
--username username:password set /other no
--username username:wrong get /foo
--username nobody:x get /foo
--username username:password role list
curl $url/v2/auth/users
curl -u root:123 $url/v2/auth/roles
--username root:123 role revoke --rw --path=/* guest
set /foo guest-now-refused
get /foo
--username root:123 user remove root
--username root:123 auth disable
auth disable
set /after enabled-again
user remove username
user remove username
role remove foo
role remove root
COMMANDS
}
session 25420 >"$work/reference.out"
session 25422 >"$work/ours.out"
failed=0
if ! diff "$work/reference.out" "$work/ours.out"; then
    echo "v2 auth: coreos etcd answers differ from etcd 3.4"
    failed=1
fi

# A long poll: the status line and the index come at once, the event when it happens.
for port in 25420 25422; do
    curl -sS -N -D "$work/headers.$port" -o "$work/body.$port" "http://127.0.0.1:$port/v2/keys/poll?wait=true" &
    poller=$!
    for _ in $(seq 50); do [ -s "$work/headers.$port" ] && break; sleep 0.1; done
    if ! grep -q '^X-Etcd-Index:' "$work/headers.$port"; then
        echo "port $port: a waiting v2 watch did not send its headers before the event"
        failed=1
    fi
    curl -sS -X PUT "http://127.0.0.1:$port/v2/keys/poll" -d value=now >/dev/null
    wait "$poller"
    grep -q '"action":"set"' "$work/body.$port" || { echo "port $port: the watch got no event"; failed=1; }
done
[ "$failed" = 0 ] && echo "v2 auth: the same answers as etcd 3.4; long polls answer at once"
[ "$failed" = 0 ]
