#!/bin/bash
# LIO export end to end: a scsi_debug tape found by serial, exported by
# `tapeshared run`, logged in over loopback; mt status, tagged blocks and
# filemarks written and read back through the export; INQUIRY is the tape's.
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
export TS_SCENARIO=lio-export-io
# shellcheck disable=SC1091
. "$(dirname "$0")/../lio-lib.sh"
trap lio_cleanup EXIT
IQN=iqn.2007-04.com.example:lio-io

check "scsi_debug tape" add_tape
check "LIO modules and configfs" lio_modules
hctl=$(local_tape)
[ -n "$hctl" ] || fail "no local scsi_debug tape"
serial=$(serial_of "$hctl")
[ -n "$serial" ] || fail "tapeshared scan --json gives no serial for $hctl"
pass "local tape $hctl, serial $serial (tapeshared scan --json)"

write_config "[global]
backend = lio
portal = 127.0.0.1

[export lio-io]
iqn = $IQN
serial = $serial
initiators = 127.0.0.0/8
initiator_iqns = $GUEST_IQN"
check "tapeshared check-config" ts -c "$TS_CONF" check-config

start_daemon
wait_for 30 exported "$IQN" "$hctl" || { daemon_log_tail; fail "export of $hctl in configfs"; }
pass "configfs: target enabled, ACL mapped LUN 0 -> backstore on $hctl"
if ! wait_for 15 ts -c "$TS_CONF" status >/dev/null; then
    ts -c "$TS_CONF" status | indent || true
    fail "tapeshared status exit 0"
fi
pass "tapeshared status: exit 0"
check "portal 127.0.0.1:3260 in configfs" test -d "$LIO/iscsi/$IQN/tpgt_1/np/127.0.0.1:3260"

check "iscsiadm discovery + login over loopback" login "$IQN"
wait_for 30 have_remote_tape || fail "no tape on an iscsi_tcp host after login"
udevadm settle --timeout=30
rhctl=$(remote_tape)
rnst=$(node_of "$rhctl" scsi_tape)
rsg=$(node_of "$rhctl" scsi_generic)
[ -n "$rnst" ] && [ -n "$rsg" ] || fail "remote tape $rhctl has no nst/sg node"
pass "remote tape $rhctl ($(proc_name_of "$rhctl")): $rnst $rsg"

status_out=$(ts -c "$TS_CONF" status 2>&1) || true
if printf '%s\n' "$status_out" | grep -q "initiator $GUEST_IQN"; then
    pass "tapeshared status lists the session of $GUEST_IQN"
else
    printf '%s\n' "$status_out" | indent
    fail "tapeshared status lists the session of $GUEST_IQN"
fi

inq=$(inquiry "$rsg")
case $inq in
    "Linux|scsi_debug|tape"*) pass "INQUIRY through the export: $inq" ;;
    *) fail "INQUIRY through the export is not the scsi_debug tape: $inq" ;;
esac

out=$(mt -f "$rnst" status 2>&1) || { printf '%s\n' "$out" | indent; fail "mt status $rnst"; }
printf '%s\n' "$out" | grep -q ONLINE || { printf '%s\n' "$out" | indent; fail "mt status: not ONLINE"; }
pass "mt -f $rnst status: ONLINE"

if tape_data_io; then
    out=$(tape_io "$rnst" 6,4 2>&1) || { printf '%s\n' "$out" | indent; fail "tagged blocks through the export"; }
    pass "through the export: $out, filemarks ok"

    # The same tape read locally shows what the initiator wrote (the export is pass-through).
    # The export reset the drive before mapping it: the host's own st was told too
    # and refuses all but positioning until it knows where it is.
    lnst=$(node_of "$hctl" scsi_tape)
    mt -f "$lnst" rewind 2>/dev/null || mt -f "$lnst" rewind
    out=$(python3 - "$lnst" <<'PYEOF' 2>&1
import os, struct, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
data = os.read(fd, 1 << 20)
os.close(fd)
assert data[:4] == struct.pack(">HH", 0, 0) and len(data) == 65536, (len(data), data[:4])
print("first block on the local device: file 0 block 0, 65536 bytes")
PYEOF
    ) || { printf '%s\n' "$out" | indent; fail "local read of the exported tape"; }
    pass "$out"
else
    note "kernel $(uname -r): scsi_debug has no tape data I/O; tagged blocks and the local read are checked on the newer kernel"
fi

check "daemon still running" kill -0 "$DAEMON_PID"
if grep -q -e Traceback -e ' ERROR' "$TS_LOG"; then
    daemon_log_tail 40
    fail "daemon log has errors"
fi
pass "daemon log: no errors"
