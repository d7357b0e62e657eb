#!/usr/bin/env bash
# Builds the runtime's test images from Debian's busybox-static into DIR (idempotent):
#   DIR/rootfs          static busybox with its applet links
#   DIR/oci             an OCI layout (umoci) with tags busybox (two layers: the tree, then
#                       a whiteout of etc/hostname), a one-layer tag base, and web (base
#                       exposing 8080/tcp)
#   DIR/busybox-docker.tar  the busybox tag as a docker-archive (skopeo)
#   DIR/busybox.aci     an ACI (manifest + rootfs/), reproducible; busybox.aci.gz beside it
#   DIR/app-with-dependency.aci  an ACI of one file depending on example.com/busybox
#   DIR/signed/busybox.aci(.asc)  the same ACI with a detached signature by DIR/signed/key.asc
#                       (a fresh ed25519 key; DIR/signed/other.asc is a key that did not sign)
# Usage: Tests/Interop/tools/runtime-images.sh DIR
set -euo pipefail
dir=$1
[ -f "$dir/.complete-4" ] && exit 0
rm -rf "$dir"
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/rootfs/tmp"
cd "$dir"
cp /bin/busybox rootfs/bin/busybox
for applet in $(rootfs/bin/busybox --list); do [ "$applet" = busybox ] || ln -sf busybox "rootfs/bin/$applet"; done
echo image-hostname >rootfs/etc/hostname
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >rootfs/etc/passwd
printf 'root:x:0:\nnogroup:x:65534:\n' >rootfs/etc/group

umoci init --layout oci >/dev/null
umoci new --image oci:base >/dev/null
umoci unpack --image oci:base work >/dev/null
cp -a rootfs/. work/rootfs/
umoci repack --image oci:base work >/dev/null
umoci config --image oci:base --config.cmd /bin/sh --config.env PATH=/bin --config.env FROM_IMAGE=yes \
    --architecture amd64 --os linux >/dev/null
rm -rf work
umoci tag --image oci:base busybox >/dev/null
umoci tag --image oci:base web >/dev/null
umoci config --image oci:web --config.exposedports 8080/tcp >/dev/null
umoci unpack --image oci:busybox work >/dev/null
rm work/rootfs/etc/hostname
umoci repack --image oci:busybox work >/dev/null
rm -rf work
skopeo copy -q oci:oci:busybox docker-archive:busybox-docker.tar:busybox:latest

cat >manifest <<'JSON'
{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/busybox","labels":[{"name":"version","value":"1.35.0"},{"name":"os","value":"linux"},{"name":"arch","value":"amd64"}],"app":{"exec":["/bin/sh"],"user":"0","group":"0","environment":[{"name":"FROM_IMAGE","value":"aci"}],"ports":[{"name":"http","protocol":"tcp","port":8080}]}}
JSON
mkdir aci
cp -a rootfs aci/rootfs
cp manifest aci/manifest
tar -C aci --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf busybox.aci manifest rootfs
gzip -n -c busybox.aci >busybox.aci.gz
rm -rf aci manifest

# An ACI that only adds a file and depends on the busybox ACI for everything else.
mkdir -p dep/rootfs
echo from-the-dependent-image >dep/rootfs/app.txt
cat >dep/manifest <<'JSON'
{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/app","labels":[{"name":"version","value":"1"}],"dependencies":[{"imageName":"example.com/busybox"}],"app":{"exec":["/bin/cat","/app.txt"],"user":"0","group":"0"}}
JSON
tar -C dep --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf app-with-dependency.aci manifest rootfs
rm -rf dep

mkdir -p signed
export GNUPGHOME="$dir/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'coreos test signer <signer@example.com>' ed25519 sign never 2>/dev/null
gpg --batch --quiet --passphrase '' --quick-gen-key 'coreos other <other@example.com>' ed25519 sign never 2>/dev/null
gpg --batch --armor --export signer@example.com >signed/key.asc
gpg --batch --armor --export other@example.com >signed/other.asc
cp busybox.aci signed/busybox.aci
gpg --batch --yes --local-user signer@example.com --armor --detach-sign -o signed/busybox.aci.asc signed/busybox.aci
gpgconf --kill all
unset GNUPGHOME
rm -rf "$dir/gnupg"
touch .complete-4
