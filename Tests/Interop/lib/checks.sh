# Counted checks for interop scripts, in the current directory: `check DESCRIPTION
# EXPECTED-STATUS COMMAND...` runs the command with its output in ./out and ./err and
# counts it in `passed` or `failed`, printing the first lines of a failure (client log
# lines in JSON, as etcdctl's warnings, left out).
# shellcheck shell=bash

passed=0
failed=0
check() { # description expected-status command...
    local description="$1" expected="$2"
    shift 2
    "$@" >out 2>err
    local status=$?
    if [ "$status" = "$expected" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: $description (exit $status, wanted $expected): $(cat out err | grep -v '^{"level"' | head -3)"
    fi
}
