#!/usr/bin/env bash
# The whole stack end to end, through `coreos cluster`, inside a network namespace this
# test makes (the cluster's bridge and discovery service live there, not on the host):
# three masters form etcd, two workers run local proxies; fleet runs the busybox httpd
# container unit of contrib/examples on a worker and the client unit on the other, which
# fetches the page across the vxlan overlay; fleetctl journal shows it; killing the
# server's node moves the unit after the grace period and the client reaches it again;
# killing the etcd leader leaves the cluster writable; `cluster down` leaves nothing.
# Then: discovery instead of a static cluster, loopback mode, a crashed `up` cleaned by
# `down`, and bad input.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
. Tests/Interop/lib/checks.sh
[ "$(id -u)" -eq 0 ] || die "cluster-e2e.sh needs root (network namespaces)"
ours="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
repo=$(pwd)
work="$(mktemp -d)"
testns="cle2e$$"
dir="$work/cluster"
image=/var/lib/coreos-examples/busybox.aci
made_image=""
[ -s "$image" ] || made_image=1
# The test's namespace for networking only: mounts made by `ip netns add` must reach the
# host's mount namespace, as they do for a user running `coreos cluster` there.
in_ns() { nsenter --net="/run/netns/$testns" "$@"; }
cluster() { in_ns "$ours" cluster --dir "$dir" "$@"; }
on() { local node=$1; shift; cluster exec "$node" -- "$@"; }
unit_machine() { on "${ask:-core1}" fleetctl list-units --no-legend --fields unit,machine,active 2>/dev/null | awk -v u="$1" '$1==u && $3=="active" {print $2}'; }
unit_on() { unit_machine "$1" | grep -q "$2"; }                # UNIT PATTERN
status_has() { cluster status 2>/dev/null | grep -q -- "$1"; }  # PATTERN
published_other_than() { on core1 etcdctl get --print-value-only /examples/httpd 2>/dev/null | grep -v "^$1\$" | grep -q '^10\.5\.'; }
journal_has() { on "$1" fleetctl journal --lines 20 httpd-client.service 2>/dev/null | grep -q "$2"; }  # NODE PATTERN
# Processes whose command line names DIR/ or whose environment has the cluster's marker
# (the bracket keeps grep's own command line from matching).
leftover_processes() { grep -lsz -e "[${1:0:1}]${1:1}/" /proc/[0-9]*/cmdline; grep -lsxz -e "COREOS_CLUSTER_DIR=$1" /proc/[0-9]*/environ; }
processes_left() { leftover_processes "$1" | grep -q .; }
cleanup() {
    for d in "$dir" "$work/discovery" "$work/loopback" "$work/crashed"; do
        [ -d "$d" ] && in_ns "$ours" cluster down --quiet --dir "$d" --name x 2>/dev/null
    done
    ip netns delete "$testns" 2>/dev/null
    [ -n "$made_image" ] && rm -f "$image"
    [ -n "${KEEP:-}" ] && { echo "kept $work"; return; }
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$testns"
ip -n "$testns" link set lo up
contrib/examples/busybox-aci.sh "$image" >/dev/null || die "building $image failed"

# --- up: 3 masters, 2 workers --------------------------------------------------------
check "cluster up --size 3 --workers 2" 0 cluster up --size 3 --workers 2 --name e2e
check "… says when all nodes are up" 0 grep -q "all 5 node(s) up" last.err
check "… and prints the status table" 0 grep -q "^NODE  *ROLE  *PROCESS  *ADDRESS  *ETCD  *MACHINE  *FLEET  *SUBNET  *UNITS$" last.out
check "a second up of the same cluster is refused" 1 cluster up --size 3 --name e2e
check "… saying it is up" 0 grep -q "is up" last.err
check "cluster status" 0 cluster status
cp last.out "$work/status"
check "… one leader among three members" 0 bash -c "[ \$(awk '\$2==\"core\" && (\$5==\"leader\" || \$5==\"member\")' $work/status | wc -l) = 3 ] && [ \$(awk '\$5==\"leader\"' $work/status | wc -l) = 1 ]"
check "… workers run proxies" 0 bash -c "[ \$(awk '\$2==\"worker\" && \$5==\"proxy\"' $work/status | wc -l) = 2 ]"
check "… five machines in fleet, each with a flannel subnet" 0 bash -c "[ \$(awk '\$7==\"present\" && \$8 ~ /^10\\.5\\.[0-9]+\\.0\\/24\$/' $work/status | wc -l) = 5 ]"
check "… and a summary line" 0 grep -q "^cluster e2e: 5/5 nodes running, etcd 3/3 members (leader core[123]), fleet 5 machines$" "$work/status"
check "the masters are the etcd members" 0 on worker1 etcdctl member list
check "… three of them, no worker" 0 bash -c "[ \$(grep -c ', started, core[123], http://10.77.0.1[123]:2380' last.out) = 3 ] && ! grep -q worker last.out"
check "a worker writes through its local proxy" 0 on worker1 etcdctl put /e2e/from-worker1 yes
check "… which listens on the worker's loopback only" 0 on worker1 ss -ltn
check "… 127.0.0.1:2379" 0 bash -c "grep -q '127.0.0.1:2379 ' last.out && ! grep -q ':2380 ' last.out"
check "… and the other worker reads it" 0 on worker2 etcdctl get --print-value-only /e2e/from-worker1
check "… yes" 0 grep -qx yes last.out
check "fleetctl list-machines shows five machines with their metadata" 0 on core2 fleetctl list-machines --no-legend
check "… two of them workers" 0 bash -c "[ \$(grep -c 'role=worker' last.out) = 2 ] && [ \$(wc -l <last.out) = 5 ]"

# --- units: httpd container on a worker, client on the other ---------------------------
check "fleetctl start httpd.service" 0 on core1 fleetctl start "$repo/contrib/examples/httpd.service"
check "… it runs on a worker" 0 wait_for 60 unit_on httpd.service '^d'
server_ip=$(unit_machine httpd.service | sed 's|.*/||')
server_node=$([ "$server_ip" = 10.77.0.14 ] && echo worker1 || echo worker2)
other_node=$([ "$server_node" = worker1 ] && echo worker2 || echo worker1)
other_ip=$([ "$server_ip" = 10.77.0.14 ] && echo 10.77.0.15 || echo 10.77.0.14)
check "… and published its container's address" 0 wait_for 30 published_other_than none
pod_ip=$(on core1 etcdctl get --print-value-only /examples/httpd)
check "… an address in $server_node's flannel subnet" 0 on "$server_node" grep -qx "FLANNEL_SUBNET=${pod_ip%.*}.1/24" /run/flannel/subnet.env
check "fleetctl start httpd-client.service" 0 on core1 fleetctl start "$repo/contrib/examples/httpd-client.service"
check "… it runs on the other worker" 0 wait_for 60 unit_on httpd-client.service "/$other_ip\$"
check "… whose route to the server's container is the vxlan device" 0 on "$other_node" ip route get "$pod_ip"
check "… flannel.1" 0 grep -q "dev flannel.1" last.out
check "fleetctl journal (from a master) shows the client fetching the page across hosts" 0 wait_for 60 journal_has core3 "served by $pod_ip/24"
check "fleetctl journal on the unit's own node too" 0 on "$other_node" fleetctl journal --lines 5 httpd-client.service
check "… with the page" 0 grep -q "served by $pod_ip/24" last.out
global_rows() { [ "$(on core1 fleetctl list-units --no-legend --fields unit,active 2>/dev/null | grep -c '^global-hello.service[[:space:]]*active')" = 5 ]; }
check "fleetctl start global-hello.service (Global=true)" 0 on core1 fleetctl start "$repo/contrib/examples/global-hello.service"
check "… runs on all five machines" 0 wait_for 60 global_rows
check "fleetctl start worker-only.service (MachineMetadata=role=worker)" 0 on core1 fleetctl start "$repo/contrib/examples/worker-only.service"
check "… runs on a worker" 0 wait_for 60 unit_on worker-only.service '^d'
check "fleetctl destroy both" 0 on core1 fleetctl destroy global-hello.service worker-only.service
check "cluster status lists the units by node" 0 cluster status
check "… httpd on $server_node" 0 grep -q "^$server_node .*httpd.service:active" last.out

# --- losing the server's machine ------------------------------------------------------
check "cluster kill $server_node" 0 cluster kill "$server_node"
check "… its processes are gone at once" 0 status_has "^$server_node  *worker  *stopped"
check "httpd moves to $other_node after the grace period" 0 wait_for 120 unit_on httpd.service "/$other_ip\$"
check "… and publishes its new address" 0 wait_for 30 published_other_than "$pod_ip"
new_ip=$(on core1 etcdctl get --print-value-only /examples/httpd)
check "the client reaches it again" 0 wait_for 60 journal_has core1 "served by $new_ip/24"

# --- losing the etcd leader -----------------------------------------------------------
leader=$(cluster status | awk '$5=="leader" {print $1}')
check "the etcd leader is a master ($leader)" 0 test -n "$leader"
check "cluster kill $leader" 0 cluster kill "$leader"
ask=$other_node
check "the cluster stays writable (through a worker's proxy)" 0 wait_for 30 on "$other_node" etcdctl --command-timeout=2s put /e2e/after-leader-loss yes
check "… and fleet keeps answering" 0 wait_for 30 unit_on httpd.service "/$other_ip\$"
check "cluster status: two of three members, a new leader" 0 wait_for 30 status_has "etcd 2/3 members (leader core"
check "cluster exec on a stopped node is refused" 1 cluster exec "$leader" -- true
check "… saying how to boot it" 0 grep -q "cluster restart $leader" last.err
check "cluster restart $leader, on a terminal" 0 script -qec "nsenter --net=/run/netns/$testns $ours cluster --dir $dir restart $leader" /dev/null
check "… shows its wait as one line rewritten in place, with a clock" 0 grep -qP '\r\e\[Kwaiting for the nodes: 0/1 up \(\d+ s\)' last.out
check "… it is a member again" 0 wait_for 30 status_has "etcd 3/3 members"
check "… with the data written while it was down" 0 on "$leader" etcdctl get --print-value-only /e2e/after-leader-loss
check "… yes" 0 grep -qx yes last.out

# --- down --------------------------------------------------------------------------------
check "cluster down" 0 cluster down
check "… no node namespace left" 1 bash -c "ip netns list | grep -q '^coreos-e2e-'"
check "… no link left but loopback" 0 bash -c "[ \"\$(ip -n $testns -o link show | awk -F': ' '{print \$2}')\" = lo ]"
check "… no process left" 1 processes_left "$dir"
check "… no cgroup left" 1 bash -c "find /sys/fs/cgroup -maxdepth 6 -name 'coreos-cluster-e2e' | grep -q ."
check "… no mount left" 1 grep -q "$dir" /proc/self/mountinfo
check "… no files left" 1 test -e "$dir"
check "a second down has nothing to do" 0 cluster down

# --- discovery ----------------------------------------------------------------------------
dir="$work/discovery"
check "cluster up --discovery (3 masters, 1 worker)" 0 cluster up --size 3 --workers 1 --discovery --name disc --subnet 10.78.0
check "… through a token of the host's discovery service" 0 grep -q "^discovery: http://10.78.0.1:8087/" last.err
check "… the three masters registered there form etcd" 0 on worker1 etcdctl member list
check "… three members" 0 bash -c "[ \$(grep -c ', started, core[123], ' last.out) = 3 ]"
check "… and the worker proxies through discovery" 0 on worker1 etcdctl put /disc yes
check "cluster down --quiet" 0 cluster down --quiet
check "… says nothing" 0 test ! -s last.err
check "… no namespace left" 1 bash -c "ip netns list | grep -q '^coreos-disc-'"
check "… no process left" 1 processes_left "$dir"
check "… no files left" 1 test -e "$dir"

# --- without root: loopback ports ---------------------------------------------------------
user_home="$(mktemp -d)"   # searchable by the unprivileged user, unlike $work
chmod 755 "$user_home"
mkdir -m 777 "$user_home/home"
dir="$user_home/home/cluster"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$user_home/home" "$ours" cluster --dir "$dir" "$@"; }
check "as an unprivileged user, cluster up (1 master, 1 worker, ports from 42379)" 0 as_nobody up --size 1 --workers 1 --base-port 42379 --name loop
check "… says flannel does not run" 0 grep -q "flannel does not run here: not running as root" "$dir/nodes/core1/node.log"
check "… no namespaces" 1 bash -c "ip netns list | grep -q '^coreos-loop-'"
check "exec points etcdctl at the node's own etcd" 0 as_nobody exec worker1 -- sh -c 'echo $ETCDCTL_ENDPOINTS; etcdctl put /loop yes'
check "… the worker's proxy port" 0 grep -qx "http://127.0.0.1:42389" last.out
check "… and fleetctl at its own fleetd" 0 as_nobody exec worker1 -- fleetctl list-machines --no-legend
check "… which sees both machines" 0 bash -c "[ \$(wc -l <last.out) = 2 ]"
check "cluster status" 0 as_nobody status
check "… a member and a proxy" 0 bash -c "grep -q '^core1  *core  *running  *127.0.0.1:42379  *leader' last.out && grep -q '^worker1  *worker  *running  *127.0.0.1:42389  *proxy' last.out"
check "cluster kill core1 (process tree, no cgroups)" 0 as_nobody kill core1
check "… gone" 0 bash -c "! grep -lsz -e '[${dir:0:1}]${dir:1}/nodes/core1/' /proc/[0-9]*/cmdline | grep -q ."
check "cluster down" 0 as_nobody down --quiet
check "… no process left" 1 processes_left "$dir"
check "… no files left" 1 test -e "$dir"
rm -rf "$user_home"

# --- a crashed up is cleaned by down ------------------------------------------------------
dir="$work/crashed"
in_ns "$ours" cluster --dir "$dir" up --size 1 --workers 1 --name crash >/dev/null 2>&1 &
up_pid=$!
wait_for 30 bash -c "ip netns list | grep -q '^coreos-crash-worker1'"
sleep 0.3
{ kill -9 "$up_pid" && wait "$up_pid"; } 2>/dev/null
check "after up was killed midway, down removes what it made" 0 cluster down --name crash
check "… no namespace or link left" 1 bash -c "ip netns list | grep -q '^coreos-crash-' || ip -n $testns -o link show | grep -q cos-crash"
check "… no process left" 1 processes_left "$dir"
check "… no files left" 1 test -e "$dir"

# --- bad input --------------------------------------------------------------------------------
dir="$work/bad"
check "up --size 0 is refused" 1 cluster up --size 0
check "… naming the flag" 0 grep -q -- "--size" last.err
check "up --backend gre is refused" 1 cluster up --backend gre
check "up --name 'Bad Name' is refused" 1 cluster up --name "Bad Name"
check "… and made nothing" 1 test -e "$dir"
check "exec without a cluster says so" 1 cluster exec core1 -- true
check "… no cluster in" 0 grep -q "no cluster in" last.err
check "an unknown command is a usage error" 2 cluster frobnicate
check "a damaged cluster.json is reported, not trusted" 1 bash -c "mkdir -p $dir && echo '{' >$dir/cluster.json && nsenter --net=/run/netns/$testns $ours cluster --dir $dir status"
check "… naming the file" 0 grep -q "cluster.json is damaged" last.err
rm -rf "$dir"

echo "cluster-e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
