#!/usr/bin/env bash
# coreos cloudinit --validate on growing valid configs (about 100 KB, 1 MB, 6 MB) and on
# the hostile inputs, with the release binary: best of REPS wall-clock runs and the peak
# RSS of each. Linear growth means the 1 MB and 6 MB times keep the ratio of their sizes.
#
# Usage: contrib/bench/cloudinit-validate.sh [REPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh

reps=${1:-3}
build_release >/dev/null
ours=$(release_binary)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 Tests/Interop/tools/cloudinit-inputs.py "$work"

printf '%-26s %10s %8s %9s %7s\n' input bytes status seconds MiB
for input in "$work"/sized/* "$work"/hostile/*; do
    python3 - "$ours" "$input" "$reps" <<'PY'
import os, subprocess, sys, time
binary, path, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
best, peak, code = None, 0, None
for _ in range(reps):
    start = time.monotonic()
    child = subprocess.Popen([binary, "cloudinit", "--validate", "--from-file", path],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.monotonic() - start
    best = elapsed if best is None else min(best, elapsed)
    peak = max(peak, usage.ru_maxrss)
    code = os.waitstatus_to_exitcode(status)
name = os.path.basename(os.path.dirname(path)) + "/" + os.path.basename(path)
print("%-26s %10d %8d %9.3f %7.1f" % (name, os.path.getsize(path), code, best, peak / 1024))
PY
done
