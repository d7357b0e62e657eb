#!/usr/bin/env bash
# Builds the package and its tests with a sanitizer and runs the unit tests under it (not
# the live-server suites, which start the plain debug binary, nor the Raft simulation,
# which is CPU-bound and single-threaded). Usage: contrib/sanitizers/run.sh address|thread
# Prints the test summary and, for thread, each report's first frame of ours.
set -uo pipefail
cd "$(dirname "$0")/../.."
kind="${1:-}"
case "$kind" in
address) scratch=.build-asan ;;
thread) scratch=.build-tsan ;;
*) echo "usage: $0 address|thread" >&2; exit 2 ;;
esac
log="$scratch/sanitizer-tests.log"
nice -n 10 swift build --build-tests --scratch-path "$scratch" -Xswiftc -sanitize="$kind" || exit 1
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0}" ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
swift test --skip-build --scratch-path "$scratch" --parallel \
    --skip "live|RandomizedSimulationTests|EtcdClientTests|FleetRegistryTests" >"$log" 2>&1
status=$?
grep -E "^✔ Test run|^✘ Test run|tests? .*(passed|failed)" "$log" | tail -2
if [ "$kind" = thread ]; then
    reports=$(grep -c "WARNING: ThreadSanitizer" "$log")
    echo "ThreadSanitizer reports: $reports"
    # The first frame in Sources/ of each report, counted.
    awk '/WARNING: ThreadSanitizer/ { want = 1 } want && /\/Sources\// { sub(/.*\/Sources\//, "Sources/"); sub(/ \(.*/, ""); print; want = 0 }' "$log" |
        sort | uniq -c
fi
exit "$status"
