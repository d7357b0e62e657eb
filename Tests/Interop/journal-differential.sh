#!/usr/bin/env bash
# coreos journal against Debian's journalctl 252 on the same real journal files: stdout
# (JSON modes compared as parsed objects, since journalctl's key order is not stable),
# stderr's first line and the exit status, for every filter and output mode we implement,
# alone and combined. The files are written by systemd-journal-remote from entries in
# the Journal Export Format that tools/journal-export.py generates (no journald needed).
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh

ours="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
[ -x "$ours" ] || die "build first: $ours is missing"
remote=/lib/systemd/systemd-journal-remote
[ -x "$remote" ] || die "$remote is missing (apt install systemd-journal-remote)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/journal" "$work/two"
python3 Tests/Interop/tools/journal-export.py 3000 11 |
    "$remote" --split-mode=none --compress=yes --output="$work/journal/remote.journal" - 2>"$work/remote.log" ||
    die "systemd-journal-remote failed: $(cat "$work/remote.log")"
python3 Tests/Interop/tools/journal-export.py 200 12 |
    "$remote" --split-mode=none --output="$work/two/other.journal" - 2>>"$work/remote.log" ||
    die "systemd-journal-remote failed: $(cat "$work/remote.log")"

passed=0
failed=0
# run_case ARGS...: journalctl and coreos journal with the same arguments (TZ=UTC);
# UNORDERED=1 compares the lines sorted.
run_case() {
    local json=0 argument
    for argument in "$@"; do
        case "$argument" in -o*json* | --output=json* | json*) json=1 ;; esac
    done
    TZ=UTC journalctl "$@" >"$work/ref.out" 2>"$work/ref.err"
    local ref_status=$?
    TZ=UTC "$ours" journal "$@" >"$work/our.out" 2>"$work/our.err"
    local our_status=$?
    local same=1
    if [ "$json" = 1 ]; then
        python3 - "$work/ref.out" "$work/our.out" <<'EOF' || same=0
import json, sys
def objects(path):
    text = open(path, 'rb').read().decode('utf-8', 'surrogateescape')
    found, decoder, position = [], json.JSONDecoder(), 0
    text = text.replace('\x1e', '').replace('data: ', '')
    while True:
        while position < len(text) and text[position] in ' \t\r\n':
            position += 1
        if position >= len(text):
            return found
        if not text.startswith('{', position):
            end = text.find('\n', position)
            found.append(text[position:end if end >= 0 else len(text)])
            position = end + 1 if end >= 0 else len(text)
            continue
        value, position = decoder.raw_decode(text, position)
        found.append(value)
sys.exit(0 if objects(sys.argv[1]) == objects(sys.argv[2]) else 1)
EOF
    elif [ -n "${UNORDERED:-}" ]; then
        cmp -s <(sort "$work/ref.out") <(sort "$work/our.out") || same=0
    else
        cmp -s "$work/ref.out" "$work/our.out" || same=0
    fi
    [ "$ref_status" = "$our_status" ] || same=0
    if [ "$same" = 1 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: journalctl $* (status $ref_status vs $our_status)"
        diff <(head -c 3000 "$work/ref.out") <(head -c 3000 "$work/our.out") | head -10
        head -2 "$work/ref.err" "$work/our.err"
    fi
}

D=(-D "$work/journal" --no-pager)
for mode in short short-full short-iso short-iso-precise short-precise short-monotonic short-unix with-unit \
    verbose export json json-pretty json-sse json-seq cat; do
    run_case "${D[@]}" -o "$mode"
    run_case "${D[@]}" -o "$mode" -n 25 -a
