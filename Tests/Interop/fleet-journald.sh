#!/usr/bin/env bash
# fleetd's embedded supervisor with journald running (no systemd PID 1): journald in a
# private mount namespace (tmpfs over /run and /var/log/journal, as journal-follow.sh),
# etcd and fleetd in it too. A unit's output must reach the journal as the unit's
# (`journalctl -u` finds it), with the writing process's name and PID, and no log file;
# fleetctl journal and status read it back.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
. Tests/Interop/lib/private-journald.sh
private_journald_prologue

unshare --mount --propagation private bash -s "$ours" "$work" "$(pwd)" <<'INSIDE'
set -uo pipefail
ours=$1
work=$2
. "$3/Tests/Interop/lib/checks.sh"
. "$3/Tests/Interop/lib/private-journald.sh"
cd "$work" || exit 1
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done; }
trap cleanup EXIT
start_private_journald journald.log || { echo "journald did not start: $(cat journald.log)"; exit 1; }
port=27560
"$ours" etcd --name solo --data-dir etcd --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$((port + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-cluster "solo=http://127.0.0.1:$((port + 1))" >etcd.log 2>&1 &
pids+=($!)
"$ours" fleet --machine-id 7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e --etcd_servers "http://127.0.0.1:$port" --listen "unix://$work/fleet.sock" \
    --log_directory "$work/logs" --runtime_directory "$work/run" >fleet.log 2>&1 &
pids+=($!)
fleetctl() { "$ours" fleetctl --endpoint "unix://$work/fleet.sock" "$@"; }
for _ in $(seq 100); do [ "$(fleetctl list-machines --no-legend 2>/dev/null | wc -l)" = 1 ] && break; sleep 0.1; done
printf '[Service]\nExecStart=/bin/sh -c "n=0; while :; do n=$((n+1)); echo tick $n; sleep 0.2; done"\n' >ticker.service
check "the unit starts under the embedded supervisor" 0 fleetctl start ticker.service
sleep 1.5
check "its lines are in the journal as the unit's" 0 "$ours" journal --no-pager -u ticker.service -o cat
check "... in order" 0 grep -qx "tick 3" last.out
check "... with the writer's name and PID" 0 "$ours" journal --no-pager -u ticker.service -o short
check "... as sh[PID]" 0 grep -q " sh\[[0-9]*\]: tick 2$" last.out
check "no log file is written" 1 test -e "$work/logs/7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e/ticker.service.log"
check "fleetctl journal reads the journal" 0 fleetctl journal --lines 2 ticker.service
check "... two lines" 0 test "$(grep -c ' sh\[[0-9]*\]: tick [0-9]*$' last.out)" = 2
check "fleetctl journal -f follows it" 0 bash -c "timeout 2 '$ours' fleetctl --endpoint unix://$work/fleet.sock journal -f --lines 1 ticker.service >follow.out; [ \$(grep -c 'tick' follow.out) -ge 5 ]"
check "fleetctl status shows the unit and its lines" 0 fleetctl status ticker.service
check "... the lines" 0 grep -q "tick" last.out
check "fleetctl stop" 0 fleetctl stop ticker.service
check "... stops the process" 0 fleetctl list-units --no-legend --fields unit,active
check "... inactive" 0 grep -q "^ticker.service	*inactive$" last.out
printf '[Service]\nType=oneshot\nExecStart=/bin/false\n' >broken.service
fleetctl start --no-block broken.service >/dev/null
sleep 1.5
check "the supervisor's own messages are the unit's too: a failed start" 0 "$ours" journal --no-pager -u broken.service -o cat
check "... in systemd's words" 0 grep -q "Failed with result 'exit-code'" last.out
echo "fleet with journald: $passed passed, $failed failed"
[ "$failed" = 0 ]
INSIDE
