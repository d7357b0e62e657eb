#!/usr/bin/env bash
# The space quota of `coreos etcd`, through Debian's etcdctl: writes past
# --quota-backend-bytes raise NOSPACE; while it is raised reads, deletes and compaction
# work and writes are refused; the alarm survives a restart; compaction gives the space
# back (our quota counts the kept history, not a file that only a defragment shrinks),
# and after a disarm writes are accepted again. No acknowledged write is lost.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-client
ours_binary="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
work="$(mktemp -d)"
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
start() {
    "$ours_binary" etcd --data-dir "$work/quota.etcd" --listen-client-urls http://127.0.0.1:24830 \
        --advertise-client-urls http://127.0.0.1:24830 --listen-peer-urls http://127.0.0.1:24831 \
        --quota-backend-bytes 300000 >>"$work/server.log" 2>&1 &
    server=$!
    for _ in $(seq 100); do ctl endpoint health >/dev/null 2>&1 && return; sleep 0.1; done
}
ctl() { ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:24830 "$@"; }
failed=0
expect() { # DESCRIPTION EXPECTED ACTUAL
    if [ "$2" != "$3" ]; then echo "FAIL $1: want [$2], got [$3]"; failed=1; fi
}
start
head -c 100000 /dev/zero | tr '\0' v >"$work/value"
accepted=0
for index in 1 2 3 4; do
    if ctl put "big$index" <"$work/value" >/dev/null 2>"$work/err"; then accepted=$((accepted + 1)); fi
done
expect "writes accepted under a 300000-byte quota" 2 "$accepted"
expect "the refusal" "Error: etcdserver: mvcc: database space exceeded" "$(tail -1 "$work/err")"
alarm="memberID:10276657743932975437 alarm:NOSPACE "
expect "alarm list" "$alarm" "$(ctl alarm list)"
expect "small put refused while raised" "Error: etcdserver: mvcc: database space exceeded" "$(ctl put small x 2>&1 | tail -1)"
expect "reads work" "big1 big2" "$(ctl get big --prefix --keys-only | grep . | xargs)"
kill "$server"; wait "$server" 2>/dev/null
start
expect "alarm after restart" "$alarm" "$(ctl alarm list)"
expect "delete works" "1" "$(ctl del big1)"
revision=$(ctl get big2 -w json | sed -E 's/.*"revision":([0-9]+).*/\1/')
expect "compaction works" "compacted revision $revision" "$(ctl compact "$revision")"
expect "disarm" "$alarm" "$(ctl alarm disarm)"
expect "alarm list after disarm" "" "$(ctl alarm list)"
expect "put after disarm" "OK" "$(ctl put small x)"
expect "acknowledged writes kept" "big2 small" "$(ctl get '' --prefix --keys-only | grep . | xargs)"
[ "$failed" = 0 ] && echo "etcd server quota: NOSPACE raised, held across a restart, cleared; nothing lost"
exit "$failed"
