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
ensure_apt_packages etcd-server etcd-client curl
. Tests/Interop/lib/server-pair.sh
start_server_pair 25310 25312 --enable-v2=true
/usr/bin/python3 Tests/Interop/tools/v2-keys-calls.py 25310 >"$work/reference.out" 2>&1 || { cat "$work/reference.out"; exit 1; }
/usr/bin/python3 Tests/Interop/tools/v2-keys-calls.py 25312 >"$work/ours.out" 2>&1 || { cat "$work/ours.out"; exit 1; }
# Debian's etcdctl in v2 mode: the same commands, the same output and exit codes.
ctl2_session() { # PORT
    local endpoint="http://127.0.0.1:$1" command
    while IFS= read -r command; do
        echo "\$ $command"
        # shellcheck disable=SC2086
        ETCDCTL_API=2 etcdctl --endpoints="$endpoint" $command 2>&1 | sed -E 's/\[[0-9]+\]$/[INDEX]/'
        echo "exit ${PIPESTATUS[0]}"
    done <<'COMMANDS'
set /ctl/a 1
get /ctl/a
mk /ctl/a 2
mk /ctl/b 2
update /ctl/b 3
update /ctl/none 3
mkdir /ctl/dir
mkdir /ctl/dir
ls --sort /ctl
ls --recursive --sort /ctl
get /ctl/dir
rm /ctl/dir
rmdir /ctl/dir
set --swap-with-value 9 /ctl/a 2
set --swap-with-value 1 /ctl/a 2
rm --with-value 5 /ctl/a
rm --recursive /ctl
get /ctl/a
COMMANDS
}
ctl2_session 25310 >"$work/reference-ctl2.out"
ctl2_session 25312 >"$work/ours-ctl2.out"
failed=0
if ! diff "$work/reference.out" "$work/ours.out"; then
    echo "v2 keys: coreos etcd answers differ from etcd 3.4"
    failed=1
fi
if ! diff "$work/reference-ctl2.out" "$work/ours-ctl2.out"; then
    echo "ETCDCTL_API=2 etcdctl: coreos etcd answers differ from etcd 3.4"
    failed=1
fi
# Membership through v2: member list (with the leader) and cluster-health.
ETCDCTL_API=2 etcdctl --endpoints=http://127.0.0.1:25312 member list | grep -q 'isLeader=true' || { echo "v2 member list shows no leader"; failed=1; }
ETCDCTL_API=2 etcdctl --endpoints=http://127.0.0.1:25312 cluster-health | grep -q '^cluster is healthy$' || { echo "v2 cluster-health is not healthy"; failed=1; }
[ "$(curl -s http://127.0.0.1:25312/v2/machines)" = "http://127.0.0.1:25312" ] || { echo "/v2/machines is wrong"; failed=1; }
[ "$failed" = 0 ] || exit 1
echo "v2 keys: $(grep -c . "$work/ours.out") requests and $(grep -c '^\$' "$work/ours-ctl2.out") etcdctl v2 commands answered as etcd 3.4 answers them"
