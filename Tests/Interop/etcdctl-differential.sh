#!/usr/bin/env bash
# Differential test: Debian's etcdctl 3.4 and our `etcdctl` applet run the same commands
# against two identical single-member etcd 3.4 clusters (same name, advertised peer URL and
# token, so the same cluster and member IDs and, command after command, the same revisions).
# stdout, stderr and exit status must match; only timestamps, client UUIDs, durations and
# lease IDs (random per server) are masked.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server etcd-client

DIFFERENTIAL_TOKEN=differential REFERENCE_PORT=24379 OUR_PORT=24381
. Tests/Interop/lib/differential.sh
start_twins

mask() {
    sed -E -e 's/"ts":"[^"]*"/"ts":"TS"/g' -e 's/client-[0-9a-f-]{36}/client-UUID/g' \
        -e 's/took = [0-9.]+[µm]?s/took = DURATION/g' -e 's/^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+ /TIME /' \
        -e 's/lease [0-9a-f]{16}/lease LEASE/g' -e 's/"ID":[0-9]+/"ID":LEASE/g' -e 's/^[0-9a-f]{16}$/LEASE/' \
        -e 's/"lease":[0-9]+/"lease":LEASE/g' -e 's/"id":[0-9]+/"id":LEASE/g' \
        -e 's/"dbSize":[0-9]+/"dbSize":SIZE/g' -e 's/"DBSize" : [0-9]+/"DBSize" : SIZE/' -e 's/[0-9.]+ kB/SIZE/g' -e 's/"Lease" : [1-9][0-9]*/"Lease" : LEASE/' \
        -e 's/"ID" : [0-9]+/"ID" : LEASE/' -e 's/127\.0\.0\.1:2438[12]/127.0.0.1:PORT/g' \
        -e 's/127\.0\.0\.1:2437[89]/127.0.0.1:PORT/g' -e 's/127\.0\.0\.1:24380/127.0.0.1:PORT/g' \
        -e 's/Member [0-9a-f ]{16} added/Member MEMBER added/' -e 's/"ts":[0-9.e+]+/"ts":TS/g' -e 's/"took":[0-9.e+-]+/"took":TOOK/g' -e 's/"size":"[0-9.]+ [kMG]?B"/"size":"SIZE"/g'
}

# KV
case_ put foo bar
case_ put foo bar2 --prev-kv
case_ put foo2 x -w json
case_ put foo3 'with space' -w fields
case_ get foo
case_ get foo -w json
case_ get foo -w fields
case_ get foo -w protobuf
case_ get --prefix foo
case_ get --prefix foo --keys-only
case_ get --prefix foo --limit 1 -w json
case_ get foo --rev=2
case_ get --from-key a
case_ get --prefix ''
case_ get --prefix foo --sort-by=VALUE --order=DESCEND
case_ get --prefix foo --sort-by=create --order=ascend -w json
case_ get --prefix foo --sort-by=KEY --order=ASCEND
case_ get foo --print-value-only
case_ get foo --print-value-only -w json
case_ get foo --consistency=s
case_ get foo --consistency=x
case_ get foo --order=x
case_ get foo --sort-by=x
case_ get foo --hex
case_ get foo --hex -w fields
case_ get missing
case_ get missing -w json
case_ get foo fop
case_ del foo2 --prev-kv
case_ del foo2 --prev-kv -w json
case_ del --prefix nothing
case_ del a b --prefix
case_ del a --prefix --from-key
case_ del
case_ get
case_ get a b --from-key
case_ put
case_ put a
case_ put --ignore-value a b
case_ put a b --lease=zz
case_ put a b --lease=123abc
with_input 'value from stdin' put fromstdin
case_ get fromstdin
head -c 2000000 /dev/zero | tr '\0' 'x' >"$work/big"
run_case "$work/big" put big
# Transactions
with_input 'value("foo") = "bar2"\n\nput foo x\nget foo\n\nput foo y\n\n' txn
with_input 'value("foo") = "nope"\n\nput foo x\n\nput foo y\ndel foo3 --prev-kv\n\n' txn -w json
with_input 'mod("foo") > "0"\nversion("foo") != "100"\ncreate("foo") < "100000"\n\nget foo --prefix\n\n\n' txn -w fields
with_input 'value("foo") = "x"\n' txn
with_input 'valu("foo") = "x"\n\n\n\n' txn
with_input 'mod("foo") > "x"\n\n\n\n' txn
with_input 'value("foo") = "y"\n\nbogus x\n\n\n' txn
with_input '\n\n\n' txn
with_input '\n\nput a\n\n\n' txn
# History
case_ compaction 3
case_ compaction x
case_ compaction
case_ get foo --rev=2
case_ get foo --rev=100
# Cluster and maintenance
for format in simple json fields table; do
    case_ member list -w $format
    case_ endpoint status -w $format
    case_ endpoint hashkv -w $format
