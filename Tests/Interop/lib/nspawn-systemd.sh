# systemd as PID 1 for interop tests: a Debian 12 rootfs (debootstrapped once, cached
# under /var/cache/coreos-test) booted with `systemd-nspawn --boot`, sharing the host's
# network, with the release binary bound in at /usr/local/bin/coreos.
#   nspawn_boot BINARY LOG   boots it; sets nspawn_pid and leader (PID 1 as the host numbers it)
#   inside COMMAND...        runs a command in the container
#   nspawn_stop              powers it off (cleanly, then by force)
# shellcheck shell=bash

nspawn_rootfs=/var/cache/coreos-test/nspawn-bookworm
nspawn_pid="" leader=""

nspawn_ensure_rootfs() {
    ensure_apt_packages systemd-container debootstrap
    [ "$(id -u)" = 0 ] || die "needs root for systemd-nspawn"
    if [ ! -x "$nspawn_rootfs/usr/lib/systemd/systemd" ] || [ ! -f "$nspawn_rootfs/.complete" ]; then
        log "debootstrapping a Debian 12 rootfs with systemd into $nspawn_rootfs (once)"
        rm -rf "$nspawn_rootfs" && mkdir -p "$(dirname "$nspawn_rootfs")"
        debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$nspawn_rootfs" http://deb.debian.org/debian \
            >/tmp/coreos-debootstrap.log 2>&1 || die "debootstrap failed (see /tmp/coreos-debootstrap.log)"
        touch "$nspawn_rootfs/.complete"
    fi
}

nspawn_boot() { # BINARY LOG
    nspawn_ensure_rootfs
    systemd-nspawn -D "$nspawn_rootfs" --boot --register=no --keep-unit --console=pipe --machine="coreos-test-$$" \
        --volatile=overlay --bind-ro="$1:/usr/local/bin/coreos" >"$2" 2>&1 &
    nspawn_pid=$!
    leader=""
    for _ in $(seq 200); do
        leader=$(ps --ppid "$nspawn_pid" -o pid=,comm= 2>/dev/null | awk '$2 == "systemd" { print $1 }' | head -1)
        [ -n "$leader" ] && break
        sleep 0.1
    done
    [ -n "$leader" ] || die "the container did not start: $(tail -5 "$2")"
    # systemctl needs systemd's own socket, which appears a moment after PID 1 does.
    for _ in $(seq 300); do inside test -S /run/systemd/private 2>/dev/null && break; sleep 0.1; done
}

inside() { nsenter -t "$leader" -a "$@"; }

nspawn_stop() {
    [ -n "$nspawn_pid" ] || return 0
    kill -TERM "$nspawn_pid" 2>/dev/null # a clean power-off of the container
    for _ in $(seq 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$nspawn_pid" 2>/dev/null
    nspawn_pid=""
}
