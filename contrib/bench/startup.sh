#!/usr/bin/env bash
# Start-up time of the release binary against /bin/true and Debian's systemd-escape:
# whole-process timing with hyperfine, median of 40 runs after 3 warm-ups.
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages hyperfine
build_release >/dev/null
binary="$(release_binary)"
links="$(mktemp -d)"
json="$(mktemp)"
trap 'rm -rf "$links" "$json"' EXIT
"$binary" install-links --dir "$links" >/dev/null
hyperfine -N -w 3 -r 40 --export-json "$json" \
    '/bin/true' "$binary --version" "$links/systemd-escape --path /var/lib/etcd" \
    'systemd-escape --path /var/lib/etcd' >/dev/null
python3 - "$json" <<'PY'
import json, sys
for result in json.load(open(sys.argv[1]))["results"]:
    print(f"{result['command']:<70} median {result['median'] * 1000:7.2f} ms")
PY
