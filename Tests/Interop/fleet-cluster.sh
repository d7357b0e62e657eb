#!/usr/bin/env bash
# Multi-machine fleet test: four `coreos fleet` machines (two role=core, two role=worker,
# distinct machine IDs) on a three-member etcd cluster, run twice: on `coreos etcd` and on
# Debian's etcd 3.4. Units with every [X-Fleet] option must land where fleet's rules put
# them; a killed machine's units must move after the grace period and not before; an
# etcd leader change (move-leader, then a killed and restarted leader) must move nothing.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
. Tests/Interop/lib/checks.sh
ensure_apt_packages etcd-server etcd-client
ours_binary="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
root="$(mktemp -d)"
declare -A pid=()
cleanup() {
    for name in "${!pid[@]}"; do kill "${pid[$name]}" 2>/dev/null; done
    sleep 0.5
    for name in "${!pid[@]}"; do kill -9 "${pid[$name]}" 2>/dev/null; done
    wait 2>/dev/null || true
    # Units of killed machines (SIGKILL leaves their processes, as systemd's would stay).
    pkill -f "fleet-cluster-test-unit" 2>/dev/null
    [ -n "${KEEP:-}" ] && { echo "kept $root"; return; }
    rm -rf "$root"
}
trap cleanup EXIT

grace=8 ttl=3
machines=(m1 m2 m3 m4)
declare -A id=([m1]=11111111aaaaaaaaaaaaaaaaaaaaaaaa [m2]=22222222aaaaaaaaaaaaaaaaaaaaaaaa
    [m3]=33333333aaaaaaaaaaaaaaaaaaaaaaaa [m4]=44444444aaaaaaaaaaaaaaaaaaaaaaaa)
declare -A role=([m1]=core [m2]=core [m3]=worker [m4]=worker)

