#!/usr/bin/env bash
# flannel across three hosts: network namespaces on a bridge (Tests/Interop/lib/flannel-lab.sh),
# each host running `coreos flannel` against a three-member etcd reachable on the bridge, a
# container namespace per host addressed from its lease. For vxlan, host-gw and udp: every
# container pings every other and fetches over TCP across hosts; the kernel holds what
# flannel would program; masquerade and /healthz work; a restarted flanneld keeps its subnet
# (without dropping packets on the kernel backends). On vxlan also: a host that stops
# renewing loses its lease and its routes vanish elsewhere, and then exits; a host claiming
# another's public IP does not take its subnet. All on `coreos etcd` and on Debian's etcd
# 3.4; then the v2 keys API (--etcd-api=v2) on both. Bad configurations are refused before
# anything changes in the kernel.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
. Tests/Interop/lib/checks.sh
. Tests/Interop/lib/flannel-lab.sh
ensure_apt_packages etcd-server etcd-client iproute2 iptables busybox-static curl
[ "$(id -u)" -eq 0 ] || die "flannel-overlay.sh needs root (network namespaces)"
ours="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
work="$(mktemp -d)"
declare -A pid=()
cleanup() {
    for name in "${!pid[@]}"; do kill -CONT "${pid[$name]}" 2>/dev/null; kill "${pid[$name]}" 2>/dev/null; done
    sleep 0.3
    for name in "${!pid[@]}"; do kill -9 "${pid[$name]}" 2>/dev/null; done
    wait 2>/dev/null
    lab_teardown
    [ -n "${KEEP:-}" ] && { echo "kept $work"; return; }
    rm -rf "$work"
}
trap cleanup EXIT

ttl=10 margin=5
endpoints="http://$lab_prefix.254:2379,http://$lab_prefix.254:2381,http://$lab_prefix.254:2383"
etcdctl_hub() { ETCDCTL_API=3 lab_ns "$lab_hub" etcdctl --endpoints "$endpoints" "$@"; }

start_store() { # ours|etcd34
    local kind=$1 n cluster="" binary=(etcd)
    [ "$kind" = ours ] && binary=("$ours" etcd)
    for n in 1 2 3; do cluster+="${cluster:+,}s$n=http://$lab_prefix.254:$((2378 + n * 2))"; done
    for n in 1 2 3; do
        local client=$((2377 + n * 2)) peer=$((2378 + n * 2))
        ip netns exec "$lab_hub" "${binary[@]}" --name "s$n" --data-dir "$work/$kind-s$n" --enable-v2 \
            --listen-client-urls "http://$lab_prefix.254:$client" --advertise-client-urls "http://$lab_prefix.254:$client" \
            --listen-peer-urls "http://$lab_prefix.254:$peer" --initial-advertise-peer-urls "http://$lab_prefix.254:$peer" \
            --initial-cluster "$cluster" --initial-cluster-token "flannel-$kind" >"$work/$kind-s$n.log" 2>&1 &
        pid[store-$n]=$!
    done
    wait_for 30 etcdctl_hub endpoint health || die "the $kind cluster did not become healthy"
}
stop_store() {
    local n
    for n in 1 2 3; do kill "${pid[store-$n]}" 2>/dev/null; done
    for n in 1 2 3; do wait "${pid[store-$n]}" 2>/dev/null; unset "pid[store-$n]"; done
}

start_flannel() { # N [FLAGS...]: flanneld in host N
    local n=$1
    shift
    ip netns exec "$lab-h$n" "$ours" flannel --etcd-endpoints "$endpoints" --iface eth0 --subnet-file "$work/h$n.env" \
        --subnet-lease-ttl "${ttl}s" --subnet-lease-renew-margin "${margin}s" --ip-masq --iptables-resync 1 \
        --healthz-port 8471 "$api_flag" "$@" >>"$work/h$n.flannel.log" 2>&1 &
    pid[flannel-$n]=$!
}
stop_flannel() { # N
    kill "${pid[flannel-$1]}" 2>/dev/null
    wait "${pid[flannel-$1]}" 2>/dev/null
    unset "pid[flannel-$1]"
}

