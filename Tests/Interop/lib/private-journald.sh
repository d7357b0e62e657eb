# A systemd-journald of the test's own, without systemd as PID 1 and without touching the
# host: the caller runs in a private mount namespace (`unshare --mount --propagation
# private`); tmpfs goes over /run and /var/log/journal and journald starts on them.
# Usage, outside the namespace (the prologue of such a test):
#   . Tests/Interop/lib/private-journald.sh; private_journald_prologue
# and inside it: start_private_journald LOG-FILE (appends journald's PID to `pids`).
# shellcheck shell=bash

private_journald_prologue() {
    ours="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
    [ -x "$ours" ] || die "build first: $ours is missing"
    [ -x /lib/systemd/systemd-journald ] || die "/lib/systemd/systemd-journald is missing (package systemd)"
    [ "$(id -u)" = 0 ] || die "needs root (mount namespace)"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
}

start_private_journald() { # LOG-FILE
    mount -t tmpfs tmpfs /run
    mkdir -p /var/log/journal
    mount -t tmpfs tmpfs /var/log/journal
    /lib/systemd/systemd-journald >"$1" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do
        [ -S /run/systemd/journal/socket ] && [ -S /run/systemd/journal/stdout ] && return 0
        sleep 0.1
    done
    return 1
}
