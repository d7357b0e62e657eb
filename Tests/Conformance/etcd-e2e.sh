#!/usr/bin/env bash
# etcd 3.4.23's own end-to-end suite (go.etcd.io/etcd/tests/e2e) against `coreos etcd`.
#
# The suite is etcd's, unchanged: Debian's golang-etcd-server-dev ships its sources, Debian's
# Go builds its test binary offline (GOPATH mode, cached), and it runs with -bin-dir pointing
# at a directory where `etcd` is a symlink to the server under test and `etcdctl` is
# Debian's real etcdctl 3.4. No wrapper: the harness starts our binary exactly as it starts
# etcd. The harness binds fixed ports (20000 and up), so every test runs alone in a network
# namespace of its own, and several run at once.
#
# Only the tests that pass on etcd 3.4 here count (Tests/Conformance/etcd-e2e.expected,
# measured with --server etcd --record). Tests that read or write etcd's on-disk formats
# (bbolt snapshots, v2 backups) belong to the data-format issue and are reported apart
# (etcd-e2e.data-format); so are the tests still open on ours (etcd-e2e.open), which are run and
# reported but do not fail the run: a test in neither list that fails does.
#
# Usage: etcd-e2e.sh [--server coreos|etcd] [--binary PATH] [--jobs N] [--run REGEX]
#                    [--record] [--timeout SECONDS] [--keep-logs DIR]
#   --record    with --server etcd: write the tests that pass to etcd-e2e.expected.
# The whole suite takes about two minutes on two cores (three tests at a time), so CI runs
# all of it.
# Prints a line per test and closes with "N passed, M failed".
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
. contrib/lib/common.sh

server=coreos
binary=""
jobs=3
run_regex=""
record=0
timeout_seconds=300
keep_logs=""
while [ $# -gt 0 ]; do
    case "$1" in
    --server) server="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --run) run_regex="$2"; shift 2 ;;
    --record) record=1; shift ;;
    --timeout) timeout_seconds="$2"; shift 2 ;;
    --keep-logs) keep_logs="$2"; shift 2 ;;
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
case "$server" in coreos | etcd) ;; *) die "--server is coreos or etcd" ;; esac

ensure_apt_packages golang-go golang-etcd-server-dev etcd-server etcd-client iproute2 curl
gosrc=/usr/share/gocode
e2e_src="$gosrc/src/go.etcd.io/etcd/tests/e2e"
fixtures="$gosrc/src/go.etcd.io/etcd/integration/fixtures"
[ -d "$e2e_src" ] || die "etcd's e2e sources are not at $e2e_src"

# The test binary, built once per etcd sources and Go version.
cache="${XDG_CACHE_HOME:-${HOME:-/var/cache}/.cache}/coreos/etcd-e2e"
key=$( (dpkg-query -W -f='${Version}' golang-etcd-server-dev; go version) | sha256sum | cut -c1-16)
e2e_bin="$cache/e2e-$key.test"
if [ ! -x "$e2e_bin" ]; then
    log "building etcd's e2e test binary (once; cached in $cache)"
    mkdir -p "$cache"
    GOPATH="$gosrc" GO111MODULE=off GOCACHE="$cache/gocache" GOFLAGS="" \
        go test -c -o "$e2e_bin.partial" go.etcd.io/etcd/tests/e2e || die "go test -c of etcd's e2e suite failed"
    mv "$e2e_bin.partial" "$e2e_bin"
fi

if [ "$server" = coreos ]; then
    if [ -z "$binary" ]; then
        build_release >/dev/null || die "the release build failed"
        binary="$(release_binary)"
    fi
else
    binary="${binary:-/usr/bin/etcd}"
fi
binary="$(readlink -f "$binary")"
[ -x "$binary" ] || die "no server binary at $binary"

