#!/usr/bin/env bash
# Bad input against `coreos etcd`, with real etcd 3.4 beside it for reference: malformed
# protobuf and unknown methods must get an error status; a message over the gRPC limit
# gets etcd's exact status; dropped connections and cut streams leave the server serving
# with every acknowledged write in place.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server python3-etcd3
ours_binary="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
work="$(mktemp -d)"
pids=()
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done; rm -rf "$work"' EXIT
etcd --data-dir "$work/reference.etcd" --listen-client-urls http://127.0.0.1:24820 --advertise-client-urls http://127.0.0.1:24820 \
    --listen-peer-urls http://127.0.0.1:24821 >"$work/reference.log" 2>&1 &
pids+=($!)
"$ours_binary" etcd --data-dir "$work/ours.etcd" --listen-client-urls http://127.0.0.1:24822 --advertise-client-urls http://127.0.0.1:24822 \
    --listen-peer-urls http://127.0.0.1:24823 >"$work/ours.log" 2>&1 &
ours=$!
pids+=($ours)
for port in 24820 24822; do
    for _ in $(seq 100); do ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:$port endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
done
failed=0
/usr/bin/python3 Tests/Interop/tools/etcd-bad-input.py 24820 >"$work/reference.out" 2>&1 || { echo "reference run failed:"; cat "$work/reference.out"; failed=1; }
/usr/bin/python3 Tests/Interop/tools/etcd-bad-input.py 24822 >"$work/ours.out" 2>&1 || { echo "our run failed:"; cat "$work/ours.out"; failed=1; }
for probe in truncated wiretype unknown-method; do
    line=$(grep "^$probe " "$work/ours.out")
    case "$line" in
    "$probe INVALID_ARGUMENT"* | "$probe INTERNAL"* | "$probe UNIMPLEMENTED"*) ;;
    *) echo "probe $probe: want an error status, got: $line"; failed=1 ;;
    esac
done
for probe in oversize still-serving; do
    if [ "$(grep "^$probe " "$work/reference.out")" != "$(grep "^$probe " "$work/ours.out")" ]; then
        echo "probe $probe differs: $(grep "^$probe " "$work/reference.out") | $(grep "^$probe " "$work/ours.out")"
        failed=1
    fi
done
kill -0 "$ours" 2>/dev/null || { echo "coreos etcd died"; failed=1; }
[ "$failed" = 0 ] && cat "$work/ours.out" && echo "etcd server bad input: all probes answered, server serving"
exit "$failed"