start_etcd() { # BACKEND MEMBER
    local backend=$1 member=$2 n=${2#e}
    local client=$((base + n * 2)) peer=$((base + n * 2 + 1))
    local binary=(etcd)
    [ "$backend" = ours ] && binary=("$ours_binary" etcd)
    "${binary[@]}" --name "$member" --data-dir "$work/$member.etcd" \
        --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
        --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "$cluster" --initial-cluster-token "fleet-$backend" >>"$work/$member.log" 2>&1 &
    pid[$backend-$member]=$!
}
start_fleet() { # MACHINE
    local m=$1
    "$ours_binary" fleet --machine-id "${id[$m]}" --etcd_servers "$endpoints" --metadata "role=${role[$m]},name=$m" \
        --public_ip "10.9.0.${m#m}" --listen "unix://$work/$m.sock" --agent_ttl "${ttl}s" --machine_grace "${grace}s" \
        --engine_reconcile_interval 1 --log_directory "$work/logs" --runtime_directory "$work/run" >>"$work/$m.fleet.log" 2>&1 &
    pid[fleet-$m]=$!
}
fleetctl() { "$ours_binary" fleetctl --endpoint "unix://$work/m1.sock" "$@"; }
# unit -> machine name (m1..m4) from list-units, one "unit machine" per line.
placement() {
    fleetctl list-units --no-legend --full --fields unit,machine | while read -r unit machine; do
        for m in "${machines[@]}"; do [ "${machine%%/*}" = "${id[$m]}" ] && echo "$unit $m"; done
    done | sort
}
machine_of() { placement | awk -v u="$1" '$1 == u { print $2 }' | head -1; }
wait_until() { # SECONDS 'SHELL CONDITION': evaluated afresh every 0.2 s
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt "$deadline" ]; do eval "$2" && return 0; sleep 0.2; done
    return 1
}
unit() { # NAME [X-Fleet lines...]
    local name=$1
    shift
    {
        printf '[Unit]\nDescription=%s\n\n[Service]\nExecStart=/bin/bash -c "exec -a fleet-cluster-test-unit sleep 100000"\n' "$name"
        if [ $# -gt 0 ]; then printf '\n[X-Fleet]\n'; printf '%s\n' "$@"; fi
    } >"$work/units/$name"
}
etcd_leader() { # prints the member name of the etcd leader
    local n
    for n in 1 2 3; do
        if ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$((base + n * 2))" endpoint status -w json 2>/dev/null |
            python3 -c 'import json,sys; s=json.load(sys.stdin)[0]["Status"]; sys.exit(0 if s.get("leader") and s["leader"]==s["header"]["member_id"] else 1)'; then
            echo "e$n"
            return
        fi
    done
}

scenario() { # BACKEND BASE-PORT
    local backend=$1
    base=$2
    work="$root/$backend"
    mkdir -p "$work/units"
    cluster="e1=http://127.0.0.1:$((base + 3)),e2=http://127.0.0.1:$((base + 5)),e3=http://127.0.0.1:$((base + 7))"
    endpoints="http://127.0.0.1:$((base + 2)),http://127.0.0.1:$((base + 4)),http://127.0.0.1:$((base + 6))"
    for member in e1 e2 e3; do start_etcd "$backend" "$member"; done
    wait_until 30 'test -n "$(etcd_leader)"' || die "$backend: no etcd leader"
    for m in "${machines[@]}"; do start_fleet "$m"; done
    wait_until 30 'test "$(fleetctl list-machines --no-legend 2>/dev/null | wc -l)" = 4'
    check "$backend: four machines register" 0 test "$(fleetctl list-machines --no-legend | wc -l)" = 4
    check "$backend: list-machines shows metadata" 0 grep -q "name=m3,role=worker" <(fleetctl list-machines --no-legend)

    unit worker.service "MachineMetadata=role=worker"
    unit pinned.service "MachineID=${id[m2]}"
    unit follower.service "MachineOf=pinned.service"
    unit either.service "MachineMetadata=name=m1" "MachineMetadata=name=m4"
    unit both.service "MachineMetadata=role=core" "MachineMetadata=name=m2"
    unit apart-a.service "Conflicts=apart-b.service"
    unit apart-b.service
    unit everywhere-core.service "Global=true" "MachineMetadata=role=core"
    unit spread@.service "Conflicts=spread@*.service"
    unit bad.service "MachineOfTypo=x.service"
    ( cd "$work/units" && check "$backend: start with every [X-Fleet] option" 0 "$ours_binary" fleetctl --endpoint "unix://$work/m1.sock" \
        start worker.service pinned.service follower.service either.service both.service apart-a.service apart-b.service \
        spread@1.service spread@2.service spread@3.service spread@4.service everywhere-core.service )
    check "$backend: an unknown [X-Fleet] key is refused" 1 fleetctl submit "$work/units/bad.service"
    check "$backend: ... with the key and line named" 0 grep -q "bad.service:8: unrecognized requirement MachineOfTypo" last.err
    placement >"$work/placement"
    check "$backend: MachineMetadata=role=worker lands on a worker" 0 grep -Eq "^worker.service m[34]$" "$work/placement"
    check "$backend: MachineID lands on that machine" 0 grep -q "^pinned.service m2$" "$work/placement"
    check "$backend: MachineOf follows its peer" 0 grep -q "^follower.service m2$" "$work/placement"
    check "$backend: a repeated metadata key is an OR" 0 grep -Eq "^either.service m[14]$" "$work/placement"
    check "$backend: different metadata keys are an AND" 0 grep -q "^both.service m2$" "$work/placement"
    check "$backend: Conflicts keeps two units apart" 0 test "$(machine_of apart-a.service)" != "$(machine_of apart-b.service)"
    check "$backend: template instances with a glob conflict take four machines" 0 \
        test "$(grep '^spread@' "$work/placement" | awk '{print $2}' | sort -u | wc -l)" = 4
    check "$backend: a global unit runs on every core machine" 0 \
        test "$(grep '^everywhere-core.service' "$work/placement" | awk '{print $2}' | sort | tr '\n' ' ')" = "m1 m2 "
    all_running() { test -z "$(fleetctl list-units --no-legend --fields active,sub | grep -v 'active	running')"; }
    wait_until 20 all_running
    check "$backend: every unit is active/running" 0 all_running

    # Replaces: the replacement takes the replaced unit's machine; the old one moves away.
    unit old.service "MachineMetadata=role=worker"
    check "$backend: start the unit to be replaced" 0 fleetctl start "$work/units/old.service"
    local old_machine
    old_machine=$(machine_of old.service)
    unit new.service "Replaces=old.service" "MachineMetadata=role=worker"
    check "$backend: start its replacement" 0 fleetctl start "$work/units/new.service"
    wait_until 10 'test "$(machine_of old.service)" != "$old_machine"'
    check "$backend: Replaces puts the replacement on the old unit's machine" 0 test "$(machine_of new.service)" = "$old_machine"
    check "$backend: ... and moves the replaced unit" 0 test -n "$(machine_of old.service)" -a "$(machine_of old.service)" != "$old_machine"

    # A short etcd leader change, then a killed and restarted leader: nothing moves.
    placement >"$work/before-leader-change"
    local leader target
    leader=$(etcd_leader)
    target=$(ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$((base + 2))" member list -w json |
        python3 -c "import json,sys; print([format(m['ID'],'x') for m in json.load(sys.stdin)['members'] if m['name']!='$leader'][0])")
    check "$backend: etcd moves its leader" 0 env ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$((base + ${leader#e} * 2))" move-leader "$target"
    leader=$(etcd_leader)
    kill -9 "${pid[$backend-$leader]}"
    sleep 2
    start_etcd "$backend" "$leader"
    wait_until 30 'test -n "$(etcd_leader)"'
    sleep $((grace + ttl + 2))
    placement >"$work/after-leader-change"
    check "$backend: an etcd leader change moves no unit" 0 diff "$work/before-leader-change" "$work/after-leader-change"
    check "$backend: ... and every unit still runs" 0 all_running

    # A killed machine: its units stay scheduled through the grace period, then move.
    local victim survivor
    victim=$(machine_of worker.service)
    survivor=m3
    [ "$victim" = m3 ] && survivor=m4
    kill -9 "${pid[fleet-$victim]}"
    unset "pid[fleet-$victim]"
    local killed_at=$SECONDS
    wait_until 20 'test "$(fleetctl list-machines --no-legend | wc -l)" = 3'
    check "$backend: the killed machine leaves list-machines after its TTL" 0 test "$(fleetctl list-machines --no-legend | wc -l)" = 3
    sleep 1
    if [ $((SECONDS - killed_at)) -lt $((grace - 1)) ]; then
        target_of_worker() { fleetctl list-unit-files --no-legend --full --fields unit,target | awk '$1 == "worker.service" { print $2 }'; }
        check "$backend: within the grace period its unit keeps its machine" 0 test "$(target_of_worker)" = "${id[$victim]}"
    else
        check "$backend: the machine's TTL ran out too late to observe the grace period" 0 false
    fi
    wait_until $((grace + 15)) 'test "$(machine_of worker.service)" = "$survivor"'
    local moved_after=$((SECONDS - killed_at))
    check "$backend: after the grace period the unit moves to the other worker" 0 test "$(machine_of worker.service)" = "$survivor"
    check "$backend: ... not before the grace period ($moved_after s >= $grace s)" 0 test "$moved_after" -ge "$grace"
    check "$backend: the pinned unit of a live machine did not move" 0 test "$(machine_of pinned.service)" = m2

    for name in "${!pid[@]}"; do
        case $name in fleet-* | "$backend"-*) kill "${pid[$name]}" 2>/dev/null; wait "${pid[$name]}" 2>/dev/null; unset "pid[$name]" ;; esac
    done
}

scenario ours 26800
scenario etcd34 26850
echo "fleet cluster: $passed passed, $failed failed"
[ "$failed" = 0 ]
