#!/bin/bash
# Build the e2e guest image: a Debian root file system (ext4, raw) plus the
# kernel and initrd extracted from it for direct kernel boot.
#
#   build-image.sh OUTDIR [DEBCACHE]
#
# OUTDIR receives rootfs.img, vmlinuz, initrd.img and packages.txt. DEBCACHE
# (optional) keeps downloaded .deb files between builds.
#
# Package sources come from this host's own apt configuration: the Debian
# archive URIs configured here are reused for the guest suite and for sid
# (the kernel). No mirror is named in this file. Overrides:
#   TAPESHARED_E2E_SUITE    guest suite (default: bookworm)
#   TAPESHARED_E2E_SOURCES  a sources file (one-line .list or deb822 .sources)
#                           to use verbatim instead of the derived one; it
#                           must include the guest suite and sid
#
# Needs root, mmdebstrap and e2fsprogs. Also called by mmdebstrap as
# "build-image.sh essential|customize ROOTDIR" to configure the image.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
self="$here/$(basename "$0")"
suite=${TAPESHARED_E2E_SUITE:-bookworm}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
initiator_iqn=iqn.1994-05.com.example:tapeshared-e2e

die() { echo "build-image: $*" >&2; exit 1; }

# Print "REPO_URI LABEL" for each Debian archive apt knows on this host.
debian_repos() {
    # shellcheck disable=SC2016  # apt's own $(FIELD) syntax
    apt-get indextargets --format '$(REPO_URI) $(LABEL)' \
        'Identifier: Packages' 'Origin: Debian' | sort -u
}

# Write an apt sources file for the guest to stdout, derived from the host.
derive_sources() {
    local archive="" security="" uri label
    while read -r uri label; do
        case $label in
            Debian) [ -n "$archive" ] || archive=$uri ;;
            Debian-Security) [ -n "$security" ] || security=$uri ;;
        esac
    done < <(debian_repos)
    [ -n "$archive" ] || die "no Debian archive in this host's apt sources" \
        "(run apt-get update, or set TAPESHARED_E2E_SOURCES)"
    printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$archive" "$suite"
    printf 'deb [signed-by=%s] %s %s-updates main\n' "$keyring" "$archive" "$suite"
    if [ -n "$security" ]; then
        printf 'deb [signed-by=%s] %s %s-security main\n' "$keyring" "$security" "$suite"
    fi
    printf 'deb [signed-by=%s] %s sid main\n' "$keyring" "$archive"
}

# Write this host's download settings (proxy, validity checks, retries) to stdout.
derive_aptopts() {
    apt-config dump Acquire | grep -i -E \
        '^Acquire::([a-z]+::)?(Proxy|Proxy-Auto-Detect|Timeout)[ :]|^Acquire::(Check-Valid-Until|Check-Date|Max-FutureTime|Retries|ForceIPv4|ForceIPv6) ' \
        || true
}

# Guest packages from guest-packages.txt, one per line.
guest_packages() {
    sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$here/guest-packages.txt"
}

# apt preferences: sid only for what is pinned there ("pkg/sid" in the list)
# or found nowhere else.
apt_preferences() {
    printf 'Package: *\nPin: release n=sid\nPin-Priority: 100\n'
    guest_packages | sed -n 's|^\(.*\)/sid$|\1|p' | while read -r pkg; do
        printf '\nPackage: %s\nPin: release n=sid\nPin-Priority: 990\n' "$pkg"
    done
}

# mmdebstrap essential hook (before the kernel is installed): sid's
# linux-run-hooks passes several directories to run-parts, bookworm's accepts
# one. Put a run-parts that takes several first in PATH; it stays in the image.
essential() {
    local root=$1
    mkdir -p "$root/usr/local/sbin"
    install -m 0755 /dev/stdin "$root/usr/local/sbin/run-parts" <<'EOF'
#!/bin/bash
# run-parts over several directories: their entries merged in name order
# (the first directory wins a name), like debianutils >= 5.21.
set -e
opts=() dirs=()
while [ $# -gt 0 ]; do
    case $1 in
        -a|-u|--arg|--umask|--regex) opts+=("$1" "$2"); shift 2 ;;
        --) shift; dirs+=("$@"); break ;;
        -*) opts+=("$1"); shift ;;
        *) dirs+=("$1"); shift ;;
    esac
