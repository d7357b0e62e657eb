#!/usr/bin/env bash
# coreos run's image store against images made by Debian's tools (umoci, skopeo, tar):
# every import kind, rendering (whiteouts, links, modes), verify, export, rm/gc leaving
# no blobs behind, bad references and corrupt blobs refused, and a store that stays
# consistent when an import is killed halfway.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh

ours="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
[ -x "$ours" ] || die "build first: $ours is missing"
for tool in umoci skopeo busybox; do command -v $tool >/dev/null || die "$tool is missing (packages umoci, skopeo, busybox-static)"; done
images=/var/tmp/coreos-runtime-images
Tests/Interop/tools/runtime-images.sh "$images" || die "building the test images failed"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
store="$work/store"
# Unsigned test ACIs: signatures are checked in the trust section below.
run() { "$ours" run --dir "$store" --insecure-options=image "$@"; }
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

oci_id=$(run fetch "oci:$images/oci:busybox") || fail "fetch oci layout"
base_id=$(run fetch "oci:$images/oci:base") || fail "fetch oci layout, second tag"
docker_id=$(run fetch "docker-archive:$images/busybox-docker.tar") || fail "fetch docker-archive"
aci_id=$(run fetch "$images/busybox.aci.gz") || fail "fetch gzip ACI"
aci_plain=$(run fetch "file://$images/busybox.aci") || fail "fetch plain ACI"
[ "$aci_id" = "$aci_plain" ] || fail "the ACI's ID depends on its compression ($aci_id, $aci_plain)"
[ "$aci_id" = "sha512-$(sha512sum "$images/busybox.aci" | cut -c1-64)" ] || fail "ACI ID is not the SHA-512 of the tar"
manifest_digest=$(python3 -c "import json; print([m['digest'] for m in json.load(open('$images/oci/index.json'))['manifests'] if m['annotations']['org.opencontainers.image.ref.name']=='busybox'][0])")
[ "$oci_id" = "$manifest_digest" ] || fail "OCI image ID is not its manifest digest"
run image list >"$work/list"
grep -q 'example.com/busybox:1.35.0' "$work/list" && grep -q 'docker.io/library/busybox:latest' "$work/list" || fail "image list: $(cat "$work/list")"

# Renders against umoci's own unpack of the same image.
umoci unpack --image "$images/oci:busybox" "$work/umoci" >/dev/null 2>&1 || fail "umoci unpack"
for image in "$oci_id" "$docker_id"; do
    rm -rf "$work/render"
    run image render "$image" "$work/render" || fail "render $image"
    diff -r --no-dereference "$work/umoci/rootfs" "$work/render" >"$work/diff" 2>&1 || fail "render of $image differs from umoci's: $(head -5 "$work/diff")"
    [ ! -e "$work/render/etc/hostname" ] || fail "$image: the whiteout layer did not remove etc/hostname"
done
rm -rf "$work/render"
run image render "$base_id" "$work/render" && [ "$(cat "$work/render/etc/hostname")" = image-hostname ] || fail "render of the base tag"
rm -rf "$work/extract"
run image extract "$aci_id" "$work/extract" && [ -f "$work/extract/manifest" ] && [ -x "$work/extract/rootfs/bin/busybox" ] || fail "extract ACI"
[ "$(readlink "$work/extract/rootfs/bin/sh")" = busybox ] || fail "extract ACI: symlinks"
run image export "$aci_id" "$work/out.aci" && cmp -s "$work/out.aci" "$images/busybox.aci" || fail "export is not the original tar"
run image verify "$oci_id" "$docker_id" "$aci_id" >/dev/null || fail "verify"
run image cat-manifest "$aci_id" | grep -q '"example.com/busybox"' || fail "cat-manifest"

# A corrupted blob is found by verify and by render.
layer=$(ls -S "$store/blobs/sha256" | head -1)
cp "$store/blobs/sha256/$layer" "$work/layer.bak"
printf 'x' | dd of="$store/blobs/sha256/$layer" bs=1 seek=100 conv=notrunc 2>/dev/null
run image verify "$docker_id" >/dev/null 2>&1 && run image verify "$oci_id" >/dev/null 2>&1 && fail "verify missed a corrupt blob"
rm -rf "$work/render"
if run image render "$docker_id" "$work/render" 2>/dev/null && run image render "$oci_id" "$work/render2" 2>/dev/null; then fail "render accepted a corrupt blob"; fi
cp "$work/layer.bak" "$store/blobs/sha256/$layer"

# Bad references and inputs: status 254 with a message, 2 for usage.
run fetch "oci:$images/oci:nosuchtag" 2>"$work/err"; [ $? = 254 ] && grep -q 'no image tagged nosuchtag' "$work/err" || fail "unknown tag: $(cat "$work/err")"
run fetch "oci:$work" 2>"$work/err"; [ $? = 254 ] || fail "not a layout"
head -c 5000 "$images/busybox.aci.gz" >"$work/cut.aci"
run fetch "$work/cut.aci" 2>"$work/err"; [ $? = 254 ] || fail "a truncated ACI was accepted"
run image rm nothing-here 2>/dev/null; [ $? = 254 ] || fail "rm of a missing image"
run frobnicate 2>/dev/null; [ $? = 2 ] || fail "unknown command is not a usage error"