work="$(mktemp -d /tmp/etcd-e2e.XXXXXX)"
namespaces=()
cleanup() {
    local job
    for job in $(jobs -p); do kill -- "$job" 2>/dev/null; done
    wait 2>/dev/null
    local ns
    for ns in "${namespaces[@]}"; do
        # Whatever a test left running in its namespace goes with it.
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns delete "$ns" 2>/dev/null
    done
    if [ -n "$keep_logs" ]; then mkdir -p "$keep_logs" && cp -r "$work/logs/." "$keep_logs/"; fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/bin" "$work/logs"
ln -s "$binary" "$work/bin/etcd"
ln -s /usr/bin/etcdctl "$work/bin/etcdctl"

# The tests: every top-level test in the binary, sorted, filtered.
mapfile -t all_tests < <("$e2e_bin" -test.list '.*' | grep '^Test' | sort)
list_file() { grep -v '^#' "$here/$1" 2>/dev/null | awk 'NF { print $1 }'; }
declare -A expected=() data_format=() open=()
for name in $(list_file etcd-e2e.expected); do expected[$name]=1; done
for name in $(list_file etcd-e2e.data-format); do data_format[$name]=1; done
for name in $(list_file etcd-e2e.open); do open[$name]=1; done
selected=()
for name in "${all_tests[@]}"; do
    [ -n "$run_regex" ] && ! [[ $name =~ $run_regex ]] && continue
    if [ "$record" -eq 0 ] && [ ${#expected[@]} -gt 0 ] && [ -z "${expected[$name]:-}" ]; then continue; fi
    selected+=("$name")
done
log "etcd e2e: ${#selected[@]} tests against $server ($binary), $jobs at a time"

# run_one INDEX NAME: the test alone in a fresh network namespace with loopback up.
run_one() {
    local index="$1" name="$2" ns="coreos-e2e-$$-$1" dir="$work/run/$1" began=$SECONDS status
    # The tests name files relative to tests/e2e in etcd's tree (../../integration/fixtures,
    # ../../etcd.conf.yml.sample): the same layout, with what they write kept apart.
    mkdir -p "$dir/tests/e2e"
    ln -s "$gosrc/src/go.etcd.io/etcd/integration" "$dir/integration"
    ln -s "$here/etcd.conf.yml.sample" "$dir/etcd.conf.yml.sample"
    ip netns add "$ns" && ip -n "$ns" link set lo up || { echo "FAIL 0 $name" >"$work/result.$index"; return; }
    (
        cd "$dir/tests/e2e" && exec timeout -k 10 "$timeout_seconds" ip netns exec "$ns" \
            env -u ETCDCTL_API -u ETCD_NAME TMPDIR="$dir" \
            "$e2e_bin" -test.run "^${name}\$" -test.v -test.timeout "$((timeout_seconds - 5))s" \
            -bin-dir "$work/bin" -cert-dir "$fixtures"
    ) >"$work/logs/$name.log" 2>&1
    status=$?
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns delete "$ns" 2>/dev/null
    rm -rf "$dir"
    # Passed: the test's own verdict, and the binary's (a leaked goroutine fails it after).
    if [ $status -eq 0 ] && grep -q "^--- PASS: ${name} " "$work/logs/$name.log"; then
        echo "PASS $((SECONDS - began)) $name" >"$work/result.$index"
    elif [ $status -eq 0 ] && grep -q "^--- SKIP: ${name} " "$work/logs/$name.log"; then
        echo "SKIP $((SECONDS - began)) $name" >"$work/result.$index"
    else
        echo "FAIL $((SECONDS - began)) $name" >"$work/result.$index"
    fi
}

running=0
index=0
began=$SECONDS
for name in "${selected[@]}"; do
    index=$((index + 1))
    namespaces+=("coreos-e2e-$$-$index")
    run_one "$index" "$name" &
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

# A failure outside the known lists gets one more run, alone: etcd's suite has tests that
# fail now and then on etcd itself here (seen: TestCtlV3AuthAndWatchJWT, TestCtlV3UserListNoTLS).
# A pass on the second run is reported as such.
retried=()
for ((i = 1; i <= index; i++)); do
    read -r verdict _ name <"$work/result.$i" 2>/dev/null || continue
    [ "$verdict" = FAIL ] || continue
    [ -n "${data_format[$name]:-}${open[$name]:-}" ] && continue
    [ "$record" -eq 1 ] && continue
    mv "$work/logs/$name.log" "$work/logs/$name.first.log"
    namespaces+=("coreos-e2e-$$-$i")
    run_one "$i" "$name"
    read -r verdict _ _ <"$work/result.$i"
    [ "$verdict" = PASS ] && retried+=("$name")
done

passed=0 failed=0 skipped=0 known=0 regressions=() recorded=()
for ((i = 1; i <= index; i++)); do
    read -r verdict seconds name <"$work/result.$i" || { verdict=FAIL seconds=0 name="${selected[$((i - 1))]}"; }
    kind=""
    [ -n "${data_format[$name]:-}" ] && kind=" (data formats: known)"
    [ -z "$kind" ] && [ -n "${open[$name]:-}" ] && kind=" (open: known)"
    [[ " ${retried[*]} " == *" $name "* ]] && kind=" (on its second run)"
    if [ "$verdict" = PASS ] && [ -n "${data_format[$name]:-}${open[$name]:-}" ]; then
        kind=" (listed as known: take it off the list)"
    fi
    printf '%-4s %4ss  %s%s\n' "$verdict" "$seconds" "$name" "$kind"
    if [ "$verdict" = PASS ]; then
        passed=$((passed + 1))
        recorded+=("$name")
    elif [ "$verdict" = SKIP ]; then
        skipped=$((skipped + 1))
    else
        failed=$((failed + 1))
        if [ -n "$kind" ]; then known=$((known + 1)); else regressions+=("$name"); fi
        if [ -n "$keep_logs" ] || [ -z "$kind" ]; then
            echo "---- last lines of $name:"
            tail -n 25 "$work/logs/$name.log" | sed 's/^/    /'
        fi
    fi
done

if [ "$record" -eq 1 ]; then
    [ "$server" = etcd ] || die "--record is for --server etcd"
    {
        echo "# etcd 3.4 e2e tests that pass on Debian's etcd $(dpkg-query -W -f='${Version}' etcd-server) here,"
        echo "# recorded by: Tests/Conformance/etcd-e2e.sh --server etcd --record ($(date -u +%F))"
        printf '%s\n' "${recorded[@]}"
    } >"$here/etcd-e2e.expected"
    log "recorded ${#recorded[@]} passing tests in $here/etcd-e2e.expected"
fi

echo "etcd e2e against $server: ${#selected[@]} tests in $((SECONDS - began)) s; $skipped skipped (etcd skips them here), $known known failures (data formats or open), ${#regressions[@]} unexpected"
for name in "${regressions[@]}"; do echo "UNEXPECTED FAILURE: $name"; done
echo "$passed passed, $failed failed, $skipped skipped"
[ ${#regressions[@]} -eq 0 ]
