#!/bin/bash
# The .deb on a real systemd system: packaging/e2e-deb-scenario.sh with the
# package run.py built into dist/e2e/ of the checkout before booting, and a
# scsi_debug tape exported by LIO (so READY=1 means a real export).
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/../tgt-lib.sh"

src=${TAPESHARED_SRC:-/mnt/src}
debs=$(compgen -G "$src/dist/e2e/tapeshared_*_all.deb" || true)
[ -n "$debs" ] || fail "no $src/dist/e2e/tapeshared_*_all.deb (run.py builds it for deb-* scenarios)"
[ "$(echo "$debs" | wc -l)" = 1 ] || fail "several packages in dist/e2e: $debs"
pass "package $(basename "$debs")"

check "scsi_debug tape" tape_add
hctl=$(tapes_on scsi_debug 1 | head -n1)
serial=$(serial_of "$hctl")
[ -n "$serial" ] || fail "no serial for $hctl"
pass "local tape $hctl serial $serial"
check "LIO modules" modprobe -a target_core_mod target_core_pscsi iscsi_target_mod
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
check "LIO iscsi fabric in configfs" mkdir -p /sys/kernel/config/target/iscsi

if bash "$src/packaging/e2e-deb-scenario.sh" "$debs" "$serial"; then
    pass "packaging/e2e-deb-scenario.sh: install, READY with the export, status, reload, upgrade, SysV init script, remove, purge"
else
    fail "packaging/e2e-deb-scenario.sh (exit $?)"
fi