subnet_of() { sed -n 's/^FLANNEL_SUBNET=//p' "$work/h$1.env"; }
network_of() { local s; s=$(subnet_of "$1"); echo "${s%.*}.0/${s#*/}"; }
ping_container() { lab_ns "$lab-c$1" busybox ping -c 1 -W 1 "$(lab_container_ip "$work/h$2.env")"; }
route_on() { lab_ns "$lab-h$1" ip route show "$2" | grep -q .; }
no_route_on() { ! route_on "$@"; }

# SCENARIO STORE BACKEND API: one round of checks on a fresh set of hosts.
scenario() {
    local store=$1 backend=$2 api=$3 label="$1/$2/$3" n m
    api_flag="--etcd-api=$api"
    local hosts=(1 2 3)
    [ "$api" = v2 ] && hosts=(1 2)
    if [ "$api" = v3 ]; then
        etcdctl_hub del --prefix /coreos.com/network/ >/dev/null
    else
        lab_ns "$lab_hub" curl -fsS -X DELETE "http://$lab_prefix.254:2379/v2/keys/coreos.com/network?recursive=true" >/dev/null 2>&1
    fi
    check "$label: network create" 0 lab_ns "$lab_hub" "$ours" flannel network create --etcd-endpoints "$endpoints" \
        "$api_flag" --force "{\"Network\":\"10.77.0.0/16\",\"Backend\":{\"Type\":\"$backend\"}}"
    for n in "${hosts[@]}"; do lab_add_host "$n"; start_flannel "$n"; done
    for n in "${hosts[@]}"; do
        check "$label: host $n wrote subnet.env" 0 wait_for 40 test -s "$work/h$n.env"
        [ -s "$work/h$n.env" ] || tail -20 "$work/h$n.flannel.log" | sed 's/^/    flanneld: /'
    done
    for n in "${hosts[@]}"; do lab_add_container "$n" "$work/h$n.env"; done
    check "$label: subnets differ" 0 test "$(for n in "${hosts[@]}"; do subnet_of "$n"; done | sort -u | wc -l)" = "${#hosts[@]}"
    local expected_mtu=1500
    case $backend in vxlan) expected_mtu=1450 ;; udp) expected_mtu=1472 ;; esac
    check "$label: subnet.env" 0 grep -qx "FLANNEL_NETWORK=10.77.0.0/16
