#!/usr/bin/env bash
# coreos journal -f against a live systemd-journald: journald runs in a private mount
# namespace (tmpfs over /run and /var/log/journal, so nothing of the host changes and no
# systemd PID 1 is needed), entries are written through its three transports, and the
# follower must print each one while it runs. Default sources (no -D) are exercised too:
# inside the namespace the system journal is the one this journald writes.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
. Tests/Interop/lib/private-journald.sh
private_journald_prologue

# Everything below runs inside the namespace; its processes are killed by PID on the way out.
unshare --mount --propagation private bash -s "$ours" "$work" "$(pwd)" <<'INSIDE'
set -uo pipefail
ours=$1
work=$2
. "$3/Tests/Interop/lib/private-journald.sh"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done; }
trap cleanup EXIT
start_private_journald "$work/journald.log" || { echo "journald did not start: $(cat "$work/journald.log")"; exit 1; }

tag="coreos-follow-$$"
echo "before the follower" | systemd-cat -t "$tag" -p info
sleep 0.5
"$ours" journal -f -t "$tag" -o cat >"$work/follow.out" 2>"$work/follow.err" &
follower=$!
pids+=($follower)
sleep 1
echo "via stdout" | systemd-cat -t "$tag" -p notice
logger --socket /run/systemd/journal/dev-log -t "$tag" -p user.err "via syslog"
logger --journald <<EOF
SYSLOG_IDENTIFIER=$tag
MESSAGE=via native protocol
CUSTOM_FIELD=hello
EOF
expected=("before the follower" "via stdout" "via syslog" "via native protocol")
for _ in $(seq 50); do
    [ "$(wc -l <"$work/follow.out")" -ge 4 ] && break
    sleep 0.1
done
kill "$follower" 2>/dev/null
failed=0
for line in "${expected[@]}"; do
    grep -qx "$line" "$work/follow.out" || { echo "FAIL: the follower did not print '$line'"; failed=1; }
done
[ "$(wc -l <"$work/follow.out")" = 4 ] || { echo "FAIL: expected 4 lines, got:"; cat "$work/follow.out"; failed=1; }
# The same entries through journalctl and through us, without -f, on the default journal.
diff <(journalctl -t "$tag" -o json --output-fields=MESSAGE,PRIORITY,CUSTOM_FIELD | python3 -c '
import json, sys
for line in sys.stdin: d = json.loads(line); print(d.get("MESSAGE"), d.get("PRIORITY"), d.get("CUSTOM_FIELD"))') \
    <("$ours" journal -t "$tag" -o json --output-fields=MESSAGE,PRIORITY,CUSTOM_FIELD | python3 -c '
import json, sys
for line in sys.stdin: d = json.loads(line); print(d.get("MESSAGE"), d.get("PRIORITY"), d.get("CUSTOM_FIELD"))') ||
    { echo "FAIL: journalctl and coreos journal differ on the live journal"; failed=1; }
[ "$failed" = 0 ] && echo "journal follow: 4 live entries seen, default journal agrees with journalctl"
exit $failed
INSIDE
