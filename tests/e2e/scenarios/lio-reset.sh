#!/bin/bash
# Tape position safety with LIO: after a re-point at a new device instance the
# initiator is told the drive was reset (UNIT ATTENTION 29h), so no write and no
# filemark lands at a position st no longer knows (the new drive is at BOT).
#  (a) a writer holding /dev/nstN open and idle across a renumbering: its next
#      writes fail, nothing is written on the new drive;
#  (b) two archives through /dev/nstN with a renumbering between them: the
#      second is refused, nothing is written at BOT;
#  (c) a writer that opens during the outage ends with an error or at the
#      position the drive has;
#  (d) two initiators (two ACLs): both are told;
#  (f) the tape back at the same address as a new object: while the dead
#      backstore is replaced the holder LUN answers NOT READY (never LIO's LUN 0
#      placeholder's GOOD), and the 29h reaches the initiator before any command
#      reaches the new drive (answers counted);
# all without logout or rescan.
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
export TS_SCENARIO=lio-reset
# shellcheck disable=SC1091
. "$(dirname "$0")/../lio-lib.sh"
trap lio_cleanup EXIT
IQN=iqn.2007-04.com.example:lio-reset
GO=/tmp/lio-reset.go
WRITER=$(dirname "$0")/../tapewriter.py

# drive_block SG: the first block location READ POSITION reports on the local drive.
drive_block() {
    sg_raw -r 20 "$1" 34 00 00 00 00 00 00 00 00 00 2>&1 | python3 -c '
import sys
data = []
for line in sys.stdin:
    parts = line.split()
    if parts and len(parts[0]) == 2 and all(len(p) == 2 for p in parts[1:17]):
        data += [int(p, 16) for p in parts[1:17]]
print(int.from_bytes(bytes(data[4:8]), "big") if len(data) >= 8 else "?")'
}

# renumber_and_wait: the local tape leaves and comes back at a new address;
# waits until the export points at it. Sets HCTL LSG.
renumber_and_wait() {
    local old=$HCTL
    renumber "$old"
    wait_for 30 sh -c '[ -n "$(ls /sys/bus/scsi/devices/*/scsi_tape 2>/dev/null)" ]' || true
    for _ in $(seq 300); do
        HCTL=$(local_tape)
        [ -n "$HCTL" ] && [ "$HCTL" != "$old" ] && exported "$IQN" "$HCTL" && break
        sleep 0.1
    done
    [ "$HCTL" != "$old" ] && exported "$IQN" "$HCTL" || { daemon_log_tail; fail "re-export after renumbering $old"; }
    LSG=$(node_of "$HCTL" scsi_generic)
    pass "renumbered $old -> $HCTL, re-exported"
}

export_and_login "$IQN"
LSG=$(node_of "$HCTL" scsi_generic)
check "initiator TUR" lio_py tur "$RSG"
grep -q "reset the device of" "$TS_LOG" || { daemon_log_tail; fail "first export: no reset logged"; }
pass "first export: the bound device was reset before mapping (daemon log)"

# (a) an open writer idle across the renumbering
mt -f "$RNST" rewind
rm -f "$GO"
python3 "$WRITER" "$RNST" "$GO" 3 > /tmp/lio-reset-a.out 2>&1 &
writer=$!
wait_for 20 grep -q paused /tmp/lio-reset-a.out || fail "(a) writer did not write its first blocks"
renumber_and_wait
touch "$GO"
wait "$writer" || true
indent < /tmp/lio-reset-a.out
grep -q "summary: 0 written\|summary: 1 written" /tmp/lio-reset-a.out \
    || fail "(a) the writer kept writing after the re-point"
grep -q "EIO" /tmp/lio-reset-a.out || fail "(a) the writer saw no error"
pass "(a) open writer: $(grep summary /tmp/lio-reset-a.out)"
block=$(drive_block "$LSG")
[ "$block" = 0 ] || fail "(a) the new drive is at block $block: something was written at BOT"
pass "(a) the new drive is still at block 0: nothing written or filemarked at BOT"
mtout=$(mt -f "$RNST" status 2>&1 || true)
printf '%s\n' "$mtout" | grep -q "File number=-1" || { printf '%s\n' "$mtout" | indent; fail "(a) st still claims a position"; }
pass "(a) st marks the position unknown (File number=-1)"

