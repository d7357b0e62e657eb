#!/usr/bin/env bash
# The release artifact: one binary with the Swift runtime linked in, so its only dynamic
# dependencies are the C/C++ runtime; the three system libraries are loaded when first
# used (self-check uses all three).
# Also checks argv[0] dispatch through installed links on the release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh

build_release >/dev/null
binary="$(release_binary)"
deps="$(ldd "$binary")"
if echo "$deps" | grep -Ei 'libswift|libFoundation|libdispatch|libBlocksRuntime|lib_FoundationICU'; then
    die "release binary depends on Swift runtime libraries"
fi
# The three system libraries are loaded on first use (CDynamicLibraries), not linked.
for library in libsystemd.so libyaml libarchive.so; do
    if echo "$deps" | grep -q "$library"; then die "release binary links $library at start"; fi
done
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
"$binary" install-links --dir "$dir" >/dev/null
for name in $("$binary" --list); do
    [ -L "$dir/$name" ] || die "install-links did not create $name"
done
[ "$("$dir/systemd-escape" --path /var/lib/etcd)" = "var-lib-etcd" ] || die "dispatch through a link failed"
"$binary" self-check >/dev/null || die "self-check failed"
echo "release artifact: $(stat -c %s "$binary") bytes, $(echo "$deps" | wc -l) shared libraries, no Swift runtime"
