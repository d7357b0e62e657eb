#!/usr/bin/env bash
# Our server against real etcd 3.4, through Debian's etcdctl. With one member (default):
# an etcd 3.4 member and a `coreos etcd` member with the same name, peer URL and token
# (so the same member and cluster IDs, which we compute as etcd does). With `--members 3`:
# two three-member clusters with the same names, URLs and token, each in its own network
# namespace so both use the same loopback addresses, and commands go through all three
# endpoints. Both receive the same commands; stdout, stderr and exit status must match,
# with only Raft terms, timestamps, client UUIDs (and, with three members, the answering
# member) masked.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server etcd-client iproute2
members=1
[ "${1:-}" = --members ] && members="${2:-}"
[ "$members" = 1 ] || [ "$members" = 3 ] || die "usage: $0 [--members 1|3]"

wait_for() { # PREFIX... -- ENDPOINTS
    local endpoints="${*: -1}"
    for _ in $(seq 150); do
        "${@:1:$#-2}" env ETCDCTL_API=3 etcdctl --endpoints="$endpoints" endpoint health >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "cluster at $endpoints did not become healthy"
}

member_mask=(cat)
REFERENCE_PREFIX_BASE=()
OUR_PREFIX_BASE=()
if [ "$members" = 1 ]; then
    DIFFERENTIAL_TOKEN=etcd-cluster REFERENCE_PORT=24579 OUR_PORT=24581
    . Tests/Interop/lib/differential.sh
    OUR_ETCDCTL=$(command -v etcdctl)
    etcd --name default --data-dir "$work/reference.etcd" \
        --listen-client-urls "http://127.0.0.1:$REFERENCE_PORT" --advertise-client-urls "http://127.0.0.1:$REFERENCE_PORT" \
        --listen-peer-urls "http://127.0.0.1:$((REFERENCE_PORT + 1))" >"$work/reference.log" 2>&1 &
    pids+=($!)
    "$ours_binary" etcd --data-dir "$work/ours.etcd" --listen-client-urls "http://127.0.0.1:$OUR_PORT" \
        --advertise-client-urls "http://127.0.0.1:$OUR_PORT" >"$work/ours.log" 2>&1 &
    pids+=($!)
    wait_for -- "127.0.0.1:$REFERENCE_PORT"
    wait_for -- "127.0.0.1:$OUR_PORT"
else
    [ "$(id -u)" = 0 ] || die "needs root for network namespaces"
    DIFFERENTIAL_TOKEN=server-differential REFERENCE_PORT=2379 OUR_PORT=2379
    . Tests/Interop/lib/differential.sh
    OUR_ETCDCTL=$(command -v etcdctl)
    namespaces=("coreos-sdiff-ref-$$" "coreos-sdiff-our-$$")
    remove_namespaces() {
        cleanup
        for namespace in "${namespaces[@]}"; do ip netns del "$namespace" 2>/dev/null; done
    }
    trap remove_namespaces EXIT
    start_namespace_cluster "${namespaces[0]}" etcd
    start_namespace_cluster "${namespaces[1]}" "$ours_binary" etcd
    all=$namespace_cluster_endpoints
    wait_for ip netns exec "${namespaces[0]}" -- "$all"
    wait_for ip netns exec "${namespaces[1]}" -- "$all"
    REFERENCE_PREFIX_BASE=(ip netns exec "${namespaces[0]}")
    OUR_PREFIX_BASE=(ip netns exec "${namespaces[1]}")
    REFERENCE_ENDPOINT=$all OUR_ENDPOINT=$all
    member_mask=(sed -E -e 's/"member_id":[0-9]+/"member_id":MEMBER/g' -e 's/"MemberID" : [0-9]+/"MemberID" : MEMBER/'
        -e 's/^127\.0\.0\.1:238[13] is healthy/127.0.0.1:2379 is healthy/')
fi
REFERENCE_PREFIX=("${REFERENCE_PREFIX_BASE[@]}")
OUR_PREFIX=("${OUR_PREFIX_BASE[@]}")

