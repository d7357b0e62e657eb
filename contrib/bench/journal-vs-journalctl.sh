#!/usr/bin/env bash
# coreos journal against Debian's journalctl 252 on the same journal files, in one run:
# the queries of the journal issue, best of REPS wall-clock runs each, output to
# /dev/null (so the time is the reader's, not a pipe's).
#
# The files: ENTRIES entries from Tests/Interop/tools/journal-export.py written by
# systemd-journal-remote (rotated into several files at 1M), kept in DIR between runs.
#
# Usage: contrib/bench/journal-vs-journalctl.sh [ENTRIES] [REPS] [DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages systemd-journal-remote

entries=${1:-1000000}
reps=${2:-3}
dir=${3:-/var/tmp/coreos-journal-bench-$entries}
build_release >/dev/null
ours=$(release_binary)

if [ ! -f "$dir/.complete" ]; then
    log "writing $entries entries to $dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    python3 Tests/Interop/tools/journal-export.py "$entries" 5 |
        /lib/systemd/systemd-journal-remote --split-mode=none --compress=yes --output="$dir/remote.journal" - 2>/dev/null
    touch "$dir/.complete"
fi

best() { # COMMAND...: the fastest of $reps runs, in seconds
    local fastest=""
    for _ in $(seq "$reps"); do
        local start end
        start=$(date +%s.%N)
        TZ=UTC "$@" >/dev/null 2>&1 || true
        end=$(date +%s.%N)
        fastest=$(python3 -c "a, b = '$fastest', $end - $start; print(b if not a else min(float(a), b))")
    done
    printf '%.3f' "$fastest"
}

# A one-hour window in the middle of the data.
window_start=$(TZ=UTC journalctl -D "$dir" -o short-unix -n 1 -q --no-pager | cut -d. -f1)
since=$(TZ=UTC date -d "@$((window_start - 24 * 3600))" '+%Y-%m-%d %H:%M:%S')
until=$(TZ=UTC date -d "@$((window_start - 23 * 3600))" '+%Y-%m-%d %H:%M:%S')

echo "| query (-D DIR --no-pager …) | journalctl s | coreos journal s | coreos / journalctl | goal |"
echo "|---|---|---|---|---|"
row() { # GOAL ARGS...
    local goal=$1
    shift
    local theirs ours_time
    theirs=$(best journalctl -D "$dir" --no-pager "$@")
    ours_time=$(best "$ours" journal -D "$dir" --no-pager "$@")
    printf '| `%s` | %s | %s | %s | %s |\n' "$*" "$theirs" "$ours_time" \
        "$(python3 -c "print('%.2f' % ($ours_time / max($theirs, 1e-9)))")" "$goal"
}
row "≤ 1" -u unit7 -n 100
row "≤ 1" -p err
row "≤ 1" --since "$since" --until "$until"
row "≤ 1" -o json-pretty -n 1000
row "≤ 0.6"
row "≤ 0.3" -o json
row "≤ 0.3" -u unit7 -o json
row "" -o cat
row "" -o export
row "" -g timeout
row "" -r -n 1000
