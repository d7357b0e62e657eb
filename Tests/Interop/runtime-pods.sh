#!/usr/bin/env bash
# coreos run pods end to end (root): every image kind runs, exit codes (0, 42, 143 after
# stop, 137 when the memory limit kills), enter, status and list, volumes, rkt's
# environment precedence, users, read-only roots, capabilities; and gc leaves no mounts,
# cgroups or files behind.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh

ours="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
[ -x "$ours" ] || die "build first: $ours is missing"
[ "$(id -u)" = 0 ] || die "needs root"
images=/var/tmp/coreos-runtime-images
Tests/Interop/tools/runtime-images.sh "$images" || die "building the test images failed"
work="$(mktemp -d)"
store="$work/store"
background=()
cleanup() {
    for pid in "${background[@]}"; do kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    "$ours" run --dir "$store" gc --grace-period=0s >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
# Unsigned test ACIs: signatures are checked in the trust section below.
run() { "$ours" run --dir "$store" --insecure-options=image "$@"; }
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
mounts_before=$(wc -l </proc/self/mountinfo)

for image in "$images/busybox.aci.gz" "oci:$images/oci:busybox" "docker-archive:$images/busybox-docker.tar"; do
    out=$(run run --net=host "$image" --exec /bin/echo -- hello from "$image" 2>&1)
    [ "$out" = "hello from $image" ] || fail "$image: $out"
done
run run --net=none "$images/busybox.aci" --exec /bin/sh -- -c 'exit 42'
[ $? = 42 ] || fail "exit status 42 not passed through"
run run --net=none "$images/busybox.aci" --exec /bin/false
[ $? = 1 ] || fail "exit status 1 not passed through"
run run --net=none "$images/busybox.aci" --exec /no/such/program 2>"$work/err"
[ $? = 254 ] && grep -q 'no/such/program' "$work/err" || fail "a missing program is not a runtime error: $(cat "$work/err")"
run run --net=nonsense "$images/busybox.aci" 2>/dev/null
[ $? = 254 ] || fail "an unknown network is not refused"
run run --bogus-flag "$images/busybox.aci" 2>/dev/null
[ $? = 2 ] || fail "an unknown run flag is not a usage error"

# Namespaces and confinement as the app sees them.
out=$(run run --net=none --hostname=podhost "$images/busybox.aci" --exec /bin/sh -- -c \
    'echo $(hostname) $$ $(ls /sys/class/net | tr "\n" " ")$(cat /proc/timer_list 2>&1 | wc -c) $( (echo x >/proc/sys/kernel/hostname) 2>&1 | grep -c Read-only)')
[ "$out" = "podhost 2 lo 0 1" ] || fail "namespaces: '$out'"
out=$(run run --net=none "$images/busybox.aci" --exec /bin/sh -- -c 'grep CapBnd /proc/self/status')
[ "$out" = "CapBnd:	00000000a80425fb" ] || fail "default capabilities: $out"
out=$(run run --net=none --caps-retain=CAP_NET_ADMIN,CAP_CHOWN "$images/busybox.aci" --exec /bin/sh -- -c 'grep CapEff /proc/self/status')
[ "$out" = "CapEff:	0000000000001001" ] || fail "--caps-retain: $out"

# Environment precedence, users, read-only root, volumes.
echo 'A=file' >"$work/env"
echo 'C=file' >>"$work/env"
out=$(A=inherited D=inherited run run --net=host --inherit-env --set-env-file="$work/env" --set-env=A=setenv \
    "$images/busybox.aci" --environment=C=app --user=nobody --exec /bin/sh -- -c 'echo $A $C $D $FROM_IMAGE $(id -u)')
[ "$out" = "setenv app inherited aci 65534" ] || fail "environment/user: '$out'"
mkdir -p "$work/vol"
echo host-data >"$work/vol/in"
out=$(run run --net=host --readonly-rootfs --volume=data,kind=host,source="$work/vol" --mount=volume=data,target=/data \
    --volume=scratch,kind=empty --mount=volume=scratch,target=/scratch "$images/busybox.aci" --exec /bin/sh -- -c \
    'cat /data/in; echo out >/data/out; echo s >/scratch/s && echo scratch-ok; touch /nope 2>/dev/null || echo ro-ok')
[ "$out" = "$(printf 'host-data\nscratch-ok\nro-ok')" ] && [ "$(cat "$work/vol/out")" = out ] || fail "volumes/read-only root: '$out'"

# Memory limit: the OOM killer's SIGKILL is the app's status.
run run --net=host --memory=24M "$images/busybox.aci" --exec /bin/sh -- -c 'x=$(head -c 100000000 /dev/zero | tr "\0" a)'
[ $? = 137 ] || fail "--memory did not end in 137"

# --cpu: the pod's cgroup gets the quota (v1 cfs_quota_us or v2 cpu.max, whichever holds cpu).
run run --net=none --cpu=250m --uuid-file-save="$work/cpu" "$images/busybox.aci" --exec /bin/sleep -- 5 &
background+=($!)
for _ in $(seq 50); do [ -s "$work/cpu" ] && run status "$(cat "$work/cpu")" 2>/dev/null | grep -q '^pid=' && break; sleep 0.1; done
quota=$(cat $(find /sys/fs/cgroup -maxdepth 8 -path "*coreos-pod-$(cat "$work/cpu")*" \( -name cpu.cfs_quota_us -o -name cpu.max \) 2>/dev/null) 2>/dev/null | head -1)
case "$quota" in 25000|"25000 100000") ;; *) fail "--cpu=250m gave quota '$quota'" ;; esac
run stop --force "$(cat "$work/cpu")" >/dev/null
wait "${background[-1]}"

