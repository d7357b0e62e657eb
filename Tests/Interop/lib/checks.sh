# Counted checks for interop scripts, in the current directory: `check DESCRIPTION
# EXPECTED-STATUS COMMAND...` runs the command with its output in ./out and ./err (copied
# to ./last.out and ./last.err for the next check to inspect) and
# counts it in `passed` or `failed`, printing the first lines of a failure (client log
# lines in JSON, as etcdctl's warnings, left out).
# shellcheck shell=bash

. "$(dirname "${BASH_SOURCE[0]}")/wait.sh"

passed=0
failed=0
check() { # description expected-status command...
    local description="$1" expected="$2"
    shift 2
    "$@" >out 2>err
    local status=$?
    # Copies later checks can read (a check of `grep … out` would truncate out first);
    # checks that read them keep them for the next one.
    case " $* " in
    *" last.out "* | *" last.err "*) ;;
    *) cp out last.out && cp err last.err ;;
    esac
    if [ "$status" = "$expected" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: $description (exit $status, wanted $expected): $(cat out err | grep -v '^{"level"' | head -3)"
    fi
}
