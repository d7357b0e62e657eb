#!/usr/bin/env bash
# The Maintenance service of a three-member `coreos etcd` cluster through Debian's
# etcdctl 3.4: hashkv equal on every member (and different after a write), defragment
# shrinking the member's database size, move-leader handing over, snapshot save accepted by
# etcd's etcdctl and read back by ours (revision and key count), damaged files refused.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-client
ours_binary="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
work="$(mktemp -d)"
pids=()
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done; rm -rf "$work"' EXIT
cluster="a=http://127.0.0.1:24852,b=http://127.0.0.1:24854,c=http://127.0.0.1:24856"
for index in 1 2 3; do
    name=$(echo abc | cut -c"$index")
    port=$((24849 + 2 * index))
    "$ours_binary" etcd --name "$name" --data-dir "$work/$name.etcd" --initial-cluster "$cluster" \
        --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
        --listen-peer-urls "http://127.0.0.1:$((port + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
        >"$work/$name.log" 2>&1 &
    pids+=($!)
done
all=127.0.0.1:24851,127.0.0.1:24853,127.0.0.1:24855
ctl() { ETCDCTL_API=3 etcdctl --endpoints="$all" "$@"; }
for _ in $(seq 100); do ctl endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
failed=0
expect() { if [ "$2" != "$3" ]; then echo "FAIL $1: want [$2], got [$3]"; failed=1; fi; }

# A member with no history yet still answers a non-zero hash (etcd's starts from its bucket name).
expect "hashkv of an empty store" "" "$(ctl endpoint hashkv | awk '$2 == "0," || $2 == "0" { print }')"
for index in $(seq 200); do ctl put "key$index" "value$index" >/dev/null; done
ctl del key7 >/dev/null
sleep 0.5
hashes=$(ctl endpoint hashkv | awk '{ print $2 }' | sort -u)
expect "one hashkv across members" 1 "$(echo "$hashes" | wc -l)"
old=$(ctl endpoint hashkv --rev 100 | awk '{ print $2 }' | sort -u)
expect "one hashkv at revision 100" 1 "$(echo "$old" | wc -l)"
ctl put key1 changed >/dev/null
sleep 0.3
expect "hashkv at revision 100 unchanged by a later write" "$old" "$(ctl endpoint hashkv --rev 100 | awk '{ print $2 }' | sort -u)"
[ "$(ctl endpoint hashkv | awk '{ print $2 }' | sort -u)" != "$hashes" ] || { echo "FAIL hashkv did not change after a write"; failed=1; }
expect "hashkv of a future revision" "Error: etcdserver: mvcc: required revision is a future revision" \
    "$(ctl endpoint hashkv --rev 99999 2>&1 | tail -1)"

# The size the member reports (etcd: its database file; ours: the log's records and the
# snapshots; WAL segments are allocated ahead, so the files' sizes would not tell).
db_size() { ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:24851 endpoint status -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["dbSize"])'; }
before=$(db_size)
expect "defragment" "Finished defragmenting etcd member[127.0.0.1:24851]" "$(ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:24851 defrag)"
after=$(db_size)
[ "$after" -lt "$before" ] || { echo "FAIL defragment did not shrink the member's database size ($before -> $after)"; failed=1; }

leader=$(ctl endpoint status -w json | python3 -c 'import json,sys; print(hex(json.load(sys.stdin)[0]["Status"]["leader"])[2:])')
target=$(ctl member list | awk -F', ' -v leader="$leader" '$1 != leader { print $1; exit }')
expect "move-leader" "Leadership transferred from $leader to $target" "$(ctl move-leader "$target")"
now=$(ctl endpoint status -w json | python3 -c 'import json,sys; print(hex(json.load(sys.stdin)[0]["Status"]["leader"])[2:])')
expect "leader after move" "$target" "$now"

expect "snapshot save (etcd's etcdctl)" "Snapshot saved at $work/snap.db" \
    "$(ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:24853 snapshot save "$work/snap.db" 2>/dev/null)"
revision=$(ctl get key1 -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
expect "snapshot status (ours)" "$revision 202" "$("$ours_binary" etcdctl snapshot status "$work/snap.db" -w json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["revision"], s["totalKey"])')"
head -c 1000 "$work/snap.db" >"$work/short.db"
"$ours_binary" etcdctl snapshot status "$work/short.db" >/dev/null 2>&1 && { echo "FAIL a truncated snapshot was accepted"; failed=1; }
[ "$failed" = 0 ] && echo "etcd server maintenance: hashkv, defragment, move-leader, snapshot save/status"
exit "$failed"
