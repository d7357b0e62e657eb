#!/usr/bin/env bash
# CI's short run of the robustness suite (Tests/Robustness): every fault once against a
# three-member cluster of ours, the partition faults against five members, and then the
# proof that the checks can fail: with a bug injected on purpose (a linearizable read
# served without ReadIndex; a leader committing without a quorum) the same suite must
# report a violation. The long run is documented in Documentation/reliability.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
[ "$(id -u)" = 0 ] || die "needs root"
binary="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
failed=0
suite() { # DESCRIPTION ARGS...
    local description="$1"
    shift
    log "robustness: $description"
    if ! Tests/Robustness/run.sh --binary "$binary" --fault-seconds 4 "$@"; then
        echo "robustness: FAILED: $description"
        failed=1
    fi
}
suite "3 members, every fault" --members 3
suite "5 members, partitions" --members 5 --faults kill_leader,leader_in_minority,minority_partition,no_quorum,asymmetric
suite "injected: read without ReadIndex" --members 3 --faults isolate_leader,minority_partition \
    --inject read-without-readindex --expect-violation
suite "injected: commit without quorum" --members 3 --faults isolate_leader \
    --inject commit-without-quorum --expect-violation
[ "$failed" = 0 ] && echo "robustness: every run as expected"
exit "$failed"