done
case_ endpoint health
case_ endpoint health --cluster
case_ endpoint status --cluster
case_ alarm list
case_ member remove zz
case_ member remove
case_ member add
case_ member add x
case_ member update 1
twin_id=$(ETCDCTL_ENDPOINTS=127.0.0.1:24379 etcdctl member list | cut -d, -f1)
case_ member update "$twin_id" --peer-urls=http://127.0.0.1:2380
case_ member update "$twin_id" --peer-urls=http://127.0.0.1:2380 -w json
case_ member promote "$twin_id"
case_ member remove 1234
# A learner can be added to a one-member cluster without touching its quorum; its ID is random.
case_ member add learner --learner --peer-urls=http://127.0.0.1:9999
for endpoint in 127.0.0.1:24379 127.0.0.1:24381; do
    ETCDCTL_ENDPOINTS=$endpoint etcdctl member list | awk -F', ' '$2 == "unstarted" { print $1 }' |
        xargs -r -n1 env ETCDCTL_ENDPOINTS=$endpoint etcdctl member remove >/dev/null
done
case_ move-leader "$twin_id"
case_ move-leader 1234
case_ alarm disarm
case_ defrag
case_ defrag --cluster
# Snapshots: our file must be one Debian's etcdctl can read.
case_ snapshot save "$work/snapshot-\$"
case_ snapshot save
case_ snapshot save /nonexistent/dir/x.db
REFERENCE_ENDPOINT= OUR_ENDPOINT= case_ --endpoints=127.0.0.1:1,127.0.0.1:2 snapshot save "$work/never.db"
ETCDCTL_ENDPOINTS=127.0.0.1:24381 "$work/etcdctl" snapshot save "$work/ours.db" >/dev/null 2>&1
if [ "${DIFFERENTIAL_SERVER:-etcd}" = coreos ]; then
    skipped=$((skipped + 1))
elif etcdctl snapshot status "$work/ours.db" -w json >"$work/status.json" 2>&1 && grep -q '"totalKey"' "$work/status.json"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "DIFFERS: Debian's etcdctl cannot read our snapshot: $(cat "$work/status.json")"
fi
# snapshot status reads the file offline: the same file for both, and damaged copies.
for format in simple json table fields protobuf; do case_ snapshot status "$work/ours.db" -w "$format"; done
head -c 1000 "$work/ours.db" >"$work/short.db"
case_ snapshot status "$work/short.db"
head -c 5000 "$work/ours.db" >"$work/short.db"
case_ snapshot status "$work/short.db"
case_ snapshot status "$work/missing.db"
case_ snapshot status
case_ snapshot status a b
cp "$work/ours.db" "$work/nometa.db"
printf '\xff' | dd of="$work/nometa.db" bs=1 seek=16 conv=notrunc 2>/dev/null
printf '\xff' | dd of="$work/nometa.db" bs=1 seek=4112 conv=notrunc 2>/dev/null
case_ snapshot status "$work/nometa.db"
with_input 'watch foo\n' watch -i
with_input 'bogus\nwatch\n\nwatch --prefix foo\n' watch -i
# Leases (IDs are masked: servers pick them)
case_ lease grant
case_ lease grant x
case_ lease grant 100
case_ lease grant 100 -w json
case_ lease revoke 1234
case_ lease revoke zz
case_ lease timetolive 1234
case_ lease timetolive 1234 -w json
case_ lease keep-alive --once 1234
case_ lease list -w json
# Usage errors
case_ get --bogus
case_ get foo --limit=x
case_ get foo -w bogus
case_ bogus
case_ version
case_ get --help
case_ help put
case_ lease grant --help
case_ member list --help
case_ txn -h
case_ --endpoints=127.0.0.1:24379 get foo
REFERENCE_ENDPOINT= OUR_ENDPOINT= case_ --command-timeout=1s --endpoints=127.0.0.1:1 get foo
REFERENCE_ENDPOINT= OUR_ENDPOINT= case_ --command-timeout=1s --endpoints=127.0.0.1:1 endpoint status

