#!/usr/bin/env bash
# fleetd with systemd as PID 1: a Debian 12 rootfs (debootstrapped once, cached under
# /var/cache/coreos-test) booted with `systemd-nspawn --boot`, the release binary bound
# into it, fleetd inside talking to that systemd over D-Bus (sd-bus), etcd and fleetctl on
# the host (the container shares the host's network). Checks what fleet does through
# systemd: the unit file in /run/fleet/units, linked at runtime, enabled (runtime) only with
# an [Install] section, started and stopped with mode replace, states from systemd's
# signals, journal and status from the machine, and destroy leaving nothing behind.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
. Tests/Interop/lib/checks.sh
. Tests/Interop/lib/nspawn-systemd.sh
ensure_apt_packages curl
nspawn_ensure_rootfs
build_release >/dev/null || die "release build failed"
binary="$(pwd)/$(release_binary)"
work="$(mktemp -d)"
machine_id=5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d
port=27480
etcd_pid=""
cleanup() {
    pkill -f "coreos fleet --machine-id $machine_id" 2>/dev/null
    nspawn_stop
    [ -n "$etcd_pid" ] && kill "$etcd_pid" 2>/dev/null
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] && { echo "kept $work"; return; }
    rm -rf "$work"
}
trap cleanup EXIT

"$binary" etcd --name solo --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$port" \
    --advertise-client-urls "http://127.0.0.1:$port" --listen-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" --initial-cluster "solo=http://127.0.0.1:$((port + 1))" >"$work/etcd.log" 2>&1 &
etcd_pid=$!
nspawn_boot "$binary" "$work/boot.log"
check "systemd boots in the container" 0 timeout 60 nsenter -t "$leader" -a systemctl is-system-running --wait
check "... as PID 1" 0 test "$(inside cat /proc/1/comm)" = systemd

inside /usr/local/bin/coreos fleet --machine-id "$machine_id" --etcd_servers "http://127.0.0.1:$port" \
    --listen "http://127.0.0.1:$((port + 2))" --public_ip 127.0.0.2 >"$work/fleet.log" 2>&1 &
fleetctl() { "$binary" fleetctl --endpoint "http://127.0.0.1:$((port + 2))" "$@"; }
for _ in $(seq 100); do [ "$(fleetctl list-machines --no-legend 2>/dev/null | wc -l)" = 1 ] && break; sleep 0.1; done
check "fleetd registers from inside the container" 0 test "$(fleetctl list-machines --no-legend | wc -l)" = 1

cd "$work" || die "no work directory"
printf '[Unit]\nDescription=Hello from fleet\n\n[Service]\nExecStart=/bin/sh -c "while :; do echo hello from systemd; sleep 0.5; done"\n\n[Install]\nWantedBy=multi-user.target\n' >hello.service
printf '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n' >once.service
check "fleetctl start through systemd" 0 fleetctl start hello.service once.service
check "... reports both launched" 0 test "$(grep -c "launched on 5d5d5d5d.../127.0.0.2" last.out)" = 2
check "the unit file is in /run/fleet/units" 0 inside test -f /run/fleet/units/hello.service
check "... linked into systemd's runtime path" 0 test "$(inside readlink /run/systemd/system/hello.service)" = /run/fleet/units/hello.service
check "a unit with [Install] is enabled at runtime" 0 test "$(inside systemctl is-enabled hello.service)" = enabled-runtime
check "a unit without [Install] is only linked" 0 test "$(inside systemctl is-enabled once.service)" = linked-runtime
check "systemd runs it" 0 test "$(inside systemctl is-active hello.service)" = active
check "systemd's own view: loaded from the link" 0 bash -c "nsenter -t $leader -a systemctl show -p FragmentPath hello.service | grep -qx FragmentPath=/run/systemd/system/hello.service"
check "list-units shows systemd's states" 0 fleetctl list-units --no-legend --fields unit,load,active,sub
check "... running" 0 grep -q "^hello.service	*loaded	*active	*running$" last.out
check "... and exited" 0 grep -q "^once.service	*loaded	*active	*exited$" last.out
sleep 1
check "journal reads systemd's journal on the machine" 0 fleetctl journal --lines 2 hello.service
check "... with the unit's lines" 0 test "$(grep -c 'sh\[[0-9]*\]: hello from systemd' last.out)" = 2
check "status too" 0 fleetctl status hello.service
check "... showing it active and its main PID" 0 bash -c "grep -q 'Active: active (running)' last.out && grep -q 'Main PID: [0-9]' last.out"
check "a unit stopped behind fleet's back is seen from systemd's signals" 0 inside systemctl stop once.service
for _ in $(seq 50); do fleetctl list-units --no-legend --fields unit,active | grep -q "^once.service	*inactive" && break; sleep 0.1; done
check "... within moments" 0 bash -c "'$binary' fleetctl --endpoint http://127.0.0.1:$((port + 2)) list-units --no-legend --fields unit,active | grep -q '^once.service	*inactive'"
check "fleetctl stop stops it in systemd" 0 fleetctl stop hello.service
check "... as systemd says" 0 test "$(inside systemctl is-active hello.service)" = inactive
check "destroy" 0 fleetctl destroy hello.service once.service
for _ in $(seq 50); do inside test -e /run/systemd/system/hello.service || break; sleep 0.1; done
check "... removes the link" 1 inside test -e /run/systemd/system/hello.service
check "... and the enablement" 1 inside test -e /run/systemd/system/multi-user.target.wants/hello.service
check "... and the file" 1 inside test -e /run/fleet/units/hello.service
echo "fleet on systemd: $passed passed, $failed failed"
[ "$failed" = 0 ]