# A long-running pod: list, status, enter, stop.
run run --net=none --uuid-file-save="$work/uuid" "$images/busybox.aci" --exec /bin/sleep -- 60 &
sleeper=$!
background+=($sleeper)
for _ in $(seq 50); do [ -s "$work/uuid" ] && run status "$(cat "$work/uuid")" 2>/dev/null | grep -q '^pid=' && break; sleep 0.1; done
uuid=$(cat "$work/uuid")
run list --no-legend | grep -q "^${uuid:0:8} .*running" || fail "list does not show the running pod"
run status "$uuid" | grep -q '^state=running$' || fail "status of a running pod"
out=$(run enter "$uuid" /bin/sh -c 'echo $$ $(cat /proc/1/comm)')
[ "$out" = "3 coreos-init" ] || fail "enter: '$out'"
run stop "$uuid" >/dev/null || fail "stop"
wait "$sleeper"
[ $? = 143 ] || fail "a stopped pod does not end in 143"
run status --wait "$uuid" | grep -qx 'app-busybox=143' || fail "status after stop"

# Several apps in one pod: shared PID and network namespaces, their own trees, the first
# failing status for the pod, every app's status in `status`, enter --app.
out=$(run run --net=none --uuid-file-save="$work/multi" "$images/busybox.aci" --exec /bin/sh -- -c \
        'echo from-aci | nc -l -p 7000 127.0.0.1; exit 3' \
    --- "oci:$images/oci:busybox" --exec /bin/sh -- -c \
        'sleep 0.5; grep -c from-aci /proc/2/cmdline; nc 127.0.0.1 7000 </dev/null; ls /etc/hostname 2>/dev/null | wc -l')
status=$?
[ "$status" = 3 ] || fail "a pod of two apps ended with $status, not the failing app's 3"
[ "$out" = "$(printf '1\nfrom-aci\n0')" ] || fail "two apps: '$out'"
multi=$(cat "$work/multi")
run status "$multi" | grep -qx 'app-busybox=3' && run status "$multi" | grep -qx 'app-busybox-2=0' || fail "status of a two-app pod: $(run status "$multi")"
run run --net=none --uuid-file-save="$work/multi2" "$images/busybox.aci" --exec /bin/sleep -- 30 --- "oci:$images/oci:base" --exec /bin/sleep -- 30 &
pair=$!
background+=($pair)
for _ in $(seq 50); do [ -s "$work/multi2" ] && run status "$(cat "$work/multi2")" 2>/dev/null | grep -q '^pid=' && break; sleep 0.1; done
out=$(run enter --app=base "$(cat "$work/multi2")" /bin/cat /etc/hostname)
[ "$out" = image-hostname ] || fail "enter --app into the second app: '$out'"
run enter "$(cat "$work/multi2")" /bin/true 2>/dev/null && fail "enter without --app into a two-app pod"
run stop "$(cat "$work/multi2")" >/dev/null
wait "$pair"
[ $? = 143 ] || fail "stopping a two-app pod"

# An ACI with a dependency: rendered over the busybox ACI it names.
[ "$(run run --net=none "$images/app-with-dependency.aci")" = from-the-dependent-image ] || fail "an ACI with a dependency"
"$ours" run --dir "$work/lonely" --insecure-options=image run --net=none "$images/app-with-dependency.aci" 2>"$work/err"
[ $? = 254 ] && grep -q 'which is not in the store' "$work/err" || fail "a missing dependency: $(cat "$work/err")"

# Layers are unpacked once and shared: oci:busybox (the tree, then a whiteout layer) and
# oci:base (the same first layer) stack over two trees, the whiteout kept for overlayfs.
[ "$(ls -d "$store"/trees/layer-* | wc -l)" = 2 ] || fail "layer trees: $(ls "$store/trees")"
ls -l "$store"/trees/layer-*/rootfs/etc/hostname 2>/dev/null | grep -q '^c' || fail "no overlay whiteout in the upper layer's tree"

