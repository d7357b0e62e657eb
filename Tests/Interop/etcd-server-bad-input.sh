#!/usr/bin/env bash
# Bad input against `coreos etcd`, with real etcd 3.4 beside it for reference: malformed
# protobuf and unknown methods must get an error status; a message over the gRPC limit
# gets etcd's exact status; dropped connections and cut streams leave the server serving
# with every acknowledged write in place.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server python3-etcd3 curl
. Tests/Interop/lib/server-pair.sh
start_server_pair 24820 24822
ours=$ours_pid
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