# An import killed halfway leaves the store as it was (only tmp/, which gc clears).
before=$(run image list --no-legend | wc -l)
mkfifo "$work/fifo.aci"
( head -c 1000000 "$images/busybox.aci" >"$work/fifo.aci"; sleep 30 ) &
feeder=$!
run fetch "$work/fifo.aci" >/dev/null 2>&1 &
importer=$!
sleep 1
kill -9 "$importer" 2>/dev/null; wait "$importer" 2>/dev/null
kill "$feeder" 2>/dev/null; wait "$feeder" 2>/dev/null
[ "$(run image list --no-legend | wc -l)" = "$before" ] || fail "an interrupted import changed the image list"
run image verify "$aci_id" >/dev/null || fail "the store is not consistent after an interrupted import"

# Signatures: an ACI needs a detached signature by a key trusted for its name's prefix.
strict() { "$ours" run --dir "$work/strict" "$@"; }
strict fetch "$images/busybox.aci" 2>"$work/err"
[ $? = 254 ] && grep -q 'has no signature' "$work/err" || fail "an unsigned ACI was accepted: $(cat "$work/err")"
strict fetch "$images/signed/busybox.aci" 2>"$work/err"
[ $? = 254 ] && grep -q 'no trusted key for example.com/busybox' "$work/err" || fail "a signed ACI without a trusted key: $(cat "$work/err")"
strict trust --prefix=example.com/busybox --skip-fingerprint-review "$images/signed/other.asc" >/dev/null 2>&1 || fail "trust the other key"
strict fetch "$images/signed/busybox.aci" 2>"$work/err"
[ $? = 254 ] && grep -q 'signature verification' "$work/err" || fail "a signature by an untrusted key was accepted: $(cat "$work/err")"
strict trust --prefix=example.com/other --skip-fingerprint-review "$images/signed/key.asc" >/dev/null 2>&1 || fail "trust for another prefix"
strict fetch "$images/signed/busybox.aci" 2>/dev/null && fail "a key trusted for another prefix was used"
strict trust --prefix=example.com/busybox --skip-fingerprint-review "$images/signed/key.asc" >"$work/out" 2>&1 || fail "trust"
grep -q 'Added key for prefix "example.com/busybox"' "$work/out" || fail "trust output: $(cat "$work/out")"
[ "$(strict fetch "$images/signed/busybox.aci")" = "$aci_id" ] || fail "a trusted signature was refused"
cp "$images/signed/busybox.aci.asc" "$work/tampered.aci.asc"
cp "$images/busybox.aci.gz" "$work/tampered.aci"
strict fetch "$work/tampered.aci" 2>/dev/null && fail "a signature of other bytes was accepted"
strict trust --prefix=example.com/busybox "$images/signed/key.asc" </dev/null >/dev/null 2>&1 && fail "trust without review or terminal"
pgrep -f "gpg-agent.*coreos-gnupg" >/dev/null && fail "gpg-agent left running"

# ACIs by URL (a loopback server; plain HTTP needs --insecure-options=http), signature beside.
python3 Tests/Interop/tools/metadata-server.py "$images" >"$work/port" &
server=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
url="http://127.0.0.1:$(cat "$work/port")"
strict fetch "$url/signed/busybox.aci" 2>"$work/err"
[ $? = 254 ] && grep -q 'insecure-options=http' "$work/err" || fail "plain HTTP without the option: $(cat "$work/err")"
[ "$(strict --insecure-options=http fetch "$url/signed/busybox.aci")" = "$aci_id" ] || fail "a signed ACI by URL"
strict --insecure-options=http fetch "$url/busybox.aci.gz" 2>"$work/err"
[ $? = 254 ] && grep -q 'has no signature' "$work/err" || fail "an unsigned ACI by URL: $(cat "$work/err")"
[ "$(strict --insecure-options=http,image fetch "$url/busybox.aci.gz")" = "$aci_id" ] || fail "an unsigned ACI by URL with image checks off"
strict --insecure-options=http,image fetch "$url/nothing.aci" 2>/dev/null && fail "a missing URL"
kill "$server"; wait "$server" 2>/dev/null

# rm and gc: nothing of a removed image stays.
for id in "$oci_id" "$base_id" "$docker_id" "$aci_id"; do run image rm "$id" >/dev/null || fail "rm $id"; done
run image gc --grace-period=0s >/dev/null || fail "gc"
left=$( (find "$store/blobs" -type f; find "$store/images" "$store/trees" "$store/tmp" -mindepth 1) | wc -l)
[ "$left" = 0 ] || fail "rm/gc left $left entries: $(find "$store" -mindepth 2 | head -5)"

[ "$failures" = 0 ] || die "$failures runtime image check(s) failed"
echo "runtime images: all checks passed"
