#!/usr/bin/env bash
# The v2 keys API of `coreos etcd` beside real etcd 3.4 (v2 switched on): the same
# requests (Tests/Interop/tools/v2-keys-calls.py: set, create, update, compare-and-swap
# and -delete with their failures, directories, in-order keys, hidden names, recursive
# and sorted listings, TTLs, refresh, expiry, bad parameters, waits from the history and
# for the next change) must give the same status, headers and JSON, with store indexes
# compared relative to each server's starting index.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server etcd-client curl python3-etcd
. Tests/Interop/lib/server-pair.sh
start_server_pair 25310 25312 --enable-v2=true
/usr/bin/python3 Tests/Interop/tools/v2-keys-calls.py 25310 >"$work/reference.out" 2>&1 || { cat "$work/reference.out"; exit 1; }
/usr/bin/python3 Tests/Interop/tools/v2-keys-calls.py 25312 >"$work/ours.out" 2>&1 || { cat "$work/ours.out"; exit 1; }
# Debian's etcdctl in v2 mode: the same commands, the same output and exit codes.
ctl2_session() { # PORT
    local endpoint="http://127.0.0.1:$1" command
    while IFS= read -r command; do
        echo "\$ $command"
        # shellcheck disable=SC2086
        ETCDCTL_API=2 etcdctl --endpoints="$endpoint" $command 2>&1 | sed -E 's/\[[0-9]+\]$/[INDEX]/'
        echo "exit ${PIPESTATUS[0]}"
    done <<'COMMANDS'
set /ctl/a 1
get /ctl/a
mk /ctl/a 2
mk /ctl/b 2
update /ctl/b 3
update /ctl/none 3
mkdir /ctl/dir
mkdir /ctl/dir
ls --sort /ctl
ls --recursive --sort /ctl
get /ctl/dir
rm /ctl/dir
rmdir /ctl/dir
set --swap-with-value 9 /ctl/a 2
set --swap-with-value 1 /ctl/a 2
rm --with-value 5 /ctl/a
rm --recursive /ctl
get /ctl/a
COMMANDS
}
ctl2_session 25310 >"$work/reference-ctl2.out"
ctl2_session 25312 >"$work/ours-ctl2.out"
failed=0
if ! diff "$work/reference.out" "$work/ours.out"; then
    echo "v2 keys: coreos etcd answers differ from etcd 3.4"
    failed=1
fi
if ! diff "$work/reference-ctl2.out" "$work/ours-ctl2.out"; then
    echo "ETCDCTL_API=2 etcdctl: coreos etcd answers differ from etcd 3.4"
    failed=1
fi
# python-etcd (the v2 client library of old tools): the same outcomes on both.
/usr/bin/python3 Tests/Interop/tools/python-etcd-calls.py 25310 >"$work/reference-py.out" 2>&1 || { cat "$work/reference-py.out"; exit 1; }
/usr/bin/python3 Tests/Interop/tools/python-etcd-calls.py 25312 >"$work/ours-py.out" 2>&1 || { cat "$work/ours-py.out"; exit 1; }
if ! diff "$work/reference-py.out" "$work/ours-py.out"; then
    echo "python-etcd: coreos etcd answers differ from etcd 3.4"
    failed=1
fi

# etcdctl v2 watch and exec-watch see the next change, on both.
watch_session() { # PORT
    local endpoint="http://127.0.0.1:$1"
    ETCDCTL_API=2 timeout 10 etcdctl --endpoints="$endpoint" watch /ctlw/k >"$work/watch-$1.out" 2>&1 &
    local watcher=$!
    ETCDCTL_API=2 timeout 10 etcdctl --endpoints="$endpoint" exec-watch --recursive /ctlw/ex -- \
        /bin/sh -c 'echo "exec $ETCD_WATCH_ACTION $ETCD_WATCH_KEY=$ETCD_WATCH_VALUE"' >"$work/exec-$1.out" 2>&1 &
    local executor=$!
    sleep 1
    ETCDCTL_API=2 etcdctl --endpoints="$endpoint" set /ctlw/k first >/dev/null
    ETCDCTL_API=2 etcdctl --endpoints="$endpoint" set /ctlw/ex/e second >/dev/null
    wait "$watcher"
    sleep 1
    kill "$executor" 2>/dev/null
    wait "$executor" 2>/dev/null
    cat "$work/watch-$1.out" "$work/exec-$1.out"
}
watch_session 25310 >"$work/reference-watch.out"
watch_session 25312 >"$work/ours-watch.out"
if ! diff "$work/reference-watch.out" "$work/ours-watch.out" || ! grep -q "exec set /ctlw/ex/e=second" "$work/ours-watch.out"; then
    echo "etcdctl v2 watch/exec-watch: coreos etcd differs from etcd 3.4"
    failed=1