done
run_case "${D[@]}"
run_case "${D[@]}" -q
run_case "${D[@]}" --no-hostname -n 50
run_case "${D[@]}" --utc -o short-full -n 20
run_case "${D[@]}" -n
run_case "${D[@]}" -n 0
run_case "${D[@]}" -n 7 -r
run_case "${D[@]}" -o short-delta -n 40
run_case "${D[@]}" -r
run_case "${D[@]}" -u unit7
run_case "${D[@]}" -u unit7.service -n 100
run_case "${D[@]}" -u 'unit1*'
run_case "${D[@]}" -u unit3 -u unit4 -o json
run_case "${D[@]}" -u nosuchunit
run_case "${D[@]}" -t unit5d -t unit6d
run_case "${D[@]}" -p err
run_case "${D[@]}" -p 2..4
run_case "${D[@]}" -p warning..err -o cat
run_case "${D[@]}" -p nonsense
run_case "${D[@]}" _SYSTEMD_UNIT=unit2.service
run_case "${D[@]}" _SYSTEMD_UNIT=unit2.service _SYSTEMD_UNIT=unit3.service PRIORITY=6
run_case "${D[@]}" _PID=1007 + _SYSTEMD_UNIT=unit7.service
run_case "${D[@]}" TAG=alpha -o json
run_case "${D[@]}" BLOB= -o export
run_case "${D[@]}" notamatch
# Path operands: an executable (_EXE=), a script (_COMM= and its interpreter), a device
# node (_KERNEL_DEVICE=), a missing path, a plain file.
printf '#!/bin/sh\necho\n' >"$work/unit-script"
chmod +x "$work/unit-script"
run_case "${D[@]}" /usr/bin/env
run_case "${D[@]}" /usr/bin/env -o json -n 5
run_case "${D[@]}" "$work/unit-script"
run_case "${D[@]}" /dev/null
run_case "${D[@]}" /usr/bin/no-such-binary
run_case "${D[@]}" /etc/hostname
run_case "${D[@]}" -k
run_case "${D[@]}" -g timeout
run_case "${D[@]}" -g timeout -n 3
run_case "${D[@]}" -g 'Timeout'
run_case "${D[@]}" -g 'TIMEOUT' --case-sensitive=false -o cat
run_case "${D[@]}" -g 'ünïcödé|bell' -u unit3
run_case "${D[@]}" -g 'request \d+ took 9\d\d ms$' -o json
run_case "${D[@]}" -g NOMATCHXYZ
run_case "${D[@]}" -g '('
run_case "${D[@]}" --list-boots
run_case "${D[@]}" -b
run_case "${D[@]}" -b -1 -n 20
run_case "${D[@]}" -b 1 -o short-monotonic
run_case "${D[@]}" -b all -n 5
run_case "${D[@]}" -b 5
run_case "${D[@]}" -b -2 -p err -o json
run_case "${D[@]}" -F _SYSTEMD_UNIT
run_case "${D[@]}" -F _HOSTNAME
run_case "${D[@]}" --since '2000-01-01' --until '2000-01-02'
run_case "${D[@]}" --since '-6h'
run_case "${D[@]}" --since today -o short-iso
run_case "${D[@]}" --since yesterday --until today -p err
run_case "${D[@]}" --until '-30h' -r -n 5
run_case "${D[@]}" --output-fields=MESSAGE,_PID -o json -n 30
# journalctl prints cat's fields in its hash set's order, which changes from run to run.
UNORDERED=1 run_case "${D[@]}" --output-fields=_PID,MESSAGE -o cat -n 30
run_case "${D[@]}" --output-fields=MESSAGE -o export -n 10
run_case "${D[@]}" --show-cursor -n 3
run_case "${D[@]}" -N
run_case "${D[@]}" -x
LANG=C.UTF-8 run_case "${D[@]}" -x -o verbose
LC_ALL=POSIX run_case "${D[@]}" -x -o short-iso
run_case "${D[@]}" -x -o json -n 100
run_case "${D[@]}" --header
run_case --file "$work/two/other.journal" --file "$work/journal/remote.journal" --header --utc
run_case "${D[@]}" --disk-usage
run_case "${D[@]}" --utc -o verbose -n 30
# --cursor-file: the first run saves its last cursor, the second starts after it.
for side in ref our; do
    rm -f "$work/$side.cursor"
    command=(journalctl)
    [ "$side" = our ] && command=("$ours" journal)
    {
        TZ=UTC "${command[@]}" "${D[@]}" -n 5 --cursor-file="$work/$side.cursor"
        TZ=UTC "${command[@]}" "${D[@]}" -b -1 -n 2 --cursor-file="$work/$side.cursor"
        cat "$work/$side.cursor"
    } >"$work/$side.cursor-run" 2>&1
