#!/usr/bin/env bash
# coreos run against Debian's docker-registry (the Distribution registry) on loopback:
# images pushed by skopeo, fetched by tag and by digest, a manifest list with platform
# choice, anonymous bearer-token auth through a challenging front, a blob download cut
# halfway and resumed with Range, digests checked, and errors for what is not there.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh

ours="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
[ -x "$ours" ] || die "build first: $ours is missing"
command -v docker-registry >/dev/null || die "docker-registry is missing (package docker-registry)"
images=/var/tmp/coreos-runtime-images
Tests/Interop/tools/runtime-images.sh "$images" || die "building the test images failed"
work="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
python3 - "$port" <<'PY' || die "docker-registry did not start: $(cat "$work/registry.log")"
import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen("http://127.0.0.1:%s/v2/" % sys.argv[1]).read()
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit(1)
PY
skopeo copy -q --dest-tls-verify=false "oci:$images/oci:busybox" "docker://127.0.0.1:$port/test/busybox:1.35" || die "skopeo push"
skopeo copy -q --dest-tls-verify=false "oci:$images/oci:base" "docker://127.0.0.1:$port/test/base:latest" || die "skopeo push"
run() { "$ours" run --dir "$work/store" --insecure-options=http "$@"; }

id=$(run fetch "docker://127.0.0.1:$port/test/busybox:1.35") || fail "fetch by tag"
digest=$(skopeo inspect --tls-verify=false --raw "docker://127.0.0.1:$port/test/busybox:1.35" | sha256sum | cut -d' ' -f1)
[ "$id" = "sha256:$digest" ] || fail "image ID $id is not the manifest digest sha256:$digest"
[ "$(run fetch "docker://127.0.0.1:$port/test/busybox@sha256:$digest")" = "$id" ] || fail "fetch by digest"
out=$(run run --net=none "docker://127.0.0.1:$port/test/busybox:1.35" --exec /bin/sh -- -c 'echo $FROM_IMAGE; ls /etc/hostname 2>&1 | grep -c "No such"')
[ "$out" = "$(printf 'yes\n1')" ] || fail "run from the registry: '$out'"
run fetch "docker://127.0.0.1:$port/test/nothing:1" 2>"$work/err"
[ $? = 254 ] && grep -q 'status 404' "$work/err" || fail "a missing image: $(cat "$work/err")"
run fetch "docker://127.0.0.1:$port/test/busybox:nosuchtag" 2>/dev/null
[ $? = 254 ] || fail "a missing tag"

# A manifest list (OCI index) with this machine's platform and another.
python3 - "$work" "$port" <<'PY' || fail "pushing a manifest list"
import hashlib, json, sys, urllib.request
work, port = sys.argv[1], sys.argv[2]
base = "http://127.0.0.1:%s/v2/test/" % port
def get(name, reference):
    request = urllib.request.Request(base + name + "/manifests/" + reference, headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(request) as response:
        return response.read()
busybox = get("busybox", "1.35")
# Blobs of both images must be in the multi repository: mount them by pushing manifests by digest.
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + hashlib.sha256(busybox).hexdigest(),
     "size": len(busybox), "platform": {"architecture": "arm64", "os": "linux"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + hashlib.sha256(busybox).hexdigest(),
     "size": len(busybox), "platform": {"architecture": "amd64", "os": "linux"}}]}
body = json.dumps(index).encode()
request = urllib.request.Request(base + "busybox/manifests/multi", data=body, method="PUT",
                                 headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
urllib.request.urlopen(request).read()
PY
[ "$(run fetch "docker://127.0.0.1:$port/test/busybox:multi")" = "$id" ] || fail "manifest list: platform choice"

# Token auth and a resumed download, through the challenging front.
rm -rf "$work/store"
python3 Tests/Interop/tools/registry-auth-proxy.py "$port" "$work/proxy.log" --cut-first-blob >"$work/proxy.port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/proxy.port" ] && break; python3 -c 'import time; time.sleep(0.1)'; done
front=$(cat "$work/proxy.port")
run fetch "docker://127.0.0.1:$front/test/busybox:1.35" >/dev/null 2>"$work/err" && fail "the cut download did not fail"
ls "$work/store/tmp/" | grep -q '^partial-' || fail "no partial download was kept"
again=$(run fetch "docker://127.0.0.1:$front/test/busybox:1.35") || fail "resume: $(cat "$work/err")"
[ "$again" = "$id" ] || fail "resumed fetch gave $again"
grep -q '^GET /token' "$work/proxy.log" || fail "no token was requested"
grep -Eq '/blobs/sha256:[0-9a-f]+ bytes=[1-9][0-9]*-$' "$work/proxy.log" || fail "the second fetch did not resume with Range: $(grep blobs "$work/proxy.log")"
run image verify "$id" >/dev/null || fail "verify after a resumed download"

[ "$failures" = 0 ] || die "$failures runtime registry check(s) failed"
echo "runtime registry: all checks passed"
