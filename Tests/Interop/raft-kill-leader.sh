#!/usr/bin/env bash
# Real processes: three raft-kv members (Raft + Storage + TCP transport) on loopback, a
# client writing keys, and the leader killed with SIGKILL and restarted in a loop. At the
# end every write that was acknowledged must be on all three members.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
binary="${RAFT_KV_BINARY:-$(pwd)/.build/debug/raft-kv}"
[ -x "$binary" ] || die "build first: $binary is missing"
rounds="${RAFT_KILL_ROUNDS:-8}"
work="$(mktemp -d)"
declare -A pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
peers="1=127.0.0.1:27101,2=127.0.0.1:27102,3=127.0.0.1:27103"
client_port() { echo $((27110 + $1)); }
start() {
    "$binary" --id "$1" --peers "$peers" --client-port "$(client_port "$1")" --data "$work/m$1" \
        >>"$work/m$1.log" 2>&1 &
    pids[$1]=$!
}
# ask MEMBER LINE: one request on a fresh connection; prints the first answer line.
ask() {
    local answer=""
    if { exec 7<>"/dev/tcp/127.0.0.1/$(client_port "$1")"; } 2>/dev/null; then
        printf '%s\n' "$2" >&7
        read -r -t 6 answer <&7 2>/dev/null
        exec 7>&-
    fi
    printf '%s' "$answer"
}
dump() {
    { exec 8<>"/dev/tcp/127.0.0.1/$(client_port "$1")"; } 2>/dev/null || return 1
    printf 'DUMP\n' >&8
    local line
    while read -r -t 6 line <&8 && [ "$line" != END ]; do printf '%s\n' "$line"; done
    exec 8>&-
}
leader() {
    local member status
    for member in 1 2 3; do
        status=$(ask "$member" STATUS)
        case "$status" in "role leader "*) echo "$member"; return ;; esac
    done
}
for member in 1 2 3; do start "$member"; done
sleep 1

acknowledged="$work/acknowledged"
: >"$acknowledged"
# The client: writes key i to whoever leads, retrying until acknowledged or given up.
client() {
    local i=1 member=1 answer attempt
    while [ ! -e "$work/stop" ]; do
        for attempt in $(seq 40); do
            answer=$(ask "$member" "PUT k$i v$i")
            case "$answer" in
            OK) echo "k$i=v$i" >>"$acknowledged"; break ;;
            "ERR notleader "[1-3]) member=${answer#ERR notleader } ;;
            *) member=$(( member % 3 + 1 )); sleep 0.05 ;;
            esac
        done
        i=$((i + 1))
    done
}
client &
client_pid=$!
for round in $(seq "$rounds"); do
    sleep 1.5
    victim=$(leader)
    [ -n "$victim" ] || continue
    kill -9 "${pids[$victim]}" 2>/dev/null
    wait "${pids[$victim]}" 2>/dev/null
    sleep 0.5
    start "$victim"
done
sleep 1.5
touch "$work/stop"
wait "$client_pid"

# Every member must converge on every acknowledged write.
count=$(wc -l <"$acknowledged")
ok=0
for _ in $(seq 100); do
    ok=1
    for member in 1 2 3; do
        dump "$member" >"$work/dump$member" || { ok=0; break; }
        if [ -n "$(sort "$acknowledged" | comm -23 - <(sort "$work/dump$member"))" ]; then ok=0; break; fi
    done
    [ "$ok" = 1 ] && break
    sleep 0.2
done
if [ "$ok" = 1 ] && [ "$count" -gt 20 ]; then
    echo "raft kill-leader: $count acknowledged writes present on all 3 members after $rounds leader kills"
    exit 0
fi
echo "raft kill-leader: FAILED ($count acknowledged)"
for member in 1 2 3; do
    echo "member $member missing: $(sort "$acknowledged" | comm -23 - <(sort "$work/dump$member" 2>/dev/null) | head -5 | tr '\n' ' ')"
    tail -5 "$work/m$member.log"
done
exit 1
