#!/usr/bin/env bash
# The robustness suite (Tests/Robustness/robustness.py): faults against a real cluster,
# the history checked afterwards. Installs what it needs, builds the NFQUEUE delayer, and
# passes its arguments on. Examples:
#   Tests/Robustness/run.sh --members 3                    # every fault once, our server
#   Tests/Robustness/run.sh --members 5 --rounds 20        # the long run
#   Tests/Robustness/run.sh --members 3 --server etcd      # the same against etcd 3.4
#   Tests/Robustness/run.sh --members 3 --inject read-without-readindex --expect-violation
# Needs root. Cleans up its namespaces, mounts and processes, also when interrupted.
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
[ "$(id -u)" = 0 ] || die "the robustness suite needs root (network namespaces, iptables, tmpfs)"
ensure_apt_packages etcd-server python3-etcd3 iptables iproute2 util-linux gcc libc6-dev libnetfilter-queue-dev
helper_dir="${COREOS_ROBUSTNESS_HELPERS:-/var/tmp/coreos-robustness-helpers}"
mkdir -p "$helper_dir"
helper="$helper_dir/nfq-delay"
if [ ! -x "$helper" ] || [ Tests/Robustness/nfq-delay.c -nt "$helper" ]; then
    cc -O2 -Wall -Wextra -Werror -o "$helper.new" Tests/Robustness/nfq-delay.c -lnetfilter_queue
    mv "$helper.new" "$helper"
fi
exec /usr/bin/python3 Tests/Robustness/robustness.py --nfq-delay "$helper" "$@"
