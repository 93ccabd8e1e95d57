#!/bin/bash
# Smoke test of the guest: an emulated tape (scsi_debug) with working data
# I/O, its udev links, the LIO and tgt targets, the initiator, the Python
# dependencies, and (when present) the tapeshared package from the checkout.
set -eu
# shellcheck disable=SC1091  # lib.sh: pass, note, fail, check, wait_for, indent
. "$(dirname "$0")/../lib.sh"
started=$(date +%s%N)

echo "kernel $(uname -r)"

# --- the tape -----------------------------------------------------------------
check "modprobe scsi_debug ptype=1 vpd_use_hostno=0" modprobe scsi_debug ptype=1 vpd_use_hostno=0
udevadm settle --timeout=30

dev=""
for d in /sys/bus/scsi/devices/*:*:*:*; do
    if [ "$(cat "$d/type")" = 1 ] && grep -q scsi_debug "$d/model"; then dev=$d; fi
done
[ -n "$dev" ] || fail "no sequential-access scsi_debug device in sysfs"
pass "sequential-access device ${dev##*/}: $(tr -s ' ' < "$dev/vendor") $(tr -s ' ' < "$dev/model")"

check "/dev/nst0 is a character device" test -c /dev/nst0
wait_for 10 compgen -G '/dev/tape/by-id/*-nst' >/dev/null || fail "no /dev/tape/by-id/*-nst link"
link=$(compgen -G '/dev/tape/by-id/*-nst' | head -n1)
[ "$(readlink -f "$link")" = /dev/nst0 ] || fail "$link does not point at /dev/nst0"
pass "by-id link $link -> /dev/nst0"

check "mt status" mt -f /dev/nst0 status
mt -f /dev/nst0 status | indent
check "mt setblk 0 (variable blocks)" mt -f /dev/nst0 setblk 0

# Data: scsi_debug keeps only the first 4 bytes of each block, so each block
# is a 4-byte tag (file, block) followed by zeros.
out=$(tape_io /dev/nst0 5,3 32768 2>&1) || { printf '%s\n' "$out" | indent; fail "tape block write/read"; }
printf '%s\n' "$out" | indent
pass "tape block write/read, filemarks, fsf"

# Throughput (informational).
mt -f /dev/nst0 rewind
w=$(dd if=/dev/zero of=/dev/nst0 bs=256k count=200 2>&1 | tail -n1) || fail "dd write: $w"
mt -f /dev/nst0 rewind
r=$(dd if=/dev/nst0 of=/dev/null bs=256k 2>&1 | tail -n1) || fail "dd read: $r"
pass "dd 200 x 256 KiB: write: $w; read: $r"
mt -f /dev/nst0 rewind

# --- targets and initiator -----------------------------------------------------
check "modprobe target_core_mod target_core_pscsi iscsi_target_mod" \
    modprobe -a target_core_mod target_core_pscsi iscsi_target_mod
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
check "configfs at /sys/kernel/config/target" test -d /sys/kernel/config/target/core
check "LIO iscsi fabric in configfs" mkdir -p /sys/kernel/config/target/iscsi
check "targetcli ls" targetcli ls /

[ "$(systemctl is-enabled tgt.service 2>/dev/null || true)" = disabled ] \
    || fail "tgt.service is not disabled in the image"
check "tgt.service starts" systemctl start tgt.service
check "tgtadm answers" wait_for 10 tgtadm --lld iscsi --mode target --op show
check "tgt.service stops" systemctl stop tgt.service

check "initiator IQN is fixed" grep -qx 'InitiatorName=iqn.1994-05.com.example:tapeshared-e2e' \
    /etc/iscsi/initiatorname.iscsi
check "iscsiadm present" iscsiadm --version

# --- Python ---------------------------------------------------------------------
check "python3 imports pyudev, pyroute2, tenacity, systemd" \
    python3 -c 'import pyudev, pyroute2, tenacity, systemd'

if [ -d /mnt/src/tapeshared ]; then
    if out=$(cd /tmp && PYTHONPATH=/mnt/src python3 -m tapeshared --version 2>&1); then
        pass "python3 -m tapeshared --version: $out"
    elif echo "$out" | grep -q -e ModuleNotFoundError -e 'No module named'; then
        note "tapeshared not runnable yet: $(echo "$out" | grep -e ModuleNotFoundError -e 'No module named' | tail -n1)"
    else
        printf '%s\n' "$out" | indent
        fail "python3 -m tapeshared --version"
    fi
else
    note "no /mnt/src/tapeshared: skipped the --version check"
fi

# the next scenario in this boot loads scsi_debug with its own parameters
udevadm settle --timeout=30
check "scsi_debug unloads" wait_for 10 modprobe -r scsi_debug

elapsed=$(( ($(date +%s%N) - started) / 1000000 ))
echo "smoke: all checks passed in $((elapsed / 1000)).$(printf %03d $((elapsed % 1000))) s"
