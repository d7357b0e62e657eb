#!/usr/bin/env bash
# Disaster recovery with Debian's etcdctl 3.4 against `coreos etcd`: a loaded three-member
# cluster is snapshotted (`etcdctl snapshot save`), restored into a new three-member
# cluster (`coreos etcdctl snapshot restore`: new IDs, membership rewritten) that must hold
# the same keys at the same revisions; then two of the new members are lost for good and
# the third is restarted with --force-new-cluster: alone, its data kept, writable again,
# and able to grow back with `member add`. Bad inputs to restore are refused.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-client python3-etcd3
ours_binary="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
work="$(mktemp -d)"
failed=0
declare -A pid=()
cleanup() {
    for name in "${!pid[@]}"; do kill -9 "${pid[$name]}" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; failed=1; }
ctl() { ETCDCTL_API=3 etcdctl --command-timeout=10s "$@"; }
client() { echo "127.0.0.1:$(($1 + 2 * $2))"; }
peer() { echo "http://127.0.0.1:$(($1 + 2 * $2 + 1))"; }
cluster_of() { # BASE PREFIX
    echo "$2"0="$(peer "$1" 0)","$2"1="$(peer "$1" 1)","$2"2="$(peer "$1" 2)"
}
start() { # BASE PREFIX INDEX [EXTRA...]
    local base=$1 prefix=$2 index=$3
    shift 3
    "$ours_binary" etcd --name "$prefix$index" --data-dir "$work/$prefix$index.etcd" \
        --listen-client-urls "http://$(client "$base" "$index")" --advertise-client-urls "http://$(client "$base" "$index")" \
        --listen-peer-urls "$(peer "$base" "$index")" --initial-advertise-peer-urls "$(peer "$base" "$index")" \
        --initial-cluster "$(cluster_of "$base" "$prefix")" --initial-cluster-token "$prefix-token" "$@" \
        >>"$work/$prefix$index.log" 2>&1 &
    pid[$prefix$index]=$!
}
# Every key with its revisions, version, value and lease, then the store's revision.
dump_keys() {
    /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
for k in r["kvs"]:
    print(k["key"], k["create_revision"], k["mod_revision"], k["version"], k["value"], k.get("lease", 0))
print("revision", r["header"]["revision"])'
}
healthy() { # ENDPOINTS
    for _ in $(seq 100); do ctl --endpoints="$1" --command-timeout=1s endpoint health >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

old=24970 new=24980
for i in 0 1 2; do start "$old" a "$i" --snapshot-count 500; done
old_endpoints="$(client $old 0),$(client $old 1),$(client $old 2)"
healthy "$old_endpoints" || fail "the first cluster did not come up"
/usr/bin/python3 - "$(client $old 0)" <<'PY'
import sys, etcd3
host, port = sys.argv[1].rsplit(":", 1)
c = etcd3.client(host=host, port=int(port), timeout=10)
lease = c.lease(3600)
for i in range(3000):
    c.put(f"load/{i:05d}", f"value-{i}" * 5, lease=lease if i % 100 == 0 else None)
for i in range(0, 3000, 7):
    c.put(f"load/{i:05d}", "overwritten")
for i in range(0, 3000, 11):
    c.delete(f"load/{i:05d}")
PY
ctl --endpoints="$(client $old 0)" get load/ --prefix -w json | dump_keys >"$work/before"
ctl --endpoints="$(client $old 0)" snapshot save "$work/backup.db" >/dev/null 2>&1 || fail "snapshot save failed"

# Bad inputs: a missing file, a file that is not a snapshot, a damaged one, an existing data dir.
ctl snapshot restore "$work/none.db" --data-dir "$work/x" >/dev/null 2>&1 && fail "restore of a missing file succeeded"
head -c 4096 /dev/urandom >"$work/junk.db"
"$ours_binary" etcdctl snapshot restore "$work/junk.db" --data-dir "$work/x" >/dev/null 2>&1 && fail "restore of junk succeeded"
cp "$work/backup.db" "$work/damaged.db"
printf 'X' | dd of="$work/damaged.db" bs=1 seek=100 conv=notrunc 2>/dev/null
output=$("$ours_binary" etcdctl snapshot restore "$work/damaged.db" --data-dir "$work/x" 2>&1) && fail "restore of a damaged snapshot succeeded"
echo "$output" | grep -q "integrity" || fail "damaged snapshot: unexpected answer: $output"
[ -e "$work/x/member/identity" ] && fail "a refused restore left a member directory"

for i in 0 1 2; do
    "$ours_binary" etcdctl snapshot restore "$work/backup.db" --name "b$i" --initial-cluster "$(cluster_of $new b)" \
        --initial-cluster-token b-token --initial-advertise-peer-urls "$(peer $new "$i")" --data-dir "$work/b$i.etcd" \
        >"$work/restore-b$i.log" 2>&1 || { fail "restore b$i failed"; cat "$work/restore-b$i.log"; }
done
output=$("$ours_binary" etcdctl snapshot restore "$work/backup.db" --name b0 --initial-cluster "$(cluster_of $new b)" \
    --initial-cluster-token b-token --initial-advertise-peer-urls "$(peer $new 0)" --data-dir "$work/b0.etcd" 2>&1) &&
    fail "restore over an existing data dir succeeded"
echo "$output" | grep -q "exists" || fail "existing data dir: unexpected answer: $output"
for i in 0 1 2; do start "$new" b "$i"; done
new_endpoints="$(client $new 0),$(client $new 1),$(client $new 2)"
healthy "$new_endpoints" || fail "the restored cluster did not come up"
for i in 0 1 2; do
    ctl --endpoints="$(client $new "$i")" get load/ --prefix -w json --consistency=s | dump_keys >"$work/after-b$i"
    cmp -s "$work/before" "$work/after-b$i" || { fail "b$i differs from the snapshotted cluster"; diff "$work/before" "$work/after-b$i" | head -5; }
done
old_cluster=$(ctl --endpoints="$(client $old 0)" endpoint status -w json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["cluster_id"])')
new_cluster=$(ctl --endpoints="$(client $new 0)" endpoint status -w json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["cluster_id"])')
[ "$old_cluster" != "$new_cluster" ] || fail "the restored cluster kept the old cluster ID"
[ "$(ctl --endpoints="$new_endpoints" member list | grep -c ', started, b')" = 3 ] || fail "the restored cluster does not list b0..b2"
[ "$(ctl --endpoints="$new_endpoints" lease list | tail -n +2 | grep -c .)" = 1 ] || fail "the lease did not survive the restore"
ctl --endpoints="$new_endpoints" put after-restore yes >/dev/null || fail "the restored cluster refuses writes"

# Lose b1 and b2 for good; b0 goes on alone with --force-new-cluster.
kill -9 "${pid[b0]}" "${pid[b1]}" "${pid[b2]}"
unset 'pid[b1]' 'pid[b2]'
sleep 0.5
start "$new" b 0 --force-new-cluster
healthy "$(client $new 0)" || fail "b0 did not come back with --force-new-cluster"
[ "$(ctl --endpoints="$(client $new 0)" member list | wc -l)" = 1 ] || fail "the forced cluster has more than one member"
[ "$(ctl --endpoints="$(client $new 0)" get after-restore --print-value-only)" = yes ] || fail "the forced cluster lost data"
ctl --endpoints="$(client $new 0)" put after-force yes >/dev/null || fail "the forced cluster refuses writes"
ls -d "$work"/b0.etcd/member.before-force-new-cluster.* >/dev/null 2>&1 || fail "the old data was not kept aside"
# And it grows again.
rm -rf "$work/b1.etcd"
output=$(ctl --endpoints="$(client $new 0)" member add b1 --peer-urls="$(peer $new 1)") || fail "member add after force failed: $output"
"$ours_binary" etcd --name b1 --data-dir "$work/b1.etcd" \
    --listen-client-urls "http://$(client $new 1)" --advertise-client-urls "http://$(client $new 1)" \
    --listen-peer-urls "$(peer $new 1)" --initial-advertise-peer-urls "$(peer $new 1)" \
    --initial-cluster "$(echo "$output" | sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p')" --initial-cluster-state existing \
    >>"$work/b1.log" 2>&1 &
pid[b1]=$!
healthy "$(client $new 1)" || fail "b1 did not rejoin"
for _ in $(seq 50); do
    [ "$(ctl --endpoints="$(client $new 1)" get after-force --print-value-only --consistency=s 2>/dev/null)" = yes ] && break
    sleep 0.1
done
[ "$(ctl --endpoints="$(client $new 1)" get after-force --print-value-only --consistency=s)" = yes ] || fail "b1 did not catch up"
if [ "$failed" != 0 ]; then
    for f in "$work"/*.log; do echo "--- $f"; tail -8 "$f"; done
    exit 1
fi
echo "etcd snapshot restore: same keys and revisions in a new cluster; --force-new-cluster keeps the data and grows again"
