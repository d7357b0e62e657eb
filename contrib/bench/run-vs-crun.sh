#!/usr/bin/env bash
# Start-to-exit of a busybox `/bin/true` pod: `coreos run run-prepared` (a prepared pod,
# release binary) against Debian's `crun run` and `runc run` (an OCI bundle of the same
# rootfs), interleaved round-robin in one run so load affects all three alike. All three
# get new PID, mount, UTS, IPC and network namespaces. crun refuses hybrid cgroup hosts,
# so everything runs in a private mount namespace with the cgroup2 mount hidden.
# The peak RSS column is the largest process of each runtime's tree (for coreos run: the
# process that waits for the pod).
#
# Usage: contrib/bench/run-vs-crun.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages crun runc umoci skopeo busybox-static libarchive-tools
runs=${1:-200}
# COREOS_BINARY: a binary to measure instead of a fresh release build.
if [ -n "${COREOS_BINARY:-}" ]; then ours=$COREOS_BINARY; else build_release >/dev/null; ours=$(release_binary); fi
images=/var/tmp/coreos-runtime-images
Tests/Interop/tools/runtime-images.sh "$images"
work="$(mktemp -d /var/tmp/coreos-run-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle"
cp -a "$images/rootfs" "$work/bundle/rootfs"
(cd "$work/bundle" && runc spec && python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open("config.json", "w"))
PY
)
store="$work/store"
"$ours" run --dir "$store" --insecure-options=image fetch "$images/busybox.aci" >/dev/null
for i in $(seq $((runs + 5))); do
    "$ours" run --dir "$store" --insecure-options=image prepare --net=none "$images/busybox.aci" --exec /bin/true
done >"$work/uuids"

unshare --mount --propagation private python3 - "$ours" "$store" "$work" "$runs" <<'PY'
import os, statistics, subprocess, sys, time
ours, store, work, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
subprocess.run(["umount", "/sys/fs/cgroup/unified"], stderr=subprocess.DEVNULL)
uuids = open(work + "/uuids").read().split()
times = {"coreos run": [], "crun run": [], "runc run": []}
peak = {name: 0 for name in times}
def timed(name, argv, cwd=None):
    start = time.monotonic()
    child = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("%s failed: %s" % (name, argv))
    times[name].append(elapsed * 1000)
def resident(name, argv):
    # Through GNU time: a small C parent, so the figure is the runtime's and not a copy
    # of this Python process made by fork.
    result = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak[name] = max(peak[name], int(result.stderr.strip().split()[-1]))
for i in range(runs):
    timed("coreos run", [ours, "run", "--dir", store, "run-prepared", uuids[i]])
    timed("crun run", ["crun", "run", "--bundle", work + "/bundle", "c%d" % i])
    timed("runc run", ["runc", "run", "--bundle", work + "/bundle", "r%d" % i])
for i in range(runs, min(len(uuids), runs + 5)):
    resident("coreos run", [ours, "run", "--dir", store, "run-prepared", uuids[i]])
    resident("crun run", ["crun", "run", "--bundle", work + "/bundle", "cm%d" % i])
    resident("runc run", ["runc", "run", "--bundle", work + "/bundle", "rm%d" % i])
crun = statistics.median(times["crun run"])
print("%-12s %9s %9s %9s %10s %9s" % ("runtime", "min ms", "median", "p90", "vs crun", "peak MiB"))
for name, values in times.items():
    values.sort()
    print("%-12s %9.2f %9.2f %9.2f %9.2fx %9.1f" % (name, values[0], statistics.median(values), values[int(len(values) * 0.9)],
                                                   statistics.median(values) / crun, peak[name] / 1024))
PY
"$ours" run --dir "$store" gc --grace-period=0s >/dev/null