done
if [ ${#dirs[@]} -le 1 ]; then
    exec /bin/run-parts "${opts[@]}" "${dirs[@]}"
fi
merged=$(mktemp -d)
trap 'rm -rf "$merged"' EXIT
for dir in "${dirs[@]}"; do
    for entry in "$dir"/*; do
        [ -e "$entry" ] || continue
        [ -e "$merged/${entry##*/}" ] || ln -s "$entry" "$merged/${entry##*/}"
    done
done
/bin/run-parts "${opts[@]}" "$merged"
EOF
}

# mmdebstrap customize hook: configure the unpacked image at $1.
customize() {
    local root=$1
    echo tapeshared-e2e > "$root/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 tapeshared-e2e\n::1 localhost\n' > "$root/etc/hosts"
    echo "InitiatorName=$initiator_iqn" > "$root/etc/iscsi/initiatorname.iscsi"
    : > "$root/etc/fstab"
    chroot "$root" passwd -d root >/dev/null
    # tgtd binds 0.0.0.0:3260, which LIO wants, and rtslib-fb-targetctl
    # (restoring a saved LIO config, ~10 s under TCG) would race the scenarios:
    # scenarios start them when needed. The masked ones only slow down an
    # offline boot.
    chroot "$root" systemctl disable --quiet tgt.service rtslib-fb-targetctl.service
    mkdir -p "$root/etc/target"
    chroot "$root" systemctl mask --quiet serial-getty@ttyS0.service \
        apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
        fstrim.timer systemd-timesyncd.service 2>/dev/null || true

    install -m 0755 /dev/stdin "$root/usr/local/sbin/tapeshared-e2e-boot" <<'EOF'
#!/bin/sh
# Run the scenarios named on the kernel command line, then power off (the
# unit does). Output goes to /dev/console: the host captures the serial line.
exec </dev/null >/dev/console 2>&1
scenarios=$(sed -n 's/.*tapeshared\.scenario=\([^ ]*\).*/\1/p' /proc/cmdline)
mkdir -p /mnt/src /mnt/results
modprobe 9pnet_virtio
opts=trans=virtio,version=9p2000.L,msize=262144
if ! mount -t 9p -o "$opts,ro" src /mnt/src; then
    echo "TAPESHARED-E2E-RC=125"
    exit 0
fi
mount -t 9p -o "$opts" results /mnt/results || true
echo "TAPESHARED-E2E: uptime $(cut -d' ' -f1 /proc/uptime)s, running $scenarios"
/bin/bash /mnt/src/tests/e2e/guest-run.sh "$scenarios"
rc=$?
echo "$rc" > /mnt/results/rc 2>/dev/null
echo "TAPESHARED-E2E-RC=$rc"
sync
EOF

    cat > "$root/etc/systemd/system/tapeshared-e2e.service" <<'EOF'
[Unit]
Description=tapeshared e2e scenario runner
ConditionKernelCommandLine=tapeshared.scenario
After=systemd-udev-trigger.service systemd-modules-load.service local-fs.target
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=exec
ExecStart=/usr/local/sbin/tapeshared-e2e-boot
StandardOutput=tty
StandardError=tty
TTYPath=/dev/console

[Install]
WantedBy=multi-user.target
EOF
    chroot "$root" systemctl enable --quiet tapeshared-e2e.service

    # shellcheck disable=SC2016  # dpkg-query's own ${field} syntax
    chroot "$root" dpkg-query -W -f '${Package} ${Version}\n' > "$root/root/packages.txt"
    rm -f "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_Packages*
}

build() {
    local out=$1 debcache=${2:-}
    [ "$(id -u)" = 0 ] || die "must run as root"
    command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed"
    command -v mke2fs >/dev/null || die "mke2fs (e2fsprogs) is not installed"
    [ -f "$keyring" ] || die "$keyring missing (install debian-archive-keyring)"

    mkdir -p "$out"
    local work
    work=$(mktemp -d "$out/.work.XXXXXX")
    # shellcheck disable=SC2064  # expand $work now
    trap "rm -rf --one-file-system '$work'" EXIT
    local root=$work/root

    if [ -n "${TAPESHARED_E2E_SOURCES:-}" ]; then
        cp "$TAPESHARED_E2E_SOURCES" "$work/sources.${TAPESHARED_E2E_SOURCES##*.}"
        local sources=$work/sources.${TAPESHARED_E2E_SOURCES##*.}
    else
        local sources=$work/sources.list
        derive_sources > "$sources"
    fi
    {
        derive_aptopts
        # apt runs maintainer scripts with this PATH: let them find the
        # run-parts from the essential hook.
        echo 'DPkg::Path "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";'
    } > "$work/apt.conf"
    apt_preferences > "$work/sid.pref"

    local cache_args=()
    if [ -n "$debcache" ]; then
        mkdir -p "$debcache/debs"
        rm -rf "$debcache/debs.new"
        # shellcheck disable=SC2016  # "$1" is for mmdebstrap's hook shell
        cache_args=(
            --skip=download/empty
            --setup-hook='mkdir -p "$1/var/cache/apt/archives"'
            --setup-hook="sync-in '$debcache/debs' /var/cache/apt/archives"
            --customize-hook="sync-out /var/cache/apt/archives '$debcache/debs.new'"
        )
    fi

    mmdebstrap --mode=root --variant=apt --format=directory \
        --aptopt="$work/apt.conf" \
        --setup-hook="mkdir -p \"\$1/etc/apt/preferences.d\" && cp '$work/sid.pref' \"\$1/etc/apt/preferences.d/sid.pref\"" \
        --essential-hook="'$self' essential \"\$1\"" \
        --include="$(guest_packages | sed 's|/sid$||' | paste -sd, -)" \
        "${cache_args[@]}" \
        --customize-hook="'$self' customize \"\$1\"" \
        "$suite" "$root" "$sources"

    if [ -n "$debcache" ] && [ -d "$debcache/debs.new" ]; then
        rm -rf "$debcache/debs"
        mv "$debcache/debs.new" "$debcache/debs"
        rm -f "$debcache/debs/lock"
        rm -rf "$debcache/debs/partial"
    fi

    local kernel initrd
    kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n1)
    initrd=$(find "$root/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n1)
    [ -n "$kernel" ] || die "no kernel in the image"
    [ -n "$initrd" ] || die "no initrd in the image"
    cp "$kernel" "$work/vmlinuz"
    cp "$initrd" "$work/initrd.img"
    cp "$root/root/packages.txt" "$work/packages.txt"

    # Size: contents plus a third, plus room for scenarios to write in.
    local used_mb
    used_mb=$(du -sm "$root" | cut -f1)
    mke2fs -q -t ext4 -L tapeshared-e2e -E root_owner=0:0 -d "$root" \
        "$work/rootfs.img" "$((used_mb * 4 / 3 + 512))M"

    for f in rootfs.img vmlinuz initrd.img packages.txt; do
        mv "$work/$f" "$out/$f"
    done
    echo "build-image: $(basename "$kernel") in $out ($(du -sh --apparent-size "$out/rootfs.img" | cut -f1) image)"
}

case ${1:-} in
    essential|customize) "$1" "$2" ;;
    ""|-h|--help) sed -n '2,19p' "$0"; exit 2 ;;
    *) build "$@" ;;
esac
