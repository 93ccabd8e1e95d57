#!/bin/bash
# Derive an older-kernel guest from a built e2e image: the same root file
# system with an older Debian suite's kernel (and its modules) installed, an
# initrd built for it by the guest's own initramfs-tools.
#
#   add-kernel.sh BASEDIR OUTDIR
#
# BASEDIR holds rootfs.img from build-image.sh; OUTDIR receives rootfs.img,
# vmlinuz, initrd.img and kernel.txt (the kernel package and version). The
# kernel comes from the Debian archive this host's apt uses. Overrides:
#   TAPESHARED_E2E_OLD_SUITE  suite of the kernel (default: bullseye, 5.10)
#   TAPESHARED_E2E_SOURCES    as for build-image.sh: its archive URI is used
#
# Needs root (loop mount, chroot), apt-get and dpkg-deb.
set -euo pipefail

suite=${TAPESHARED_E2E_OLD_SUITE:-bullseye}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

die() { echo "add-kernel: $*" >&2; exit 1; }

# The Debian archive URI: from TAPESHARED_E2E_SOURCES, else this host's apt.
archive_uri() {
    if [ -n "${TAPESHARED_E2E_SOURCES:-}" ]; then
        grep -o -E 'https?://[^ ]+' "$TAPESHARED_E2E_SOURCES" | grep -v -- '-security' | head -n1
        return
    fi
    # shellcheck disable=SC2016  # apt's own $(FIELD) syntax
    apt-get indextargets --format '$(REPO_URI) $(LABEL)' \
        'Identifier: Packages' 'Origin: Debian' | awk '$2 == "Debian" {print $1; exit}'
}

# Download SUITE's linux-image-amd64 and the versioned kernel it depends on
# into $1, with a private apt state (the host's own lists stay untouched).
download_kernel() {
    local dir=$1 uri apt pkg
    uri=$(archive_uri)
    [ -n "$uri" ] || die "no Debian archive in this host's apt sources (set TAPESHARED_E2E_SOURCES)"
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/debs"
    printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$uri" "$suite" > "$dir/sources.list"
    apt=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
         -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache"
         -o APT::Sandbox::User=root)
    apt-get "${apt[@]}" -q update >&2
    (cd "$dir/debs" && apt-get "${apt[@]}" -q download linux-image-amd64 >&2)
    pkg=$(dpkg-deb -f "$dir"/debs/linux-image-amd64_*.deb Depends | grep -o -E 'linux-image-[0-9][^ ,]*' | head -n1)
    [ -n "$pkg" ] || die "linux-image-amd64 of $suite names no kernel package"
    (cd "$dir/debs" && apt-get "${apt[@]}" -q download "$pkg" >&2)
    echo "$pkg"
}

main() {
    local base=$1 out=$2 work root pkg deb version
    [ "$(id -u)" = 0 ] || die "must run as root"
    [ -f "$base/rootfs.img" ] || die "no rootfs.img in $base"
    mkdir -p "$out"
    work=$(mktemp -d "$out/.work.XXXXXX")
    root=$work/root
    mkdir -p "$root"
    # shellcheck disable=SC2064  # expand $root and $work now
    trap "umount '$root/proc' 2>/dev/null || true; umount '$root' 2>/dev/null || true; rm -rf --one-file-system '$work'" EXIT

    pkg=$(download_kernel "$work/apt")
    deb=$(ls "$work/apt/debs/${pkg}"_*.deb)
    version=${pkg#linux-image-}

    cp --sparse=always "$base/rootfs.img" "$work/rootfs.img"
    mount -o loop "$work/rootfs.img" "$root"
    mount -t proc proc "$root/proc"
    cp "$deb" "$root/tmp/kernel.deb"
    # The postinst runs the guest's update-initramfs for this kernel.
    chroot "$root" dpkg -i /tmp/kernel.deb
    rm -f "$root/tmp/kernel.deb"
    [ -f "$root/boot/vmlinuz-$version" ] || die "no /boot/vmlinuz-$version after installing $pkg"
    [ -f "$root/boot/initrd.img-$version" ] || die "no initrd for $version"
    cp "$root/boot/vmlinuz-$version" "$work/vmlinuz"
    cp "$root/boot/initrd.img-$version" "$work/initrd.img"
    echo "$(basename "$deb") $suite" > "$work/kernel.txt"
    umount "$root/proc"
    umount "$root"

    for f in rootfs.img vmlinuz initrd.img kernel.txt; do
        mv "$work/$f" "$out/$f"
    done
    echo "add-kernel: $version ($suite) in $out"
}

case ${1:-} in
    ""|-h|--help) sed -n '2,15p' "$0"; exit 2 ;;
    *) [ $# -eq 2 ] || die "usage: add-kernel.sh BASEDIR OUTDIR"; main "$@" ;;
esac