fi

# /v2/stats: the same fields in the same order; store counters move by the same amounts
# (etcd counts its own bootstrap writes too, so deltas are compared); a long poll whose
# client hangs up leaves no watcher behind.
stats_session() { # PORT
    local base="http://127.0.0.1:$1"
    /usr/bin/python3 - "$base" <<'PY'
import json, subprocess, sys, time, urllib.request
base = sys.argv[1]
def get(path):
    with urllib.request.urlopen(base + path, timeout=5) as response:
        return json.loads(response.read(), object_pairs_hook=lambda pairs: pairs)
def store():
    return dict(get("/v2/stats/store"))
before = store()
for call in (["-XPUT", "/v2/keys/st/a", "-d", "value=1"], ["/v2/keys/st/a"], ["/v2/keys/st/none"],
             ["-XPUT", "/v2/keys/st/a?prevValue=9", "-d", "value=2"], ["-XDELETE", "/v2/keys/st/a"],
             ["-XPUT", "/v2/keys/st/b?prevExist=true", "-d", "value=1"], ["-XPOST", "/v2/keys/st/q", "-d", "value=1"]):
    subprocess.run(["curl", "-s", "-o", "/dev/null"] + call[:-1] + [base + call[-1]] if call[0] != "-XPUT" and call[0] != "-XPOST" and call[0] != "-XDELETE" else
                   ["curl", "-s", "-o", "/dev/null", call[0], base + call[1]] + call[2:], check=True)
after = store()
print("store fields:", list(after))
# etcd also reads its own v2 records now and then (failed gets of its own): not compared.
print("store deltas:", {key: after[key] - before[key] for key in after if key != "getsFail"})
print("failed gets counted:", after["getsFail"] > before["getsFail"])
print("self fields:", [key for key, _ in get("/v2/stats/self")])
print("leader fields:", [key for key, _ in get("/v2/stats/leader")])
poll = subprocess.Popen(["curl", "-s", base + "/v2/keys/st/w?wait=true"])
time.sleep(1)
print("watchers while a client waits:", store()["watchers"])
poll.kill()
poll.wait()
time.sleep(1)
print("watchers after it hung up:", store()["watchers"])
PY
}
stats_session 25310 >"$work/reference-stats.out" 2>&1
stats_session 25312 >"$work/ours-stats.out" 2>&1
if ! diff "$work/reference-stats.out" "$work/ours-stats.out"; then
    echo "/v2/stats: coreos etcd differs from etcd 3.4"
    failed=1
fi

# Membership through v2: member list (with the leader) and cluster-health.
ETCDCTL_API=2 etcdctl --endpoints=http://127.0.0.1:25312 member list | grep -q 'isLeader=true' || { echo "v2 member list shows no leader"; failed=1; }
ETCDCTL_API=2 etcdctl --endpoints=http://127.0.0.1:25312 cluster-health | grep -q '^cluster is healthy$' || { echo "v2 cluster-health is not healthy"; failed=1; }
[ "$(curl -s http://127.0.0.1:25312/v2/machines)" = "http://127.0.0.1:25312" ] || { echo "/v2/machines is wrong"; failed=1; }
[ "$failed" = 0 ] || exit 1
echo "v2 keys: $(grep -c . "$work/ours.out") requests, $(grep -c '^\$' "$work/ours-ctl2.out") etcdctl v2 commands, $(grep -c . "$work/ours-py.out") python-etcd calls, watch, exec-watch and /v2/stats answered as etcd 3.4 answers them"
