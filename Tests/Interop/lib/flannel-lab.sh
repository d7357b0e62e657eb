# A lab network for flannel tests, made of network namespaces (root needed): a hub
# namespace holding a bridge (198.51.100.254/24) and the etcd members, host namespaces
# h1..hN attached to the bridge (eth0 = 198.51.100.N/24), and one container namespace per
# host (eth0 = the host's flannel subnet .2, default route via the cni0 bridge at .1).
# Everything is named with $lab (unique per run) and removed by lab_teardown.
# shellcheck shell=bash

. "$(dirname "${BASH_SOURCE[0]}")/wait.sh"

lab="fl$$"
lab_hub="$lab-hub"
lab_prefix=198.51.100

# For commands run in the foreground; start background programs with `ip netns exec`
# itself, so that $! is the program's PID (not a subshell's) and signals reach it.
lab_ns() { ip netns exec "$@"; }


lab_create_hub() {
    ip netns add "$lab_hub"
    lab_ns "$lab_hub" ip link set lo up
    lab_ns "$lab_hub" ip link add br0 type bridge
    lab_ns "$lab_hub" ip addr add "$lab_prefix.254/24" dev br0
    lab_ns "$lab_hub" ip link set br0 up
}

lab_add_host() { # N: namespace $lab-hN with eth0 = $lab_prefix.N on the hub's bridge
    local n=$1 host="$lab-h$1"
    ip netns add "$host"
    lab_ns "$host" ip link set lo up
    ip link add "${lab}h$n" netns "$lab_hub" type veth peer name eth0 netns "$host"
    lab_ns "$lab_hub" ip link set "${lab}h$n" master br0 up
    lab_ns "$host" ip addr add "$lab_prefix.$n/24" dev eth0
    lab_ns "$host" ip link set eth0 up
    lab_ns "$host" sysctl -qw net.ipv4.ip_forward=1
    lab_ns "$host" sysctl -qw net.ipv4.conf.all.rp_filter=0
}

lab_add_container() { # N SUBNET_ENV: container namespace $lab-cN on host N's cni0 bridge
    local n=$1 env=$2 host="$lab-h$1" container="$lab-c$1"
    local subnet mtu gateway prefix
    subnet=$(sed -n 's/^FLANNEL_SUBNET=//p' "$env")
    mtu=$(sed -n 's/^FLANNEL_MTU=//p' "$env")
    gateway=${subnet%/*}
    prefix=${subnet#*/}
    ip netns add "$container"
    lab_ns "$container" ip link set lo up
    lab_ns "$host" ip link add cni0 type bridge
    lab_ns "$host" ip addr add "$subnet" dev cni0
    lab_ns "$host" ip link set cni0 mtu "$mtu" up
    lab_ns "$host" ip link add veth0 type veth peer name eth0 netns "$container"
    lab_ns "$host" ip link set veth0 mtu "$mtu" master cni0 up
    lab_ns "$container" ip addr add "${gateway%.*}.$((${gateway##*.} + 1))/$prefix" dev eth0
    lab_ns "$container" ip link set eth0 mtu "$mtu" up
    lab_ns "$container" ip route add default via "$gateway"
}

lab_container_ip() { # SUBNET_ENV: the container address for a host's subnet (.2)
    local subnet gateway
    subnet=$(sed -n 's/^FLANNEL_SUBNET=//p' "$1")
    gateway=${subnet%/*}
    echo "${gateway%.*}.$((${gateway##*.} + 1))"
}

lab_remove_hosts() { # remove host and container namespaces (the hub stays)
    local ns link
    # The hub's ends first: a deleted namespace's devices go away asynchronously.
    for link in $(ip -n "$lab_hub" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^${lab}h[0-9]+$"); do
        ip -n "$lab_hub" link del "$link"
    done
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^$lab-[hc][0-9]+$"); do ip netns del "$ns"; done
}

lab_teardown() {
    local ns
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^$lab-"); do ip netns del "$ns" 2>/dev/null; done
}
