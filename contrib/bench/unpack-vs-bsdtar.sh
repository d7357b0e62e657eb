#!/usr/bin/env bash
# Rendering one large rootfs layer into tmpfs: `coreos run image render` (libarchive in
# one pass, with the blob digest and the diff_id checked) against `bsdtar -xf` (libarchive,
# no checks) and `umoci unpack`. The layer is built once from this machine's
# /usr/lib/python3, /usr/share/perl, man and locale (about 330 MB in 30k files, 113 MB
# gzip'ed; Debian minbase is 122 MB, 51 MB gzip'ed), kept in /var/tmp between runs. Best
# and median of REPS runs each, interleaved.
#
# Usage: contrib/bench/unpack-vs-bsdtar.sh [REPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages umoci libarchive-tools
reps=${1:-5}
if [ -n "${COREOS_BINARY:-}" ]; then ours=$COREOS_BINARY; else build_release >/dev/null; ours=$(release_binary); fi
data=/var/tmp/coreos-unpack-bench
if [ ! -f "$data/.complete" ]; then
    rm -rf "$data"
    mkdir -p "$data"
    (cd "$data" && umoci init --layout oci >/dev/null && umoci new --image oci:big >/dev/null &&
        umoci unpack --image oci:big work >/dev/null &&
        mkdir -p work/rootfs/usr/lib work/rootfs/usr/share && cp -a /usr/lib/python3 work/rootfs/usr/lib/ && cp -a /usr/share/perl /usr/share/man /usr/share/locale work/rootfs/usr/share/ &&
        umoci repack --image oci:big work >/dev/null && rm -rf work)
    layer=$(python3 -c "
import json
layout = '$data/oci'
index = json.load(open(layout + '/index.json'))
manifest = json.load(open(layout + '/blobs/sha256/' + index['manifests'][0]['digest'].split(':')[1]))
print(layout + '/blobs/sha256/' + manifest['layers'][-1]['digest'].split(':')[1])")
    ln -s "$layer" "$data/layer.tar.gz"
    touch "$data/.complete"
fi
store="$data/store"
image=$("$ours" run --dir "$store" fetch "oci:$data/oci:big")
scratch=/dev/shm/coreos-unpack-bench
trap 'rm -rf "$scratch"' EXIT
python3 - "$ours" "$store" "$image" "$data" "$scratch" "$reps" <<'PY'
import os, shutil, statistics, subprocess, sys, time
ours, store, image, data, scratch, reps = sys.argv[1:7]
reps = int(reps)
commands = {
    "coreos run image render": lambda out: [ours, "run", "--dir", store, "image", "render", image, out],
    "bsdtar -xf": lambda out: ["sh", "-c", "mkdir -p %s && bsdtar -xf %s/layer.tar.gz -C %s" % (out, data, out)],
    "umoci unpack": lambda out: ["umoci", "unpack", "--image", data + "/oci:big", out],
}
times = {name: [] for name in commands}
for _ in range(reps):
    for name, make in commands.items():
        shutil.rmtree(scratch, ignore_errors=True)
        os.makedirs(scratch)
        out = scratch + "/out"
        start = time.monotonic()
        subprocess.run(make(out), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[name].append(time.monotonic() - start)
layer = os.path.getsize(os.path.realpath(data + "/layer.tar.gz"))
print("layer: %.1f MB gzip'ed" % (layer / 1e6))
bsdtar = statistics.median(times["bsdtar -xf"])
print("%-26s %8s %8s %10s" % ("extractor", "best s", "median", "vs bsdtar"))
for name, values in times.items():
    print("%-26s %8.3f %8.3f %9.2fx" % (name, min(values), statistics.median(values), statistics.median(values) / bsdtar))
PY
