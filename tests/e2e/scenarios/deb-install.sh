#!/bin/bash
# The .deb on a real systemd system: packaging/e2e-deb-scenario.sh with the
# package run.py built into dist/e2e/ of the checkout before booting, and a
# scsi_debug tape exported by LIO, started cold (no tape, no LIO modules, the
# portal address missing: all come after the daemon).
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
# A cold boot: no tape (vpd_use_hostno=0: the serial stays when it comes
# back on a new host) and no LIO modules when the daemon starts.
echo 1 > "/sys/bus/scsi/devices/$hctl/delete"
for m in iscsi_target_mod target_core_pscsi target_core_mod; do
    [ ! -d "/sys/module/$m" ] || check "rmmod $m" modprobe -r "$m"
done
pass "cold: no tape, no LIO modules"

if E2E_COLD=1 bash "$src/packaging/e2e-deb-scenario.sh" "$debs" "$serial"; then
    pass "packaging/e2e-deb-scenario.sh: install, cold start (modules, tape, portal address late), status, reload, upgrade, SysV init script, remove, purge"
else
    fail "packaging/e2e-deb-scenario.sh (exit $?)"
fi
