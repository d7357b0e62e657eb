#!/usr/bin/env bash
# A coverage-guided run of one coreos-fuzz target under libFuzzer with AddressSanitizer:
#   contrib/fuzz/libfuzzer.sh TARGET [libFuzzer flags...]      e.g. -max_total_time=3600
# Builds coreos-fuzz with -D LIBFUZZER into .build-fuzz (instrumented for coverage and
# ASan, linked with libFuzzer's runtime without its main: SwiftPM points main at the
# module's entry, which hands over to LLVMFuzzerRunDriver), then fuzzes from a working
# copy of the target's seeds in .build-fuzz/corpus/TARGET. New inputs that reach new code
# stay there; copy the good ones to Tests/Fuzz/Corpus/TARGET. A crash leaves crash-* in the
# current directory: replay it with `.build/debug/coreos-fuzz TARGET crash-...`.
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
target="${1:?usage: contrib/fuzz/libfuzzer.sh TARGET [libFuzzer flags]}"
shift
runtime="$(dirname "$(swift -print-target-info | sed -n 's/.*"runtimeResourcePath": "\(.*\)".*/\1/p')")/clang"
runtime="$(ls -d "$runtime"/*/lib/linux 2>/dev/null | head -1)/libclang_rt.fuzzer_no_main-x86_64.a"
[ -f "$runtime" ] || runtime="$(find "$(dirname "$(command -v swift)")/../lib" -name 'libclang_rt.fuzzer_no_main-x86_64.a' | head -1)"
[ -f "$runtime" ] || die "libclang_rt.fuzzer_no_main-x86_64.a not found in the toolchain"
swift build --product coreos-fuzz --scratch-path .build-fuzz -Xswiftc -DLIBFUZZER -Xswiftc -sanitize=address \
    -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp,indirect-calls \
    -Xlinker "$runtime" -Xlinker -lstdc++
mkdir -p ".build-fuzz/corpus/$target"
cp -n "Tests/Fuzz/Corpus/$target"/* ".build-fuzz/corpus/$target/" 2>/dev/null || true
# No LeakSanitizer: it counts once-initialized globals (the cloud-config schema, made on the
# first input) as leaks of whichever input came first, and at exit reports Foundation's
# one read buffer (`Data(contentsOf:)`) as a crash; see reliability.md.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
COREOS_FUZZ_TARGET="$target" exec .build-fuzz/debug/coreos-fuzz -rss_limit_mb=2048 -timeout=20 -detect_leaks=0 "$@" ".build-fuzz/corpus/$target"
