#!/usr/bin/env bash
# CI's fuzzing budget: every in-process target of coreos-fuzz (Sources/FuzzTargets) for a
# fixed time from its committed seeds (Tests/Fuzz/Corpus/TARGET), then random well-formed
# gRPC and v2 HTTP requests against a live `coreos etcd` (Tests/Fuzz/live-requests.py).
# A crash, a hang (one input over 20 s), memory over 1 GiB, a 5xx or an unhealthy server
# fails it. Longer runs and the libFuzzer build: Documentation/reliability.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages python3-etcd3
fuzz=.build/debug/coreos-fuzz
ours="$(pwd)/.build/debug/coreos"
seconds="${COREOS_FUZZ_SECONDS:-6}"
[ -x "$fuzz" ] || die "build first (swift build): $fuzz is missing"
work="$(mktemp -d)"
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
failed=0
for target in $("$fuzz" list | cut -f1); do
    corpus="Tests/Fuzz/Corpus/$target"
    [ -d "$corpus" ] || { echo "fuzz: FAILED: no seed corpus for $target ($corpus)"; failed=1; continue; }
    # (in $work: a crashing input is left there as crash-TARGET, and printed)
    if ! (cd "$work" && "$OLDPWD/$fuzz" "$target" --seconds "$seconds" --max-rss-mb 1024 "$OLDPWD/$corpus"); then
        echo "fuzz: FAILED: $target; the input, base64: $(base64 -w0 "$work/crash-$target" 2>/dev/null | head -c 4000)"
        failed=1
    fi
done
"$ours" etcd --data-dir "$work/etcd" --listen-client-urls http://127.0.0.1:23979 --advertise-client-urls http://127.0.0.1:23979 \
    --listen-peer-urls http://127.0.0.1:23980 --initial-advertise-peer-urls http://127.0.0.1:23980 \
    --initial-cluster default=http://127.0.0.1:23980 >"$work/etcd.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -fsS http://127.0.0.1:23979/health >/dev/null 2>&1 && break; sleep 0.1; done
if ! /usr/bin/python3 Tests/Fuzz/live-requests.py 127.0.0.1:23979 --seconds "$((seconds * 3))"; then
    tail -20 "$work/etcd.log"
    failed=1
fi
[ "$failed" = 0 ] && echo "fuzz: every target ran its budget without a crash, a hang or a runaway"
exit "$failed"
