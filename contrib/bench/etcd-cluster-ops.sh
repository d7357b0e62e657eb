#!/usr/bin/env bash
# Cluster operations timed, real etcd 3.4 (Debian) next to `coreos etcd` (release build),
# same machine, same load generator (`coreos etcd benchmark`), loopback:
#   catch-up   a one-member cluster holds KEYS keys (256-byte values); a learner is added
#              and started; time until its applied index reaches the leader's
#   failover   a three-member cluster with the default timeouts (100 ms heartbeat, 1 s
#              election); the leader is killed with SIGKILL; time until a remaining member
#              reports a new leader (polled every 20 ms); median of ROUNDS
# Usage: contrib/bench/etcd-cluster-ops.sh [KEYS] [ROUNDS]; prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server etcd-client python3-etcd3
keys="${1:-1000000}"
rounds="${2:-5}"
build_release >/dev/null
coreos="$(pwd)/$(release_binary)"
work="$(mktemp -d)"
declare -A pid=()
stop_all() {
    for name in "${!pid[@]}"; do kill -9 "${pid[$name]}" 2>/dev/null || true; wait "${pid[$name]}" 2>/dev/null || true; done
    pid=()
}
trap 'stop_all; rm -rf "$work"' EXIT
ctl() { ETCDCTL_API=3 etcdctl --command-timeout=5s "$@"; }
now() { date +%s.%N; }

start_member() { # SERVER NAME INDEX CLUSTER STATE [FLAGS...]
    local server=$1 name=$2 index=$3 cluster=$4 state=$5 command=(etcd)
    shift 5
    [ "$server" = coreos ] && command=("$coreos" etcd)
    "${command[@]}" --name "$name" --data-dir "$work/$server-$name.etcd" \
        --listen-client-urls "http://127.0.0.1:$((25700 + 2 * index))" --advertise-client-urls "http://127.0.0.1:$((25700 + 2 * index))" \
        --listen-peer-urls "http://127.0.0.1:$((25701 + 2 * index))" --initial-advertise-peer-urls "http://127.0.0.1:$((25701 + 2 * index))" \
        --initial-cluster "$cluster" --initial-cluster-state "$state" --quota-backend-bytes 8589934592 "$@" \
        >>"$work/$server-$name.log" 2>&1 &
    pid[$name]=$!
}
wait_healthy() { for _ in $(seq 300); do ctl --endpoints="$1" --command-timeout=1s endpoint health >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }
status_field() { # ENDPOINT FIELD (as etcdctl -w json names it: raftIndex, leader)
    ctl --endpoints="$1" --command-timeout=1s endpoint status -w json 2>/dev/null |
        /usr/bin/python3 -c "import json,sys; s=json.load(sys.stdin)[0]['Status']; print(s.get('$2', 0))" 2>/dev/null || echo 0
}

catch_up() { # SERVER -> seconds
    local server=$1
    start_member "$server" c0 0 "c0=http://127.0.0.1:25701" new
    wait_healthy 127.0.0.1:25700
    "$coreos" etcd benchmark put --endpoints 127.0.0.1:25700 --conns 8 --clients 64 --total "$keys" --key-space-size "$keys" \
        --sequential-keys --key-size 16 --val-size 256 >/dev/null
    local output cluster target start applied
    output=$(ctl --endpoints=127.0.0.1:25700 member add c1 --learner --peer-urls=http://127.0.0.1:25703)
    cluster=$(echo "$output" | sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p')
    target=$(status_field 127.0.0.1:25700 raftIndex)
    [ "${target:-0}" -gt "$keys" ] || { echo "cannot read the leader's raft index" >&2; exit 1; }
    start=$(now)
    start_member "$server" c1 1 "$cluster" existing
    while :; do
        applied=$(status_field 127.0.0.1:25702 raftIndex)
        [ "${applied:-0}" -ge "$target" ] && break
        sleep 0.05
    done
    echo "$(now) - $start" | bc
    stop_all
}

failover() { # SERVER -> median seconds
    local server=$1 cluster="f0=http://127.0.0.1:25701,f1=http://127.0.0.1:25703,f2=http://127.0.0.1:25705" times=() round
    for round in $(seq "$rounds"); do
        rm -rf "$work/$server"-f*.etcd
        for i in 0 1 2; do start_member "$server" "f$i" "$i" "$cluster" new; done
        wait_healthy 127.0.0.1:25700,127.0.0.1:25702,127.0.0.1:25704
        sleep 1
        local leader="" i id old_leader_id
        old_leader_id=$(status_field 127.0.0.1:25700 leader)
        for i in 0 1 2; do
            id=$(ctl --endpoints="127.0.0.1:$((25700 + 2 * i))" endpoint status -w json |
                /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["member_id"])')
            [ "$id" = "$old_leader_id" ] && leader=$i
        done
        local start
        start=$(now)
        kill -9 "${pid[f$leader]}"
        local found=""
        while [ -z "$found" ]; do
            for i in 0 1 2; do
                [ "$i" = "$leader" ] && continue
                id=$(status_field "127.0.0.1:$((25700 + 2 * i))" leader)
                [ -n "$id" ] && [ "$id" != 0 ] && [ "$id" != "$old_leader_id" ] && found=1
            done
            [ -z "$found" ] && sleep 0.02
        done
        times+=("$(echo "$(now) - $start" | bc)")
        stop_all
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

echo "| | etcd 3.4 | coreos etcd |"
echo "|---|---|---|"
etcd_catch=$(catch_up etcd)
ours_catch=$(catch_up coreos)
printf '| learner catch-up, %s keys (s) | %.2f | %.2f |\n' "$keys" "$etcd_catch" "$ours_catch"
etcd_failover=$(failover etcd)
ours_failover=$(failover coreos)
printf '| leader kill to new leader, median of %s (s) | %.2f | %.2f |\n' "$rounds" "$etcd_failover" "$ours_failover"