# (b) archive 1 written and closed, renumbering, archive 2 by a fresh open
check "(b) rewind" mt -f "$RNST" rewind
out=$(python3 -c '
import os, struct, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for b in range(4):
    os.write(fd, struct.pack(">HH", 1, b) + bytes(65532))
os.close(fd)' "$RNST" 2>&1) || fail "(b) archive 1: $out"
pass "(b) archive 1: 4 blocks and a filemark"
renumber_and_wait
out=$(python3 -c '
import os, struct, sys
try:
    fd = os.open(sys.argv[1], os.O_WRONLY)
except OSError as exc:
    print("open: %s" % exc); sys.exit(0)
n = 0
for b in range(4):
    try:
        os.write(fd, struct.pack(">HH", 2, b) + bytes(65532)); n += 1
    except OSError as exc:
        print("write %d: %s" % (b, exc))
try:
    os.close(fd)
except OSError as exc:
    print("close: %s" % exc)
print("archive 2: %d writes returned ok" % n)' "$RNST" 2>&1)
printf '%s\n' "$out" | indent
block=$(drive_block "$LSG")
[ "$block" = 0 ] || fail "(b) archive 2 was written at the new drive's BOT (block $block)"
printf '%s\n' "$out" | grep -q -e "Input/output error" -e "open:" || fail "(b) archive 2 saw no error"
pass "(b) archive 2 refused (st: position unknown after the reset); the new drive is at block 0"

# (c) a writer that opens during the outage
check "(c) rewind" mt -f "$RNST" rewind
old=$HCTL
echo 1 > "/sys/bus/scsi/devices/$old/delete"
python3 -c '
import os, struct, sys
try:
    fd = os.open(sys.argv[1], os.O_WRONLY)
except OSError as exc:
    print("open: %s" % exc); sys.exit(0)
n = 0
for b in range(3):
    try:
        os.write(fd, struct.pack(">HH", 3, b) + bytes(65532)); n += 1
    except OSError as exc:
        print("write %d: %s" % (b, exc))
try:
    os.close(fd); print("close: ok")
except OSError as exc:
    print("close: %s" % exc)
print("writes ok: %d" % n)' "$RNST" > /tmp/lio-reset-c.out 2>&1 &
writer=$!
sleep 1
kill -0 "$writer" 2>/dev/null && pass "(c) writer blocked in open() during the outage" || note "(c) open returned during the outage: $(cat /tmp/lio-reset-c.out)"
echo 1 > "$SDEBUG/add_host"
for _ in $(seq 300); do
    HCTL=$(local_tape); [ -n "$HCTL" ] && exported "$IQN" "$HCTL" && break; sleep 0.1
done
exported "$IQN" "$HCTL" || { daemon_log_tail; fail "(c) re-export"; }
LSG=$(node_of "$HCTL" scsi_generic)
for _ in $(seq 300); do kill -0 "$writer" 2>/dev/null || break; sleep 0.1; done
kill -0 "$writer" 2>/dev/null && { kill "$writer"; fail "(c) writer still blocked 30 s after the return"; }
indent < /tmp/lio-reset-c.out
written=$(sed -n 's/^writes ok: //p' /tmp/lio-reset-c.out)
block=$(drive_block "$LSG")
mtout=$(mt -f "$RNST" status 2>&1 || true)
stfile=$(printf '%s\n' "$mtout" | sed -n 's/^File number=\([-0-9]*\), block number=\([-0-9]*\).*/\1 \2/p')
note "(c) drive at block $block; st says file/block: ${stfile:-?}"
if [ "${written:-0}" = 0 ]; then
    [ "$block" = 0 ] || fail "(c) the writer got errors but the drive moved to block $block"
    pass "(c) the writer that opened during the outage got an error, nothing was written"
else
    # it wrote: st's view and the drive's must agree (a fresh session at BOT)
    [ "$block" = "$((written + 1))" ] && [ "${stfile%% *}" = 1 ] \
        || fail "(c) wrote $written blocks: drive at block $block, st at ${stfile:-?}"
    pass "(c) the writer started a new session at BOT: st and the drive agree ($written blocks + filemark)"
fi

# (d) a second initiator (its own ACL) logged in: the re-point tells both
IQN2=iqn.1994-05.com.example:lio-reset-second
sed -i "s/^initiator_iqns = .*/initiator_iqns = $GUEST_IQN, $IQN2/" "$TS_CONF"
kill -HUP "$DAEMON_PID"
wait_for 30 test -d "$LIO/iscsi/$IQN/tpgt_1/acls/$IQN2" || { daemon_log_tail; fail "(d) second ACL"; }
iscsiadm -m iface -I second -o new >/dev/null
iscsiadm -m iface -I second -o update -n iface.initiatorname -v "$IQN2" >/dev/null
iscsiadm -m discovery -t sendtargets -p 127.0.0.1 -I second >/dev/null
iscsiadm -m node -T "$IQN" -p 127.0.0.1 -I second --login >/dev/null
two() { [ "$(devices_of iscsi_tcp 1 | wc -l)" = 2 ]; }
wait_for 30 two || fail "(d) the second initiator sees no tape"
udevadm settle --timeout=30
sgs=""
for d in $(devices_of iscsi_tcp 1); do sgs="$sgs $(node_of "$d" scsi_generic)"; done
for sg in $sgs; do lio_py tur "$sg" >/dev/null || true; lio_py tur "$sg" >/dev/null || true; done
renumber_and_wait
told=0
for sg in $sgs; do
    got=$(lio_py tur "$sg" || true)
    note "(d) first TUR via $sg after the re-point: $got"
    case $got in *6/29/*) told=$((told + 1)) ;; esac
done
echo "RESET-SCOPE: $told of 2 initiators got 29h"
[ "$told" = 2 ] || fail "(d) only $told of 2 initiators were told of the reset"
pass "(d) both initiators got UNIT ATTENTION 29h"
iscsiadm -m node -T "$IQN" -p 127.0.0.1 -I second --logout >/dev/null || true
iscsiadm -m iface -I second -o delete >/dev/null || true

# (f) same address, new object: the dead backstore must go before pscsi can
# bind the new one; meanwhile each mapping is swapped to the holder LUN (ALUA
# Unavailable: NOT READY 04h/0Ch), never left to LIO's virtual LUN 0 (which
# would answer TEST UNIT READY with GOOD)
same_address_watch "$IQN" "(f)"
pass "(f) the holder answered until the reset reached the initiator"

check "no logout of the first session" iscsiadm -m session
check "initiator device $RNST unchanged (no rescan)" test "$(remote_tape)" = "$RHCTL"
no_daemon_errors
