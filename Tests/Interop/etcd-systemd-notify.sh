#!/usr/bin/env bash
# `coreos etcd` as a Type=notify service of systemd as PID 1 (the nspawn container of
# lib/nspawn-systemd.sh): Debian's etcd.service shape (argv[0] `etcd`, EnvironmentFile with
# DAEMON_ARGS) and CoreOS's etcd-member.service shape (ETCD_* variables) start, because the
# member sends READY=1 once it serves clients; a member that cannot be published (its
# cluster has no quorum) stays activating; the v2 proxy and the gateway notify too.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
. Tests/Interop/lib/checks.sh
. Tests/Interop/lib/nspawn-systemd.sh
ensure_apt_packages etcd-client curl
nspawn_ensure_rootfs
build_release >/dev/null || die "release build failed"
binary="$(pwd)/$(release_binary)"
work="$(mktemp -d)"
port=27580
cleanup() {
    nspawn_stop
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] && { echo "kept $work"; return; }
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || die "no work directory"

nspawn_boot "$binary" "$work/boot.log"
check "systemd boots in the container" 0 timeout 60 nsenter -t "$leader" -a systemctl is-system-running --wait
inside ln -sf /usr/local/bin/coreos /usr/local/bin/etcd

# Debian's etcd.service, as the etcd-server package ships it (Type=notify, DAEMON_ARGS).
inside mkdir -p /etc/default
printf 'DAEMON_ARGS="--name solo --data-dir /var/lib/etcd-solo --listen-client-urls http://127.0.0.1:%s --advertise-client-urls http://127.0.0.1:%s --listen-peer-urls http://127.0.0.1:%s --initial-advertise-peer-urls http://127.0.0.1:%s --initial-cluster solo=http://127.0.0.1:%s"\n' \
    $port $port $((port + 1)) $((port + 1)) $((port + 1)) | inside tee /etc/default/etcd >/dev/null
inside tee /etc/systemd/system/etcd.service >/dev/null <<'UNIT'
[Unit]
Description=etcd - highly-available key value store
After=network.target

[Service]
Type=notify
EnvironmentFile=-/etc/default/%p
ExecStart=/usr/local/bin/etcd $DAEMON_ARGS
Restart=on-abnormal
TimeoutStartSec=30

[Install]
WantedBy=multi-user.target
UNIT
inside systemctl daemon-reload
check "Debian's Type=notify etcd.service starts (systemctl start returns once READY=1 came)" 0 \
    timeout 40 nsenter -t "$leader" -a systemctl start etcd.service
check "... and is active" 0 test "$(inside systemctl is-active etcd.service)" = active
check "... serving clients" 0 curl -fsS "http://127.0.0.1:$port/health"
check "... with its readiness in the journal" 0 bash -c "nsenter -t $leader -a journalctl -u etcd.service --no-pager | grep -q 'ready to serve client requests'"

# CoreOS's etcd-member.service shape: settings in ETCD_* variables, no flags.
inside tee /etc/systemd/system/etcd-member.service >/dev/null <<UNIT
[Service]
Type=notify
Environment=ETCD_NAME=member ETCD_DATA_DIR=/var/lib/etcd-member
Environment=ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:$((port + 10)) ETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:$((port + 10))
Environment=ETCD_LISTEN_PEER_URLS=http://127.0.0.1:$((port + 11)) ETCD_INITIAL_ADVERTISE_PEER_URLS=http://127.0.0.1:$((port + 11))
Environment=ETCD_INITIAL_CLUSTER=member=http://127.0.0.1:$((port + 11))
ExecStart=/usr/local/bin/coreos etcd
TimeoutStartSec=30
UNIT
inside systemctl daemon-reload
check "CoreOS's etcd-member.service (ETCD_* variables) starts" 0 timeout 40 nsenter -t "$leader" -a systemctl start etcd-member.service
check "... and is active" 0 test "$(inside systemctl is-active etcd-member.service)" = active

# A member of a two-member cluster whose other member never comes: no quorum, so it is
# never published and must not tell systemd it is ready.
inside tee /etc/systemd/system/etcd-lonely.service >/dev/null <<UNIT
[Service]
Type=notify
ExecStart=/usr/local/bin/coreos etcd --name a --data-dir /var/lib/etcd-lonely --listen-client-urls http://127.0.0.1:$((port + 20)) --advertise-client-urls http://127.0.0.1:$((port + 20)) --listen-peer-urls http://127.0.0.1:$((port + 21)) --initial-advertise-peer-urls http://127.0.0.1:$((port + 21)) --initial-cluster a=http://127.0.0.1:$((port + 21)),b=http://127.0.0.1:$((port + 23))
TimeoutStartSec=60
UNIT
inside systemctl daemon-reload
inside systemctl start --no-block etcd-lonely.service
sleep 4 # the time a published lone member takes several times over: it must stay unready
check "a member without quorum stays activating (no READY=1 before it is published)" 0 test "$(inside systemctl is-active etcd-lonely.service)" = activating
check "... and takes no client requests meanwhile" 28 curl -sS -m 1 "http://127.0.0.1:$((port + 20))/health"
inside systemctl stop etcd-lonely.service

# The v2 proxy and the gateway notify once they serve.
inside tee /etc/systemd/system/etcd-proxy.service >/dev/null <<UNIT
[Service]
Type=notify
ExecStart=/usr/local/bin/coreos etcd --proxy on --listen-client-urls http://127.0.0.1:$((port + 30)) --initial-cluster solo=http://127.0.0.1:$((port + 1))
TimeoutStartSec=30
UNIT
inside tee /etc/systemd/system/etcd-gateway.service >/dev/null <<UNIT
[Service]
Type=notify
ExecStart=/usr/local/bin/etcd gateway --endpoints=127.0.0.1:$port start --listen-addr 127.0.0.1:$((port + 40))
TimeoutStartSec=30
UNIT
inside systemctl daemon-reload
check "the v2 proxy as Type=notify starts" 0 timeout 40 nsenter -t "$leader" -a systemctl start etcd-proxy.service
check "... and proxies" 0 curl -fsS "http://127.0.0.1:$((port + 30))/v2/keys/?recursive=true"
check "the gateway as Type=notify starts" 0 timeout 40 nsenter -t "$leader" -a systemctl start etcd-gateway.service
check "... and forwards" 0 env ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$((port + 40))" put through-gateway yes
echo "etcd under systemd (Type=notify): $passed passed, $failed failed"
[ "$failed" = 0 ]
