#!/usr/bin/env bash
# coreos cloudinit end to end: hostile inputs answered in under a second and 64 MiB,
# validate exit codes, and every datasource (a loopback metadata service, a config drive
# made here, the kernel command line, a URL) applied into scratch roots.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh

ours="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
[ -x "$ours" ] || die "build first: $ours is missing"
work="$(mktemp -d)"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

python3 Tests/Interop/tools/cloudinit-inputs.py "$work/inputs"

# measure FILE: prints "STATUS SECONDS KIB" of one validate run (rusage of that child only).
measure() {
    python3 - "$ours" "$1" <<'PY'
import os, subprocess, sys, time
start = time.monotonic()
child = subprocess.Popen([sys.argv[1], "cloudinit", "--validate", "--from-file", sys.argv[2]],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
output = child.stdout.read()
_, status, usage = os.wait4(child.pid, 0)
elapsed = time.monotonic() - start
sys.stderr.write(output.decode(errors="replace")[:300])
print(os.waitstatus_to_exitcode(status), "%.3f" % elapsed, usage.ru_maxrss)
PY
}

for input in "$work"/inputs/hostile/*; do
    read -r status seconds kib < <(measure "$input" 2>"$work/said")
    echo "hostile $(basename "$input"): status $status, $seconds s, $((kib / 1024)) MiB: $(head -c 120 "$work/said")"
    [ "$status" = 1 ] || fail "$(basename "$input"): status $status, want 1"
    grep -q '^line [0-9]*: error: ' "$work/said" || fail "$(basename "$input"): no error line"
    python3 -c "import sys; sys.exit(0 if float('$seconds') < 1.0 else 1)" || fail "$(basename "$input"): $seconds s"
    [ "$kib" -lt $((64 * 1024)) ] || fail "$(basename "$input"): $kib KiB"
done
for input in "$work"/inputs/sized/*; do
    read -r status seconds kib < <(measure "$input" 2>"$work/said")
    echo "valid $(basename "$input"): status $status, $seconds s, $((kib / 1024)) MiB"
    [ "$status" = 0 ] || fail "$(basename "$input"): status $status: $(head -c 300 "$work/said")"
done

# Exit statuses: findings 1, clean 0, usage 2, a missing file 1.
printf '#cloud-config\nhostname: a\n' >"$work/good.yml"
printf '#cloud-config\nhostnme: a\n' >"$work/bad.yml"
"$ours" cloudinit --validate --from-file "$work/good.yml" >/dev/null || fail "a clean config is not status 0"
"$ours" cloudinit --validate --from-file "$work/bad.yml" >"$work/out"
[ $? = 1 ] && grep -qx 'line 2: warning: unrecognized key "hostnme"' "$work/out" || fail "a finding is not status 1"
"$ours" cloudinit --validate >/dev/null 2>&1
[ $? = 2 ] || fail "no datasource is not status 2"
"$ours" cloudinit --bogus >/dev/null 2>&1
[ $? = 2 ] || fail "an unknown flag is not status 2"
"$ours" cloudinit --validate --from-file "$work/missing.yml" >/dev/null 2>&1
[ $? = 1 ] || fail "a missing file is not status 1"

# new_root: a scratch machine with a core user.
new_root() {
    local root="$work/root-$1"
    mkdir -p "$root/etc" "$root/home/core"
    printf 'root:x:0:0:root:/root:/bin/bash\ncore:x:500:500::/home/core:/bin/bash\n' >"$root/etc/passwd"
    printf 'root:x:0:\ncore:x:500:\n' >"$root/etc/group"
    echo "$root"
}

# The metadata service: EC2's layout under 2009-04-04, and a plain user-data URL.
meta="$work/meta"
mkdir -p "$meta/2009-04-04/meta-data/public-keys/0" "$meta/plain"
printf '#cloud-config\nwrite_files:\n  - path: /etc/where\n    content: "$public_ipv4 $private_ipv4"\n' >"$meta/2009-04-04/user-data"
printf 'hostname\nlocal-ipv4\n' >"$meta/2009-04-04/meta-data/index"
printf 'ec2-host.internal\n' >"$meta/2009-04-04/meta-data/hostname"
printf '10.1.2.3\n' >"$meta/2009-04-04/meta-data/local-ipv4"
printf '198.51.100.7\n' >"$meta/2009-04-04/meta-data/public-ipv4"
printf '0=mykey\n' >"$meta/2009-04-04/meta-data/public-keys/index"
printf 'ssh-rsa EC2KEY me@ec2\n' >"$meta/2009-04-04/meta-data/public-keys/0/openssh-key"
printf '#cloud-config\nhostname: from-url\n' >"$meta/plain/user-data"
python3 Tests/Interop/tools/metadata-server.py "$meta" >"$work/port" &
server_pid=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")

root=$(new_root ec2)
"$ours" cloudinit --from-ec2-metadata "http://127.0.0.1:$port/" --root "$root" 2>"$work/log" || fail "ec2: $(cat "$work/log")"
[ "$(cat "$root/etc/hostname" 2>/dev/null)" = ec2-host.internal ] || fail "ec2: hostname from metadata"
[ "$(cat "$root/etc/where" 2>/dev/null)" = "198.51.100.7 10.1.2.3" ] || fail "ec2: substitution from metadata"
grep -qx 'ssh-rsa EC2KEY me@ec2' "$root/home/core/.ssh/authorized_keys" || fail "ec2: metadata SSH key"
grep -qx 'COREOS_PRIVATE_IPV4=10.1.2.3' "$root/etc/environment" || fail "ec2: /etc/environment"

root=$(new_root url)
"$ours" cloudinit --from-url "http://127.0.0.1:$port/plain/user-data" --root "$root" 2>"$work/log" || fail "url: $(cat "$work/log")"
[ "$(cat "$root/etc/hostname" 2>/dev/null)" = from-url ] || fail "url: hostname"
root=$(new_root url404)
"$ours" cloudinit --from-url "http://127.0.0.1:$port/nothing" --root "$root" 2>"$work/log" || fail "url 404 is not 'nothing to do'"
printf 'ro quiet cloud-config-url=http://127.0.0.1:%s/plain/user-data\n' "$port" >"$work/cmdline"
root=$(new_root cmdline)
COREOS_CLOUDINIT_PROC_CMDLINE="$work/cmdline" "$ours" cloudinit --from-proc-cmdline --root "$root" 2>"$work/log" || fail "cmdline: $(cat "$work/log")"
[ "$(cat "$root/etc/hostname" 2>/dev/null)" = from-url ] || fail "cmdline: hostname"

# A config drive, polled together with a URL nobody answers: the drive wins, quickly.
drive="$work/drive"
mkdir -p "$drive/openstack/latest"
printf '#cloud-config\nmanage_etc_hosts: localhost\n' >"$drive/openstack/latest/user_data"
printf '{"hostname": "drive-host", "public_keys": {"k": "ssh-ed25519 DRIVEKEY d@d"}}' >"$drive/openstack/latest/meta_data.json"
root=$(new_root drive)
start=$(date +%s%N)
"$ours" cloudinit --from-url http://127.0.0.1:1/user-data --from-configdrive "$drive" --root "$root" 2>"$work/log" || fail "drive: $(cat "$work/log")"
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$(cat "$root/etc/hosts" 2>/dev/null)" = "127.0.0.1 drive-host" ] || fail "drive: /etc/hosts"
grep -qx 'ssh-ed25519 DRIVEKEY d@d' "$root/home/core/.ssh/authorized_keys" || fail "drive: key"
[ "$elapsed_ms" -lt 3000 ] || fail "drive: took $elapsed_ms ms"

# Nobody answers: a bounded wait, then status 1.
"$ours" cloudinit --from-url http://127.0.0.1:1/user-data --timeout 1s --root "$(new_root none)" 2>"$work/log"
[ $? = 1 ] && grep -q 'No datasources available in time' "$work/log" || fail "an unreachable datasource: $(cat "$work/log")"

# The system (OEM) config is applied before the user's.
root=$(new_root oem)
mkdir -p "$root/usr/share/oem"
printf '#cloud-config\nhostname: oem-name\nwrite_files: [{path: /etc/oem-was-here, content: yes}]\n' >"$root/usr/share/oem/cloud-config.yml"
"$ours" cloudinit --from-url "http://127.0.0.1:$port/plain/user-data" --root "$root" 2>"$work/log" || fail "oem: $(cat "$work/log")"
[ -f "$root/etc/oem-was-here" ] && [ "$(cat "$root/etc/hostname")" = from-url ] || fail "oem: system config then user config"

[ "$failures" = 0 ] || die "$failures cloudinit check(s) failed"
echo "cloudinit: all checks passed"
