#!/usr/bin/env bash
# The release artifact: one binary with the Swift runtime linked in, so its only dynamic
# dependencies are the C/C++ runtime and the three system libraries (and what they pull in).
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
for library in libsystemd.so libyaml libarchive.so; do
    echo "$deps" | grep -q "$library" || die "release binary does not link $library"
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