# Authentication, last: it changes what every later call needs.
case_ user add root:rootpw
case_ user add root:again
case_ user add ':nobody'
case_ user add alice --new-user-password=wonder
case_ user add bob --no-password
case_ user add
case_ role add reader
case_ role add reader
case_ role grant-permission reader read app --prefix
case_ role grant-permission reader readwrite a z
case_ role grant-permission reader write k1
case_ role grant-permission reader readwrite from --from-key
case_ role grant-permission reader bogus k1
case_ role grant-permission reader read
case_ role get reader
case_ role get reader -w json
case_ role get nobody
case_ role list
case_ user grant-role alice reader
case_ user grant-role alice nobody
case_ user get alice
case_ user get alice --detail
case_ user get alice -w json
case_ user list
case_ role revoke-permission reader k1
case_ role revoke-permission reader a z
case_ role revoke-permission reader from --from-key
case_ role revoke-permission reader nothing
case_ user revoke-role alice reader
case_ auth enable
case_ get foo
case_ --user=root:wrong get foo
case_ --user=root:rootpw get foo
case_ --user=alice:wonder put foo denied
case_ --user=root:rootpw user delete bob
case_ --user=root:rootpw auth disable
case_ user delete alice
case_ role delete reader
case_ role delete reader
case_ user list

# Recipes (on the reference cluster only, so they run after the paired cases): the lock key layout is etcd's, so our `etcdctl lock` and Debian's exclude each
# other: three holders of each kind append start/end lines that must never interleave.
journal="$work/lock-journal"
: >"$journal"
holders=()
for i in 1 2 3; do
    for tool in etcdctl "$work/etcdctl"; do
        ETCDCTL_ENDPOINTS=127.0.0.1:24379 "$tool" lock exclusion -- \
            sh -c "echo start $i $tool >>'$journal'; sleep 0.2; echo end $i $tool >>'$journal'" >/dev/null &
        holders+=($!)
    done
done
for holder in "${holders[@]}"; do wait "$holder"; done
if [ "$(wc -l <"$journal")" -eq 12 ] && paste - - <"$journal" | awk '{ if ($1 != "start" || $4 != "end" || $2 != $5 || $3 != $6) bad = 1 } END { exit bad }'; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "DIFFERS: lock exclusion between etcdctl and ours:"
    cat "$journal"
fi
# A lock held by ours and interrupted is released: the key is gone.
ETCDCTL_ENDPOINTS=127.0.0.1:24379 "$work/etcdctl" lock held >"$work/held.out" &
holder=$!
sleep 1
kill -INT "$holder"
wait "$holder"
if grep -q '^held/' "$work/held.out" && [ -z "$(ETCDCTL_ENDPOINTS=127.0.0.1:24379 etcdctl get --prefix held/ --keys-only)" ]; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "DIFFERS: interrupted lock was not released"
fi
# Elections: a leader campaigned by ours is seen by Debian's observer.
ETCDCTL_ENDPOINTS=127.0.0.1:24379 "$work/etcdctl" elect chosen alpha >/dev/null &
candidate=$!
sleep 1
observed=$(ETCDCTL_ENDPOINTS=127.0.0.1:24379 timeout 2 etcdctl elect -l chosen)
kill -INT "$candidate"
wait "$candidate"
if [ "$(echo "$observed" | sed -n 2p)" = alpha ]; then passed=$((passed + 1)); else
    failed=$((failed + 1))
    echo "DIFFERS: election leader not observed: $observed"
fi

# make-mirror: ours copies a prefix of the reference cluster into ours, then follows changes.
case_ make-mirror
case_ make-mirror --prefix=a --dest-prefix=b --no-dest-prefix 127.0.0.1:24381
ETCDCTL_ENDPOINTS=127.0.0.1:24379 etcdctl put mirror/a 1 >/dev/null
ETCDCTL_ENDPOINTS=127.0.0.1:24379 etcdctl put mirror/b 2 >/dev/null
ETCDCTL_ENDPOINTS=127.0.0.1:24379 "$work/etcdctl" make-mirror --prefix=mirror/ --dest-prefix=copy/ 127.0.0.1:24381 >/dev/null 2>&1 &
mirror=$!
sleep 1
ETCDCTL_ENDPOINTS=127.0.0.1:24379 etcdctl put mirror/c 3 >/dev/null
ETCDCTL_ENDPOINTS=127.0.0.1:24379 etcdctl del mirror/a >/dev/null
sleep 1
kill "$mirror"
wait "$mirror" 2>/dev/null
copied=$(ETCDCTL_ENDPOINTS=127.0.0.1:24381 etcdctl get --prefix copy/ | tr '\n' ' ')
if [ "$copied" = "copy/b 2 copy/c 3 " ]; then passed=$((passed + 1)); else
    failed=$((failed + 1))
    echo "DIFFERS: make-mirror copied: $copied"
fi

echo "etcdctl differential${DIFFERENTIAL_SERVER:+ on $DIFFERENTIAL_SERVER}: $passed passed, $failed failed${skipped:+, $skipped skipped}"
[ "$failed" -eq 0 ]
