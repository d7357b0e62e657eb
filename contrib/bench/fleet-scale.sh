#!/usr/bin/env bash
# fleet at scale: UNITS units on MACHINES `coreos fleet` agents (separate processes, one
# etcd session each; three run an engine, the rest have it disabled) over one `coreos etcd`
# member, release build. Units are oneshot `/bin/true` with RemainAfterExit=yes, so
# `launched` means really started by the embedded supervisor. They are created through
# fleetd's API by 16 parallel clients, desired state `launched` at creation.
# Prints: time until every unit reports launched (active/exited), etcd requests and Raft
# proposals per unit, and the CPU time of the leading engine's fleetd and of all agents.
# fleet 1.0 fell over around 500 units or machines; the goal here is 10,000 on 100 in < 60 s.
# Usage: [ETCD=etcd] [VERBOSE=1] contrib/bench/fleet-scale.sh [UNITS] [MACHINES]
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
units="${1:-10000}"
machines="${2:-100}"
build_release >/dev/null
coreos="$(pwd)/$(release_binary)"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] && { echo "kept $work" >&2; return; }
    rm -rf "$work"
}
trap cleanup EXIT
port=27600
ulimit -n 65536 2>/dev/null || true

# ETCD=etcd runs the store on Debian's etcd 3.4 instead of `coreos etcd`.
etcd_command=("$coreos" etcd)
[ "${ETCD:-}" = etcd ] && etcd_command=(etcd)
"${etcd_command[@]}" --name bench --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$port" \
    --advertise-client-urls "http://127.0.0.1:$port" --listen-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" --initial-cluster "bench=http://127.0.0.1:$((port + 1))" \
    --quota-backend-bytes 8589934592 >"$work/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
declare -a fleet_pids=()
for n in $(seq "$machines"); do
    engine=()
    [ "$n" -gt 3 ] && engine=(--disable_engine)
    "$coreos" fleet --machine-id "$(printf '%032x' "$n")" --etcd_servers "http://127.0.0.1:$port" --public_ip "10.1.$((n / 250)).$((n % 250))" \
        --listen "unix://$work/m$n.sock" --log_directory "$work/logs" --runtime_directory "$work/run" "${engine[@]}" >"$work/m$n.log" 2>&1 &
    pids+=($!)
    fleet_pids+=($!)
done
for _ in $(seq 600); do
    [ "$("$coreos" fleetctl --endpoint "unix://$work/m1.sock" list-machines --no-legend 2>/dev/null | wc -l)" = "$machines" ] && break
    sleep 0.1
done
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v name="$1" '$1 == name { print $2 }'; }
requests() { echo $(($(metric etcd_mvcc_range_total) + $(metric etcd_mvcc_txn_total) + $(metric etcd_mvcc_put_total) + $(metric etcd_mvcc_delete_total))); }
cpu() { # PID...: user+system seconds
    local total=0 pid
    for pid in "$@"; do total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done
    echo "scale=2; $total / $(getconf CLK_TCK)" | bc
}
requests_before=$(requests)
proposals_before=$(metric etcd_server_proposals_committed_total)
cpu_before=$(cpu "${fleet_pids[@]}")

cat >"$work/load.py" <<'PYTHON'
import http.client, json, socket, sys, threading, time
sock, units, clients = sys.argv[1], int(sys.argv[2]), 16
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sock)
def worker(index):
    connection = Unix("fleet")
    for n in range(index, units, clients):
        body = json.dumps({"desiredState": "launched", "options": [
            {"section": "Service", "name": "Type", "value": "oneshot"},
            {"section": "Service", "name": "RemainAfterExit", "value": "yes"},
            {"section": "Service", "name": "ExecStart", "value": "/bin/true %d" % n}]})
        connection.request("PUT", "/fleet/v1/units/bench%05d.service" % n, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 201:
            sys.exit("PUT bench%05d.service: %d" % (n, response.status))
threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
started = time.time()
for thread in threads: thread.start()
for thread in threads: thread.join()
print("%.2f" % (time.time() - started))
PYTHON
cat >"$work/count.py" <<'PYTHON'
import json, sys, etcd3
client = etcd3.client(host="127.0.0.1", port=int(sys.argv[1]))
if sys.argv[2:] == ["placement"]:
    print(sum(1 for _ in client.get_prefix("/_coreos.com/fleet/placement/", keys_only=True)))
    sys.exit(0)
launched = 0
for value, _ in client.get_prefix("/_coreos.com/fleet/state/"):
    state = json.loads(value)
    if state.get("current") == "launched" and state["activeState"] == "active":
        launched += 1
print(launched)
PYTHON
ensure_apt_packages python3-etcd3 bc
started=$(date +%s.%N)
submit_seconds=$(/usr/bin/python3 "$work/load.py" "$work/m1.sock" "$units")
[ -n "${VERBOSE:-}" ] && echo "  created in $submit_seconds s" >&2
while :; do
    launched=$(/usr/bin/python3 "$work/count.py" "$port")
    [ "$launched" -ge "$units" ] && break
    elapsed=$(echo "$(date +%s.%N) - $started" | bc)
    [ -n "${VERBOSE:-}" ] && echo "  $elapsed s: $launched launched, $(/usr/bin/python3 "$work/count.py" "$port" placement) scheduled" >&2
    if [ "$(echo "$elapsed > 600" | bc)" = 1 ]; then echo "gave up after 600 s with $launched launched" >&2; break; fi
    sleep 0.5
done
total=$(echo "$(date +%s.%N) - $started" | bc)
requests_after=$(requests)
proposals_after=$(metric etcd_server_proposals_committed_total)
leader_pid=""
for n in 1 2 3; do
    if curl -s --unix-socket "$work/m$n.sock" http://fleet/metrics | grep -q '^fleet_engine_leader 1'; then leader_pid=${fleet_pids[$((n - 1))]}; fi
done
echo "fleet scale: $units units on $machines machines"
printf '  all launched after          %8.1f s (created through the API in %s s)\n' "$total" "$submit_seconds"
printf '  etcd KV requests per unit   %8.1f\n' "$(echo "scale=2; ($requests_after - $requests_before) / $units" | bc)"
printf '  Raft proposals per unit     %8.1f\n' "$(echo "scale=2; ($proposals_after - $proposals_before) / $units" | bc)"
printf '  fleetd CPU, all machines    %8.1f s\n' "$(echo "$(cpu "${fleet_pids[@]}") - $cpu_before" | bc)"
[ -n "$leader_pid" ] && printf '  fleetd CPU, engine leader   %8.1f s (agent included)\n' "$(cpu "$leader_pid")"
printf '  etcd CPU                    %8.1f s\n' "$(cpu "${pids[0]}")"
