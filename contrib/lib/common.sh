# Shared helpers for the contrib scripts. Source it; it defines functions only.

# Debian packages whose headers the build uses: the three system libraries (loaded on first
# use at run time; the -dev packages pull in the libraries themselves).
COREOS_BUILD_PACKAGES="libsystemd-dev libyaml-dev libarchive-dev zlib1g-dev"
# What the tests drive for real: systemd-escape (package systemd), real etcd 3.4 and etcdctl
# (etcd-server, etcd-client) for the interop and differential tests, python3-protobuf for the
# wire-schema check, systemd-journal-remote to write the journal files the journal tests read.
COREOS_TEST_PACKAGES="systemd etcd-server etcd-client python3-protobuf openssl systemd-journal-remote busybox-static umoci skopeo docker-registry iptables iproute2 gnupg gpgv procps etcd-discovery dnsmasq-base python3-etcd3 curl openssh-server openssh-client systemd-container debootstrap iperf3 nftables"
# Where the release binary is built (kept apart from the debug build: switching
# configurations in one scratch path recompiles everything).
COREOS_RELEASE_SCRATCH="${COREOS_RELEASE_SCRATCH:-.build-release}"

log() { printf '==> %s\n' "$*" >&2; }

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# ensure_swift: a Swift 6.1+ toolchain must be on PATH (it is not an apt package).
ensure_swift() {
    command -v swift >/dev/null 2>&1 || die "swift is not on PATH; install a Swift 6.1+ toolchain first"
}

# ensure_apt_packages PKG...: installs the packages that are missing, and nothing else.
# Idempotent: when everything is present it touches neither apt's lists nor the network.
ensure_apt_packages() {
    local missing=() package
    for package in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$package")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        || die "apt-get install ${missing[*]} failed"
}

# build_release: the shipping artifact, Swift runtime linked in statically. Linked by lld
# so that it can (1) pack its relative relocations (DT_RELR: 3 MB of .rela.dyn that the
# loader read at every start become 26 KB) and (2) place the functions a member runs
# together at the front of .text (contrib/link-order). Nothing loads symbols from the
# executable, so it exports none; it stays position-independent, for ASLR.
build_release() {
    local order_file="$PWD/contrib/link-order/coreos.order" order_flags=()
    if [ -f "$order_file" ]; then
        # SwiftPM relinks when the command line changes, not when a file it names does:
        # the list goes in under a name that changes with its content.
        local named
        mkdir -p "$COREOS_RELEASE_SCRATCH"
        named="$(cd "$COREOS_RELEASE_SCRATCH" && pwd)/link-order-$(sha256sum "$order_file" | cut -c1-16).order"
        [ -f "$named" ] || cp "$order_file" "$named"
        order_flags=(-Xlinker "--symbol-ordering-file=$named" -Xlinker --no-warn-symbol-ordering)
    fi
    swift build -c release --static-swift-stdlib --scratch-path "$COREOS_RELEASE_SCRATCH" --product coreos \
        -Xswiftc -use-ld=lld -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic \
        "${order_flags[@]}" "$@"
}

release_binary() { echo "$COREOS_RELEASE_SCRATCH/release/coreos"; }