# export: an exited pod's app as an ACI, with what the app changed (a whiteout included).
run run --net=none --uuid-file-save="$work/exported" "oci:$images/oci:busybox" --exec /bin/sh -- -c \
    'echo written >/etc/new; rm /bin/vi; mkdir -p /var/x' || fail "run before export"
run export "$(cat "$work/exported")" "$work/exported.aci" || fail "export"
tar -tf "$work/exported.aci" >"$work/exported.list" 2>/dev/null || fail "export is not a tar"
grep -qx manifest "$work/exported.list" && grep -qx rootfs/etc/new "$work/exported.list" && grep -qx rootfs/var/x/ "$work/exported.list" \
    && ! grep -qx rootfs/bin/vi "$work/exported.list" || fail "exported tree: $(grep -c . "$work/exported.list") entries"
[ "$(run run --net=none "$work/exported.aci" --exec /bin/cat -- /etc/new)" = written ] || fail "the exported ACI does not run"
run export "$(cat "$work/exported")" "$work/exported.aci" 2>/dev/null && fail "export overwrote without --overwrite"

# --rlimit
[ "$(run run --net=none --rlimit=NOFILE=256:512 "$images/busybox.aci" --exec /bin/sh -- -c 'echo $(ulimit -n) $(ulimit -Hn)')" = "256 512" ] \
    || fail "--rlimit"

# SIGTERM to the waiting `coreos run` stops the pod through its init (like Ctrl-C on a terminal).
"$ours" run --dir "$store" --insecure-options=image run --net=none "$images/busybox.aci" --exec /bin/sleep -- 30 &
runner=$!
background+=($runner)
sleep 0.5
kill -TERM "$runner"
wait "$runner"
[ $? = 143 ] || fail "SIGTERM to coreos run did not stop the pod with 143"

# --private-users: root in the pod is an unprivileged ID range on the host.
run run --net=none --private-users "$images/busybox.aci" --exec /bin/true 2>"$work/err"
[ $? = 254 ] && grep -q 'not searchable by others' "$work/err" || fail "--private-users under a 0700 directory: $(cat "$work/err")"
chmod 755 "$work"
out=$(run run --net=none --private-users "$images/busybox.aci" --exec /bin/sh -- -c 'id -u; awk "{print \$2}" /proc/self/uid_map; echo w >/etc/w && echo writable')
set -- $out
[ "${1:-}" = 0 ] && [ "${2:-0}" -ge 16777216 ] && [ "${3:-}" = writable ] || fail "--private-users: '$out'"
run run --net=none --private-users --uuid-file-save="$work/userns" "$images/busybox.aci" --exec /bin/sleep -- 30 &
background+=($!)
for _ in $(seq 50); do [ -s "$work/userns" ] && run status "$(cat "$work/userns")" 2>/dev/null | grep -q '^pid=' && break; sleep 0.1; done
init=$(run status "$(cat "$work/userns")" | sed -n 's/^pid=//p')
host_uid=$(awk '/^Uid:/ {print $2}' "/proc/$init/status")
[ "$host_uid" -ge 16777216 ] || fail "the pod's init runs as host uid $host_uid"
[ "$(run enter "$(cat "$work/userns")" /bin/id -u)" = 0 ] || fail "enter into a pod with its own user namespace"
run stop "$(cat "$work/userns")" >/dev/null
wait "${background[-1]}"
[ -z "$(ls "$store/userns" 2>/dev/null)" ] || fail "user namespace ranges not released"

# prepare + run-prepared, rm.
prepared=$(run prepare --net=none "$images/busybox.aci" --exec /bin/true) || fail "prepare"
run list --no-legend | grep -q "^${prepared:0:8} .*prepared" || fail "list does not show the prepared pod"
run run-prepared "$prepared" || fail "run-prepared"
run rm "$prepared" >/dev/null || fail "rm"
[ ! -e "$store/pods/run/$prepared" ] || fail "rm left the pod directory"

# gc leaves nothing: no pods, no mounts, no cgroups.
run gc --grace-period=0s >/dev/null || fail "gc"
left=$(find "$store/pods" -mindepth 2 | wc -l)
[ "$left" = 0 ] || fail "gc left $left pod entries"
[ "$(wc -l </proc/self/mountinfo)" = "$mounts_before" ] || fail "mounts leaked: $(grep "$store" /proc/self/mountinfo | head -3)"
leaked=$(find /sys/fs/cgroup -maxdepth 6 -name 'coreos-pod-*' 2>/dev/null | wc -l)
[ "$leaked" = 0 ] || fail "$leaked pod cgroups left"

[ "$failures" = 0 ] || die "$failures runtime pod check(s) failed"
echo "runtime pods: all checks passed"
