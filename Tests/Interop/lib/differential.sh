# Shared harness of the etcdctl differential tests: two etcd 3.4 members with identical
# identity (same name, advertised peer URL and token, so the same cluster and member IDs
# and, command after command, the same revisions and indexes), one for Debian's etcdctl
# and one for ours; run_case compares stdout, stderr and exit status after masking.
# The caller sets DIFFERENTIAL_TOKEN, REFERENCE_PORT, OUR_PORT, and may set
# DIFFERENTIAL_ETCD_FLAGS (extra etcd flags) and DIFFERENTIAL_SCHEME (endpoint prefix);
# REFERENCE_PREFIX and OUR_PREFIX (arrays) run each side inside something, such as
# `ip netns exec NS`; OUR_ETCDCTL replaces our etcdctl (to test our server with Debian's).
# shellcheck shell=bash

ours_binary="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
[ -x "$ours_binary" ] || die "build first: $ours_binary is missing"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
ln -s "$ours_binary" "$work/etcdctl"

# DIFFERENTIAL_SERVER=coreos runs both twins on `coreos etcd` instead of etcd 3.4.
twin_server=(etcd)
[ "${DIFFERENTIAL_SERVER:-etcd}" = coreos ] && twin_server=("$ours_binary" etcd)
start_member() { # name client_port peer_port
    # shellcheck disable=SC2086
    "${twin_server[@]}" --name twin --data-dir "$work/$1.etcd" ${DIFFERENTIAL_ETCD_FLAGS:-} \
        --listen-client-urls "http://127.0.0.1:$2" --advertise-client-urls "http://127.0.0.1:$2" \
        --listen-peer-urls "http://127.0.0.1:$3" --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster twin=http://127.0.0.1:2380 --initial-cluster-token "$DIFFERENTIAL_TOKEN" \
        --initial-cluster-state new >"$work/$1.log" 2>&1 &
    pids+=($!)
}
start_twins() {
    start_member reference "$REFERENCE_PORT" $((REFERENCE_PORT + 1))
    start_member ours "$OUR_PORT" $((OUR_PORT + 1))
    for port in "$REFERENCE_PORT" "$OUR_PORT"; do
        for _ in $(seq 100); do
            ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:$port endpoint health >/dev/null 2>&1 && break
            sleep 0.1
        done
    done
}

REFERENCE_PREFIX=()
OUR_PREFIX=()
passed=0
failed=0
# run_case STDIN_FILE ARGS... : the same command against both members.
# With DIFFERENTIAL_SERVER=coreos, cases for what `coreos etcd` does not serve yet (auth,
# membership changes: later issues) and for bbolt snapshot files (ours are another format
# by design) are skipped and counted, not compared.
skipped=0
coreos_skips='(^| )(user|role|auth) |--user=|member (add|remove|update|promote)|snapshot status'
run_case() {
    local input="$1"
    shift
    if [ "${DIFFERENTIAL_SERVER:-etcd}" = coreos ] && [[ "$*" =~ $coreos_skips ]]; then
        skipped=$((skipped + 1))
        return
    fi
    local expected_rc actual_rc
    local reference_endpoint="${REFERENCE_ENDPOINT-${DIFFERENTIAL_SCHEME:-}127.0.0.1:$REFERENCE_PORT}"
    local our_endpoint="${OUR_ENDPOINT-${DIFFERENTIAL_SCHEME:-}127.0.0.1:$OUR_PORT}"
    "${REFERENCE_PREFIX[@]}" env ${reference_endpoint:+ETCDCTL_ENDPOINTS=$reference_endpoint} etcdctl "$@" \
        <"$input" >"$work/ref.out" 2>"$work/ref.err"
    expected_rc=$?
    "${OUR_PREFIX[@]}" env ${our_endpoint:+ETCDCTL_ENDPOINTS=$our_endpoint} "${OUR_ETCDCTL:-$work/etcdctl}" "$@" \
        <"$input" >"$work/our.out" 2>"$work/our.err"
    actual_rc=$?
    if [ "$expected_rc" = "$actual_rc" ] &&
        cmp -s <(mask <"$work/ref.out") <(mask <"$work/our.out") &&
        cmp -s <(mask <"$work/ref.err") <(mask <"$work/our.err"); then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "DIFFERS: etcdctl $* (exit $expected_rc vs $actual_rc)"
        diff <(mask <"$work/ref.out"; echo "--- stderr"; mask <"$work/ref.err") \
            <(mask <"$work/our.out"; echo "--- stderr"; mask <"$work/our.err") | head -20
    fi
}
case_() { run_case /dev/null "$@"; }
with_input() { # TEXT ARGS...
    printf '%b' "$1" >"$work/input"
    shift
    run_case "$work/input" "$@"
}

# start_namespace_cluster NAMESPACE SERVER... : creates the namespace and starts in it a
# three-member cluster (m0..m2, clients on 127.0.0.1:2379/2381/2383, peers one above)
# running SERVER (`etcd`, or `"$ours_binary" etcd`) with DIFFERENTIAL_TOKEN and any
# DIFFERENTIAL_ETCD_FLAGS. Two such namespaces give twin clusters with the same IDs.
namespace_cluster_endpoints="127.0.0.1:2379,127.0.0.1:2381,127.0.0.1:2383"
start_namespace_cluster() {
    local namespace=$1 index client
    shift
    local cluster="m0=http://127.0.0.1:2380,m1=http://127.0.0.1:2382,m2=http://127.0.0.1:2384"
    ip netns add "$namespace" || die "cannot create network namespace $namespace"
    ip -n "$namespace" link set lo up
    for index in 0 1 2; do
        client=$((2379 + 2 * index))
        # shellcheck disable=SC2086
        ip netns exec "$namespace" "$@" --name "m$index" --data-dir "$work/$namespace-m$index" ${DIFFERENTIAL_ETCD_FLAGS:-} \
            --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
            --listen-peer-urls "http://127.0.0.1:$((client + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((client + 1))" \
            --initial-cluster "$cluster" --initial-cluster-token "$DIFFERENTIAL_TOKEN" --initial-cluster-state new \
            >"$work/$namespace-m$index.log" 2>&1 &
        pids+=($!)
    done
}
