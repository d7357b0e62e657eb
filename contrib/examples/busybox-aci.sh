#!/usr/bin/env bash
# Builds the image the example units run: an ACI of Debian's static busybox with its applet
# links, named example.com/busybox, at /var/lib/coreos-examples/busybox.aci (or at $1).
# Unsigned: the units fetch it with --insecure-options=image. Installs busybox-static if
# it is missing. Idempotent.
#   contrib/examples/busybox-aci.sh [OUT.aci]
set -euo pipefail
out=${1:-/var/lib/coreos-examples/busybox.aci}
if [ ! -x /bin/busybox ]; then
    apt-get install -y -q busybox-static >/dev/null
fi
[ -s "$out" ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/proc" "$work/rootfs/sys" "$work/rootfs/dev" "$work/rootfs/tmp" "$work/rootfs/www"
cp /bin/busybox "$work/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -sf busybox "$work/rootfs/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$work/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$work/rootfs/etc/group"
cat >"$work/manifest" <<'JSON'
{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/busybox","labels":[{"name":"version","value":"latest"},{"name":"os","value":"linux"},{"name":"arch","value":"amd64"}],"app":{"exec":["/bin/sh"],"user":"0","group":"0","environment":[{"name":"PATH","value":"/bin"}],"ports":[{"name":"http","protocol":"tcp","port":80}]}}
JSON
mkdir -p "$(dirname "$out")"
tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$work/image.aci" manifest rootfs
mv "$work/image.aci" "$out"
echo "$out"
