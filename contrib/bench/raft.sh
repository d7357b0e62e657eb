#!/usr/bin/env bash
# Raft and Storage benchmarks (release build): core throughput of 3 in-memory members at
# batch 1 and 64; acknowledged WAL appends per second with fsync at 1, 16 and 128
# concurrent proposers next to this disk's floor (one fdatasync per append); and the time
# to open a data directory holding 1 million entries.
# Usage: contrib/bench/raft.sh [SECONDS] [ENTRIES]   (data goes to /var/tmp)
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
seconds="${1:-3}"
entries="${2:-1000000}"
swift build -c release --scratch-path "$COREOS_RELEASE_SCRATCH" --product coreos-bench >/dev/null
bench="$COREOS_RELEASE_SCRATCH/release/coreos-bench"
"$bench" raft-core --nodes 3 --batch 1 --seconds "$seconds"
"$bench" raft-core --nodes 3 --batch 64 --seconds "$seconds"
"$bench" wal --proposers 1,16,128 --seconds "$seconds"
"$bench" recovery --entries "$entries"