mask() {
    "${member_mask[@]}" | sed -E -e 's/"raft_term":[0-9]+/"raft_term":TERM/g' -e 's/"RaftTerm" : [0-9]+/"RaftTerm" : TERM/' \
        -e 's/"ts":"[^"]*"/"ts":"TS"/g' -e 's/client-[0-9a-f-]{36}/client-UUID/g' -e 's/took = [0-9.]+[µm]?s/took = DURATION/g' \
        -e 's/lease [0-9a-f]{16}/lease LEASE/g' -e 's/"ID":[0-9]+/"ID":LEASE/g' -e 's/^[0-9a-f]{16}$/LEASE/' \
        -e 's/127\.0\.0\.1:2458[01]/127.0.0.1:PORT/g' -e 's/127\.0\.0\.1:2457[89]/127.0.0.1:PORT/g'
}

case_ put foo bar
case_ put foo bar2 --prev-kv
case_ put foo2 x -w json
case_ put foo3 'with space' -w fields
case_ get foo
# (protobuf is left out: the Raft term inside it cannot be masked.)
for format in simple json fields; do case_ get foo -w "$format"; done
case_ get --prefix foo
case_ get --prefix foo --keys-only
case_ get --prefix foo --limit 1 -w json
case_ get --prefix foo --count-only -w json
case_ get foo --rev=2
case_ get foo --rev=99
case_ get --from-key a
case_ get --prefix foo --sort-by=VALUE --order=DESCEND
case_ get --prefix foo --sort-by=create --order=ascend -w json
case_ get --prefix foo --sort-by=MODIFY
case_ get foo --consistency=s
case_ get missing -w json
case_ del foo2 --prev-kv -w json
case_ del --prefix nothing
case_ put '' empty
case_ put --ignore-value missing-key
case_ put --lease=1234 leased x
with_input 'value("foo") = "bar2"\n\nput t1 yes\nget foo\n\nput t1 no\n\n' txn -w json
with_input 'version("nope") = "0"\n\nput t2 a\ndel foo3\n\n\n' txn
with_input 'mod("foo") > "1"\n\nput t3 a\nput t3 b\n\n\n' txn
with_input 'value("foo") = "other"\n\n\nget foo --prefix\n\n' txn -w json
# Watches from the past replay history, then wait: both sides are stopped after 2 s.
REFERENCE_PREFIX=("${REFERENCE_PREFIX_BASE[@]}" timeout 2)
OUR_PREFIX=("${OUR_PREFIX_BASE[@]}" timeout 2)
case_ watch --prefix foo --rev=1
case_ watch --prefix '' --rev=1 --prev-kv
case_ watch foo --rev=2 -w json
case_ watch t --prefix --rev=5 -w fields
case_ compaction 3
case_ compaction 3
case_ watch foo --rev=2
REFERENCE_PREFIX=("${REFERENCE_PREFIX_BASE[@]}")
OUR_PREFIX=("${OUR_PREFIX_BASE[@]}")
case_ compaction 999
case_ get foo --rev=2
case_ get foo --rev=3 -w json
case_ get --prefix '' -w json

# Limits: a value just over --max-request-bytes, one over the gRPC limit (refused by
# etcdctl itself), too many and duplicate txn operations, a value right under the limit.
head -c 1600000 /dev/zero | tr '\0' a >"$work/over-limit"
head -c 1500000 /dev/zero | tr '\0' b >"$work/under-limit"
head -c 3000000 /dev/zero | tr '\0' c >"$work/over-grpc-limit"
run_case "$work/over-limit" put big
run_case "$work/over-grpc-limit" put big
run_case "$work/under-limit" put big
case_ get big --print-value-only -w json --keys-only
{ echo; for index in $(seq 129); do echo "put many$index x"; done; echo; echo; } >"$work/txn-129"
run_case "$work/txn-129" txn
{ echo; for index in $(seq 128); do echo "put many$index x"; done; echo; echo; } >"$work/txn-128"
run_case "$work/txn-128" txn -w json
with_input '\nput dup 1\nput dup 2\n\n\n' txn
with_input '\nput dup 1\ndel dup\n\n\n' txn
with_input '\nput dup1 1\ndel dup --prefix\n\n\n' txn
case_ get z a
case_ del z a

# Leases (IDs are chosen by each server, so masked; attaching keys needs the ID and is
# covered by the client tests).
case_ lease grant 60
case_ lease grant 1 -w json
case_ lease list
case_ lease revoke 1234
case_ lease timetolive 1234
case_ lease keep-alive --once 1234
case_ put --lease=1234 k v

# Cluster and Maintenance.
for format in simple json table fields; do case_ member list -w "$format"; done
case_ alarm list
case_ endpoint health

echo "etcd server differential ($members member(s)): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