FLANNEL_SUBNET=10.77.[0-9]*.1/24
FLANNEL_MTU=$expected_mtu
FLANNEL_IPMASQ=true" "$work/h1.env"

    if [ "$api" = v3 ]; then
        etcdctl_hub get --prefix /coreos.com/network/subnets/ >"$work/leases"
        check "$label: three leases in etcd" 0 test "$(grep -c '^/coreos.com/network/subnets/10\.77\.[0-9]*\.0-24$' "$work/leases")" = 3
        local value
        value=$(etcdctl_hub get --print-value-only "/coreos.com/network/subnets/$(network_of 1 | tr / -)")
        case $backend in
        vxlan) check "$label: lease value as flannel writes it" 0 grep -Eq '^\{"PublicIP":"198\.51\.100\.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":\{"VNI":1,"VtepMAC":"([0-9a-f]{2}:){5}[0-9a-f]{2}"\},"BackendV6Data":null\}$' <<<"$value" ;;
        *) check "$label: lease value as flannel writes it" 0 test "$value" = "{\"PublicIP\":\"198.51.100.1\",\"PublicIPv6\":null,\"BackendType\":\"$backend\",\"BackendV6Data\":null}" ;;
        esac
        check "$label: lease attached to an etcd lease" 0 bash -c "ETCDCTL_API=3 ip netns exec $lab_hub etcdctl --endpoints $endpoints get -w json /coreos.com/network/subnets/$(network_of 1 | tr / -) | grep -q '\"lease\":[1-9]'"
    else
        check "$label: v2 lease with a TTL" 0 bash -c "ip netns exec $lab_hub curl -fsS http://$lab_prefix.254:2379/v2/keys/coreos.com/network/subnets/$(network_of 1 | tr / -) | grep -q '\"ttl\":[1-9]'"
    fi

    # Connectivity: every container reaches every other, ICMP and TCP.
    for n in "${hosts[@]}"; do for m in "${hosts[@]}"; do
        [ "$n" = "$m" ] && continue
        check "$label: container $n pings container $m" 0 wait_for 10 ping_container "$n" "$m"
    done; done
    mkdir -p "$work/www"
    echo "served by c1 over $backend" >"$work/www/index.html"
    ip netns exec "$lab-c1" busybox httpd -f -p 8080 -h "$work/www" &
    pid[httpd]=$!
    sleep 0.3
    for n in "${hosts[@]}"; do
        [ "$n" = 1 ] && continue
        check "$label: container $n fetches over TCP from container 1" 0 \
            lab_ns "$lab-c$n" timeout 10 busybox wget -q -O "$work/fetched" "http://$(lab_container_ip "$work/h1.env"):8080/"
        check "$label: … the page container 1 serves" 0 grep -q "served by c1 over $backend" "$work/fetched"
    done
    kill "${pid[httpd]}" 2>/dev/null
    wait "${pid[httpd]}" 2>/dev/null
    unset "pid[httpd]"

    # What the kernel holds on host 1.
    case $backend in
    vxlan)
        check "$label: flannel.1 as flannel builds it" 0 bash -c "ip netns exec $lab-h1 ip -d link show flannel.1 | grep -q 'vxlan id 1 local 198.51.100.1 dev eth0 .*dstport 8472 nolearning'"
        check "$label: flannel.1 holds <subnet>/32" 0 bash -c "ip netns exec $lab-h1 ip -4 addr show flannel.1 | grep -q 'inet $(network_of 1 | cut -d/ -f1)/32'"
        check "$label: one permanent neighbour per peer" 0 test "$(lab_ns "$lab-h1" ip neigh show dev flannel.1 | grep -c PERMANENT)" = $((${#hosts[@]} - 1))
        check "$label: one permanent FDB entry per peer" 0 test "$(lab_ns "$lab-h1" bridge fdb show dev flannel.1 | grep -c 'dst 198.51.100.[0-9]* self permanent')" = $((${#hosts[@]} - 1))
        check "$label: one onlink route per peer" 0 test "$(lab_ns "$lab-h1" ip route show dev flannel.1 | grep -c 'via 10.77.[0-9]*.0 onlink')" = $((${#hosts[@]} - 1))
        ;;
    host-gw)
        check "$label: one route via each peer's public IP" 0 test "$(lab_ns "$lab-h1" ip route show dev eth0 | grep -c '^10.77.[0-9]*.0/24 via 198.51.100.[0-9]')" = $((${#hosts[@]} - 1))
        ;;
    udp)
        check "$label: flannel0 routes the network" 0 bash -c "ip netns exec $lab-h1 ip route show dev flannel0 | grep -q '^10.77.0.0/16'"
        ;;
    esac
    check "$label: masquerade rules in place" 0 test "$(lab_ns "$lab-h1" iptables -t nat -S FLANNEL-POSTRTG | grep -c 'flanneld masq')" = 4
    check "$label: container reaches outside the network (masqueraded)" 0 lab_ns "$lab-c1" busybox ping -c 1 -W 2 "$lab_prefix.254"
    lab_ns "$lab-h1" iptables -t nat -F FLANNEL-POSTRTG
    check "$label: a flushed masquerade chain is restored" 0 wait_for 5 bash -c "test \$(ip netns exec $lab-h1 iptables -t nat -S FLANNEL-POSTRTG | grep -c 'flanneld masq') = 4"
    check "$label: /healthz" 0 lab_ns "$lab-h1" curl -fsS "http://127.0.0.1:8471/healthz"
    # (A CI run once found host 1's flanneld gone at this point: its last words, if so.)
    lab_ns "$lab-h1" curl -fsS "http://127.0.0.1:8471/healthz" >/dev/null 2>&1 ||
        tail -20 "$work/h1.flannel.log" | sed 's/^/    flanneld h1: /'
    check "$label: docker-opts" 0 "$ours" flannel docker-opts -f "$work/h1.env"
    check "$label: … as mk-docker-opts writes them" 0 grep -qx "DOCKER_OPTS=\" --bip=$(subnet_of 1) --ip-masq=false --mtu=$expected_mtu\"" last.out

    # A restarted flanneld keeps its subnet; the kernel backends keep forwarding meanwhile.
    local before
    before=$(subnet_of 2)
    lab_ns "$lab-c1" busybox ping -c 40 -i 0.05 -W 2 "$(lab_container_ip "$work/h2.env")" >"$work/ping-during-restart" 2>&1 &
    local pinger=$!
    sleep 0.3
    stop_flannel 2
    start_flannel 2
    check "$label: restarted host 2 is ready again" 0 wait_for 15 bash -c "grep -c 'Running backend' $work/h2.flannel.log | grep -qx 2"
    wait "$pinger"
    check "$label: restarted host 2 keeps its subnet" 0 test "$(subnet_of 2)" = "$before"
    if [ "$backend" != udp ]; then
        check "$label: no packet lost while flanneld restarted" 0 grep -q ' 0% packet loss' "$work/ping-during-restart"
    fi
    check "$label: container 1 pings container 2 after the restart" 0 wait_for 10 ping_container 1 2
    sed -i 's/Running backend/(counted)/' "$work/h2.flannel.log"

    if [ "$backend" = vxlan ] && [ "$api" = v3 ]; then
        # Host 3 stops renewing (SIGSTOP): its lease expires, its routes vanish elsewhere.
        local gone
        gone=$(network_of 3)
        kill -STOP "${pid[flannel-3]}"
        check "$label: a host that stops renewing loses its lease" 0 wait_for $((ttl + 10)) bash -c "! ETCDCTL_API=3 ip netns exec $lab_hub etcdctl --endpoints $endpoints get --keys-only /coreos.com/network/subnets/${gone/\//-} | grep -q ."
        check "$label: … and its route vanishes on host 1" 0 wait_for 5 no_route_on 1 "$gone"
        check "$label: … and its neighbour and FDB entries" 0 test "$(lab_ns "$lab-h1" ip neigh show dev flannel.1 | grep -c PERMANENT)" = 1
        kill -CONT "${pid[flannel-3]}"
        check "$label: … it exits once it sees its lease revoked" 0 wait_for 15 bash -c "! kill -0 ${pid[flannel-3]}"
        check "$label: … saying so" 0 grep -q "Lease has been revoked" "$work/h3.flannel.log"
        wait "${pid[flannel-3]}"
        check "$label: … with a non-zero status" 1 test $? = 0
        unset "pid[flannel-3]"
        start_flannel 3
        check "$label: restarted host 3 takes its old subnet again" 0 wait_for 15 route_on 1 "$gone"
        check "$label: container 1 pings container 3 again" 0 wait_for 10 ping_container 1 3

        # Host 4 claims host 1's public IP: it must not take host 1's subnet.
        local mine theirs
        mine=$(network_of 1)
        lab_add_host 4
        start_flannel 4 --public-ip "$lab_prefix.1"
        check "$label: a host with another's public IP gets a subnet" 0 wait_for 15 test -s "$work/h4.env"
        theirs=$(network_of 4)
        check "$label: … not the other host's" 0 test "$theirs" != "$mine"
        check "$label: … whose lease stays as it was" 0 bash -c "ETCDCTL_API=3 ip netns exec $lab_hub etcdctl --endpoints $endpoints get --print-value-only /coreos.com/network/subnets/${mine/\//-} | grep -q '\"VtepMAC\":\"$(ip netns exec "$lab-h1" cat /sys/class/net/flannel.1/address)\"'"
        check "$label: host 1 still reaches host 2's container" 0 ping_container 1 2
        stop_flannel 4
        rm -f "$work/h4.env"
    fi

    for n in 1 2 3 4; do [ -n "${pid[flannel-$n]:-}" ] && stop_flannel "$n"; done
    lab_remove_hosts
    rm -f "$work"/h*.env "$work"/h*.flannel.log
}

# Bad configurations: refused with a clear error; flanneld exits and the kernel is untouched.
bad_configs() {
    local label="$1/bad-config"
    api_flag="--etcd-api=v3"
    etcdctl_hub del --prefix /coreos.com/network/ >/dev/null
    check "$label: overlapping SubnetMin/SubnetMax refused" 1 lab_ns "$lab_hub" "$ours" flannel network create --etcd-endpoints "$endpoints" \
        '{"Network":"10.77.0.0/16","SubnetMin":"10.77.9.0","SubnetMax":"10.77.3.0","Backend":{"Type":"vxlan"}}'
    check "$label: … with the reason" 0 grep -q "SubnetMin (10.77.9.0) is above SubnetMax" last.err
    check "$label: SubnetLen out of range refused" 1 lab_ns "$lab_hub" "$ours" flannel network create --etcd-endpoints "$endpoints" \
        '{"Network":"10.77.0.0/16","SubnetLen":31,"Backend":{"Type":"vxlan"}}'
    check "$label: … with the reason" 0 grep -q "SubnetLen must be less than /31" last.err
    check "$label: unknown backend refused" 1 lab_ns "$lab_hub" "$ours" flannel network create --etcd-endpoints "$endpoints" \
        '{"Network":"10.77.0.0/16","Backend":{"Type":"wireguard"}}'
    check "$label: … with the reason" 0 grep -q "unknown backend type: wireguard" last.err
    check "$label: malformed JSON refused" 1 lab_ns "$lab_hub" "$ours" flannel network create --etcd-endpoints "$endpoints" '{"Network":'
    lab_add_host 1
    local config
    for config in '{"Network":"10.77.0.0/16","Backend":{"Type":"wireguard"}}' \
        '{"Network":"10.77.0.0/16","SubnetLen":31,"Backend":{"Type":"vxlan"}}' \
        '{"Network":"198.51.0.0/16","Backend":{"Type":"vxlan"}}'; do
        etcdctl_hub put /coreos.com/network/config "$config" >/dev/null
        lab_ns "$lab-h1" ip -o link show >"$work/links-before"
        lab_ns "$lab-h1" ip route show >"$work/routes-before"
        check "$label: flanneld refuses $config" 1 lab_ns "$lab-h1" timeout 20 "$ours" flannel --etcd-endpoints "$endpoints" \
            --iface eth0 --subnet-file "$work/h1.env" --ip-masq
        check "$label: … with a clear error" 0 grep -Eq "invalid network config at /coreos.com/network/config|overlaps the external interface" last.err
        check "$label: … no device added" 0 bash -c "ip netns exec $lab-h1 ip -o link show | diff -q - $work/links-before"
        check "$label: … no route added" 0 bash -c "ip netns exec $lab-h1 ip route show | diff -q - $work/routes-before"
        check "$label: … no lease taken" 0 test -z "$(etcdctl_hub get --prefix --keys-only /coreos.com/network/subnets/)"
        check "$label: … no subnet.env written" 1 test -e "$work/h1.env"
    done
    lab_remove_hosts
}

lab_create_hub
# STORES, BACKENDS and V2=0 narrow the run (for debugging).
for store in ${STORES:-ours etcd34}; do
    start_store "$store"
    for backend in ${BACKENDS:-vxlan host-gw udp}; do scenario "$store" "$backend" v3; done
    [ "${V2:-1}" = 1 ] && scenario "$store" vxlan v2
    bad_configs "$store"
    stop_store
done

echo "flannel-overlay: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