done
if cmp -s "$work/ref.cursor-run" "$work/our.cursor-run"; then passed=$((passed + 1)); else
    failed=$((failed + 1))
    echo "FAIL: --cursor-file"
    diff "$work/ref.cursor-run" "$work/our.cursor-run" | head -5
fi
# A planted symlink where a fixed temporary name would be is not followed.
echo victim >"$work/victim"
ln -sf "$work/victim" "$work/planted.cursor.tmp"
"$ours" journal "${D[@]}" -n 1 --cursor-file="$work/planted.cursor" >/dev/null 2>&1
if [ "$(cat "$work/victim")" = victim ] && [ -s "$work/planted.cursor" ] && [ ! -L "$work/planted.cursor" ]; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "FAIL: --cursor-file wrote through a planted symlink"
fi
run_case "${D[@]}" -o bogus
run_case -D "$work/nonexistent" --no-pager
run_case --file "$work/journal/*.journal" --no-pager -n 40
run_case --file "$work/two/other.journal" --file "$work/journal/remote.journal" --no-pager -o short-unix -n 300
cursor=$(TZ=UTC journalctl "${D[@]}" -n 1 --show-cursor -q | sed -n 's/^-- cursor: //p')
first=$(TZ=UTC journalctl "${D[@]}" -o export | sed -n 's/^__CURSOR=//p' | sed -n 100p)
run_case "${D[@]}" --after-cursor "$first" -n 5
run_case "${D[@]}" -c "$first" -n 5
run_case "${D[@]}" --after-cursor "$cursor"

# On a terminal (script(1) gives one): journalctl's colors, --no-pager so that both
# write straight to it.
run_tty_case() {
    local quoted
    quoted=$(printf '%q ' "$@")
    TZ=UTC script -qc "journalctl $quoted --no-pager" /dev/null >"$work/ref.tty" 2>&1
    TZ=UTC script -qc "$ours journal $quoted --no-pager" /dev/null >"$work/our.tty" 2>&1
    if cmp -s "$work/ref.tty" "$work/our.tty"; then passed=$((passed + 1)); else
        failed=$((failed + 1))
        echo "FAIL (terminal): journalctl $*"
        diff <(cat -v "$work/ref.tty") <(cat -v "$work/our.tty") | head -6
    fi
}
if command -v script >/dev/null; then
    run_tty_case -D "$work/journal"
    run_tty_case -D "$work/journal" -o cat -p 0..5
    run_tty_case -D "$work/journal" -o verbose -n 50
    run_tty_case -D "$work/journal" -g 'request|line' -p 0..5
    run_tty_case -D "$work/journal" -x -o with-unit
    run_tty_case -D "$work/journal" -u nothing
    NO_COLOR=1 run_tty_case -D "$work/journal" -n 20 -p 3
fi

# On a terminal, output goes through the pager ($SYSTEMD_PAGER here); --no-pager and a
# pipe bypass it.
if command -v script >/dev/null; then
    paged=$(SYSTEMD_PAGER='sed s/^/PAGED:/' script -qc "$ours journal -D $work/journal -n 3" /dev/null | tr -d '\r')
    unpaged=$(SYSTEMD_PAGER='sed s/^/PAGED:/' script -qc "$ours journal -D $work/journal -n 3 --no-pager" /dev/null | tr -d '\r')
    if [ "$(grep -c '^PAGED:' <<<"$paged")" = 3 ] && ! grep -q PAGED <<<"$unpaged"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: pager: '$paged' / '$unpaged'"
    fi
fi

# The heavy ones, on a big set outside CI (JOURNAL_HEAVY_DIR, such as the 1M-entry set
# contrib/bench/journal-vs-journalctl.sh leaves in /var/tmp).
if [ -n "${JOURNAL_HEAVY_DIR:-}" ]; then
    H=(-D "$JOURNAL_HEAVY_DIR" --no-pager)
    run_case "${H[@]}"
    run_case "${H[@]}" -u unit7 -o json
    run_case "${H[@]}" -p err -o short-iso-precise
    run_case "${H[@]}" -b -1 -o export
    run_case "${H[@]}" -u 'unit1*' -o cat
    run_case "${H[@]}" -g 'TIMEOUT' --case-sensitive=no -n 500
fi

echo "journal differential: $passed passed, $failed failed"
[ "$failed" = 0 ]
