#!/usr/bin/env bash
# Differential test of ETCDCTL_API=2: Debian's etcdctl 3.4 and ours run the same v2
# commands against twin etcd 3.4 members with the v2 API enabled (see lib/differential.sh).
# stdout, stderr and exit status must match; only the client ports are masked.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server etcd-client

DIFFERENTIAL_TOKEN=differential-v2 REFERENCE_PORT=24479 OUR_PORT=24481
DIFFERENTIAL_ETCD_FLAGS=--enable-v2=true DIFFERENTIAL_SCHEME=http://
. Tests/Interop/lib/differential.sh
export ETCDCTL_API=2
start_twins

# Root help: our build leaves out backup, user, role and auth (see the etcdctl page), so
# their rows are dropped from both sides.
mask_unordered=(cat)
mask() {
    "${mask_unordered[@]}" | sed -E -e 's/127\.0\.0\.1:24(479|481)/127.0.0.1:PORT/g' -e 's/"expiration":"[^"]*"/"expiration":"TIME"/g' \
        -e '/^   (backup|user|role|auth) /d'
}

# Keys: writes, conditions, directories, listings and the three output formats.
case_ set /a 1
case_ set /a 2
case_ get /a
case_ mk /a 3
case_ mk /b 3
case_ mkdir /d
case_ mkdir /d
# Without --sort the server lists a directory in Go map order, which differs per request.
case_ ls --sort
case_ ls --sort -r /
case_ ls --sort -p /
case_ rm /a
case_ rm /a
case_ rmdir /d
case_ rm /b --with-value 4
case_ rm /b --with-index 99
case_ update /zz 1
case_ set /d/x 1
case_ updatedir /d --ttl 100
case_ get /d
case_ rm /d
case_ rm -r /d
case_ -o extended get /b
case_ -o json get /b
case_ set /c 1 --swap-with-value 2
case_ set /c 1 --swap-with-index 99
case_ -o json set /k v
case_ -o extended set /k v2
case_ set /k v3 --swap-with-value v2
case_ -o json mkdir /dd
case_ -o json ls --sort /
case_ -o extended ls --sort /
case_ -o json rm /k
case_ -o extended rm /dd --dir
case_ set /t/a 1
case_ set /t/b/c 2
case_ ls --sort -r -p /t
case_ -o json ls --sort -r /t
case_ -o extended ls -r /t
case_ -o json ls --sort -r /t
case_ ls /t/a
case_ -o extended mkdir /m2
case_ -o json setdir /m1
case_ -o json setdir /m1
case_ -o json updatedir /m1
case_ -o json rmdir /m1
case_ rmdir /t
case_ -o json get /nokey
case_ ls /nonexist
case_ set -- /neg -5
case_ get /neg
case_ set '/sp ace/k?ey' 'v a l'
case_ ls --sort -r '/sp ace'
case_ -o json set /html '<a href="x">&</a>'
case_ -o json get /html
case_ update /html updated
case_ -o extended set /ttl x --ttl 100
case_ mk /ttl y
case_ -o bogus get /neg
with_input 'from stdin' set /stdin
case_ get /stdin
case_ mk --in-order /queue
case_ get /t/a --quorum
case_ get /t/a -q --sort

# Watches that return at once from history.
case_ watch --after-index 1 /a
case_ -o json watch --after-index 1 -r /t
case_ -o extended watch --after-index 1 /b
case_ watch --after-index 1 -r /

# Members and health (single member: list and health only; add/remove are in the
# three-member client tests, since an unstarted member would cost this one its quorum).
case_ member list
case_ member list extra
case_ member remove
case_ member remove 123
case_ member add
case_ member update abc http://x
case_ member update
case_ cluster-health

# Usage errors, help and versions.
case_ get
case_ set
case_ set /only
case_ mk
case_ rm
case_ watch
case_ exec-watch /x
case_ mk --ttl abc /x 1
case_ mk --ttl
case_ bogus
case_ help bogus
case_ member bogus
case_ --timeout x get /a
case_ --bogus get /x
case_ -o
case_ --version
case_ -v
for command in set get mk mkdir rm rmdir ls setdir update updatedir watch exec-watch cluster-health \
    "member list" "member add" "member remove" "member update"; do
    # shellcheck disable=SC2086
    case_ $command --help
done
case_ help set
case_ member
case_ member --help
case_ member help list

# Unreachable endpoints: the cluster error and exit 2.
REFERENCE_ENDPOINT=http://127.0.0.1:1 OUR_ENDPOINT=http://127.0.0.1:1 case_ get /x
REFERENCE_ENDPOINT=http://127.0.0.1:1 OUR_ENDPOINT=http://127.0.0.1:1 case_ --no-sync get /x
# Several endpoints are tried in a random order (client/v2 shuffles them): mask which.
mask_unordered=(sed -E 's/127\.0\.0\.1:[12]: /127.0.0.1:N: /')
REFERENCE_ENDPOINT=http://127.0.0.1:1,http://127.0.0.1:2 OUR_ENDPOINT=http://127.0.0.1:1,http://127.0.0.1:2 case_ ls
mask_unordered=(cat)

# exec-watch runs its command with the change in ETCD_WATCH_* variables.
exec_watch_probe() { # etcdctl-binary port output-file
    env ETCDCTL_ENDPOINTS="http://127.0.0.1:$2" "$1" exec-watch -r /ew -- sh -c 'env | grep ^ETCD_WATCH_ | sort >>'"$3" &
    local watcher=$!
    sleep 0.7
    ETCDCTL_ENDPOINTS="http://127.0.0.1:$2" etcdctl set /ew fresh >/dev/null
    for _ in $(seq 50); do [ -s "$3" ] && break; sleep 0.1; done
    kill "$watcher" 2>/dev/null
    wait "$watcher" 2>/dev/null
}
exec_watch_probe etcdctl "$REFERENCE_PORT" "$work/ew.ref"
exec_watch_probe "$work/etcdctl" "$OUR_PORT" "$work/ew.our"
if [ -s "$work/ew.our" ] && cmp -s "$work/ew.ref" "$work/ew.our"; then passed=$((passed + 1)); else
    failed=$((failed + 1))
    echo "DIFFERS: exec-watch environment"
    diff "$work/ew.ref" "$work/ew.our"
fi

# watch -f prints every change until interrupted.
watch_probe() { # etcdctl-binary port output-file
    env ETCDCTL_ENDPOINTS="http://127.0.0.1:$2" "$1" watch -f -r /wf >"$3" &
    local watcher=$!
    sleep 0.7
    for step in "set /wf/x 1" "rm /wf/x" "mkdir /wf/dd" "set /wf/y 2"; do
        # shellcheck disable=SC2086
        ETCDCTL_ENDPOINTS="http://127.0.0.1:$2" etcdctl $step >/dev/null
    done
    for _ in $(seq 50); do [ "$(wc -l <"$3")" -ge 6 ] && break; sleep 0.1; done
    kill "$watcher" 2>/dev/null
    wait "$watcher" 2>/dev/null
}
watch_probe etcdctl "$REFERENCE_PORT" "$work/wf.ref"
watch_probe "$work/etcdctl" "$OUR_PORT" "$work/wf.our"
if [ -s "$work/wf.our" ] && cmp -s "$work/wf.ref" "$work/wf.our"; then passed=$((passed + 1)); else
    failed=$((failed + 1))
    echo "DIFFERS: watch -f"
    diff "$work/wf.ref" "$work/wf.our"
fi

echo "etcdctl v2 differential: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
