# shellcheck shell=bash
wait_for() { # SECONDS COMMAND...: until the command succeeds; false if it never did in time
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.1
    done
}
