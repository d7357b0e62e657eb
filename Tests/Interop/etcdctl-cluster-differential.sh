#!/usr/bin/env bash
# Differential test on three-member clusters: two identical etcd 3.4 clusters (same
# names, URLs and token, so the same member and cluster IDs), each in its own network
# namespace so both can use the same loopback addresses. Debian's etcdctl runs against
# one, ours against the other, v3 and v2 commands; stdout, stderr and exit status must
# match, with only Raft terms, revisions in headers, the answering member (the balancer
# picks one), timestamps and client UUIDs masked.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server etcd-client iproute2
[ "$(id -u)" = 0 ] || die "needs root for network namespaces"

DIFFERENTIAL_TOKEN=cluster-differential REFERENCE_PORT=2379 OUR_PORT=2379
. Tests/Interop/lib/differential.sh
namespaces=("coreos-diff-ref-$$" "coreos-diff-our-$$")
remove_namespaces() {
    cleanup
    for namespace in "${namespaces[@]}"; do ip netns del "$namespace" 2>/dev/null; done
}
trap remove_namespaces EXIT

for namespace in "${namespaces[@]}"; do
    DIFFERENTIAL_ETCD_FLAGS=--enable-v2=true start_namespace_cluster "$namespace" etcd
done
all=$namespace_cluster_endpoints
for namespace in "${namespaces[@]}"; do
    for _ in $(seq 150); do
        ip netns exec "$namespace" env ETCDCTL_API=3 etcdctl --endpoints=$all endpoint health >/dev/null 2>&1 && break
        sleep 0.1
    done
    # The same leader on both sides: m0.
    m0=$(ip netns exec "$namespace" env ETCDCTL_API=3 etcdctl --endpoints=$all member list | awk -F', ' '$3 == "m0" { print $1 }')
    ip netns exec "$namespace" env ETCDCTL_API=3 etcdctl --endpoints=$all move-leader "$m0" >/dev/null 2>&1
done
REFERENCE_PREFIX=(ip netns exec "${namespaces[0]}")
OUR_PREFIX=(ip netns exec "${namespaces[1]}")
REFERENCE_ENDPOINT=$all OUR_ENDPOINT=$all

unordered=(cat)
mask() {
    "${unordered[@]}" | sed -E -e 's/"raft_term":[0-9]+/"raft_term":TERM/g' -e 's/"RaftTerm" : [0-9]+/"RaftTerm" : TERM/' \
        -e 's/"member_id":[0-9]+/"member_id":MEMBER/g' -e 's/"MemberID" : [0-9]+/"MemberID" : MEMBER/' \
        -e 's/client-[0-9a-f-]{36}/client-UUID/g' -e 's/^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+ /TIME /' \
        -e 's/"ts":"[^"]*"/"ts":"TS"/g' -e 's/took = [0-9.]+[µm]?s/took = DURATION/g' \
        -e 's/"revision":[0-9]+/"revision":REV/g' -e 's/"Revision" : [0-9]+/"Revision" : REV/'
}

# v3: the cluster as one, through three endpoints.
case_ put k v
case_ get k -w json
case_ put k2 v2 --prev-kv
case_ del k2
for format in simple json table fields; do case_ member list -w "$format"; done
# Health checks run concurrently and print as they finish: compare the lines sorted.
unordered=(sort)
case_ endpoint health --cluster
unordered=(cat)
case_ endpoint hashkv --cluster
case_ defrag --cluster
case_ alarm list
case_ member remove 1234
case_ txn <<<''
with_input 'value("k") = "v"\n\nput k w\n\nput k x\n' txn
case_ get k
case_ --endpoints=127.0.0.1:2381 get k --consistency=s
case_ lock --help

# v2 on the same clusters.
export ETCDCTL_API=2
REFERENCE_ENDPOINT=http://127.0.0.1:2381 OUR_ENDPOINT=http://127.0.0.1:2381
case_ set /v2/a 1
case_ -o json get /v2/a
case_ ls --sort -r /v2
case_ cluster-health
case_ --no-sync cluster-health
case_ rm -r /v2
unset ETCDCTL_API

# Membership on three members: an unstarted fourth member keeps the quorum (3 of 4).
# etcd refuses reconfiguration until its leader has been connected to a quorum for 5 s.
sleep 5
added=$(mktemp -p "$work")
for side in 0 1; do
    ip netns exec "${namespaces[$side]}" env ETCDCTL_API=3 ETCDCTL_ENDPOINTS=$all \
        "$([ $side = 0 ] && echo etcdctl || echo "$work/etcdctl")" member add m3 --peer-urls=http://127.0.0.1:2386 \
        >"$added.$side" 2>&1
done
# The new member's ID (time-based in etcd) decides where it sorts in the lists: compare
# the words in order-independent form.
# ETCD_INITIAL_CLUSTER loses its quotes and its name goes on a piece of its own, or the
# member that happens to be listed first (by its random ID) would carry them and sort
# differently.
added_words() { sed -E 's/ ?[0-9a-f]{15,16}/ ID/g; s/^ETCD_INITIAL_CLUSTER="(.*)"$/ETCD_INITIAL_CLUSTER=,\1/' "$1" | tr ',' '\n' | sort; }
if cmp -s <(added_words "$added.0") <(added_words "$added.1"); then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "DIFFERS: member add on three members"
    diff "$added.0" "$added.1"
fi
# etcd derives an added member's ID from the time of the request: mask it, and order
# the lines (members are listed by ID).
unstarted_sorted() { sed -E 's/^[0-9a-f]{15,16}\[unstarted\]/MEMBER[unstarted]/' | sort; }
unordered=(unstarted_sorted)
ETCDCTL_API=2 REFERENCE_ENDPOINT=http://127.0.0.1:2379 OUR_ENDPOINT=http://127.0.0.1:2379 case_ member list
unordered=(cat)
for side in 0 1; do
    id=$(ip netns exec "${namespaces[$side]}" env ETCDCTL_API=3 etcdctl --endpoints=$all member list |
        awk -F', ' '$2 == "unstarted" { print $1 }')
    [ -n "$id" ] || { failed=$((failed + 1)); echo "DIFFERS: no unstarted member on side $side"; continue; }
    binary=etcdctl
    [ $side = 1 ] && binary="$work/etcdctl"
    out=$(ip netns exec "${namespaces[$side]}" env ETCDCTL_API=2 ETCDCTL_ENDPOINTS=http://127.0.0.1:2379 "$binary" member remove "$id" 2>&1)
    if [ "$out" = "Removed member $id from cluster" ]; then passed=$((passed + 1)); else
        failed=$((failed + 1))
        echo "DIFFERS: v2 member remove on side $side: $out"
    fi
done
case_ member list -w table

echo "etcdctl cluster differential: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
