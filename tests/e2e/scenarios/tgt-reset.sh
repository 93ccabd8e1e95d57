#!/bin/bash
# tgt: after a re-point the initiator is told, never writes at the wrong place.
# The daemon resets the drive (no-escalation LU reset) after the old LUN is
# gone and before tgtd exports the new device instance, so the drive's own
# unit attention (29h) reaches the first initiator command and st forgets a
# position the drive no longer has. With the initiator logged in throughout
# (no logout, no rescan, the same /dev/nstN):
#  (a) an open, idle writer: its next writes fail, its close writes nothing;
#  (b) an archive appended by a fresh open after the renumbering fails;
#  (c) a writer that opens during the outage ends with EIO, or st and the
#      drive agree on the position;
#  (x) a WRITE that fails on the host (scsi_debug error injection, host byte
#      DID_ERROR): what tgt reports to the initiator;
#  (e) a library: only the renumbered drive reports 29h.
# scsi_debug keeps a tape's data per device: a renumbered tape comes back
# blank, so "nothing written at the wrong place" is checked as "nothing on
# the new medium" (host READ POSITION at block 0, blank at BOT).
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/../tgt-lib.sh"
trap tgt_cleanup EXIT
FLAG=/tmp/tapeshared-e2e/go

# writer_failed FILE: the writer's output has an EIO step.
writer_failed() { grep -q ' EIO$' "$1"; }
steps() { paste -sd',' "$1"; }

# renumber_idle HCTL: renumber the tape and wait (no initiator command) until
# the daemon has reset and re-exported it; sets NEW.
renumber_idle() {
    local t0
    t0=$(now_ms)
    tape_leave "$1" || fail "$1 did not leave"
    NEW=$(tape_return) || fail "the tape did not come back"
    wait_for 60 reexported "$TGT_IQN" 1 "$NEW" "$t0" \
        || { tail -n 20 "$TS_LOG" | indent; fail "LUN 1 re-exported on $NEW after a reset"; }
}

# blank_after HCTL DEV: nothing on the new medium: the host's READ POSITION is
# block 0, and the initiator (after a rewind) reads nothing at BOT.
blank_after() {
    local pos
    pos=$(host_position "$(node_of "$1" scsi_generic)") || fail "READ POSITION on $1"
    [ "$pos" = 0 ] || fail "the drive at $1 is at block $pos: something was written"
    mt -f "$2" rewind
    local got
    got=$(dd if="$2" bs=64k count=1 2>/dev/null | wc -c)
    [ "$got" = 0 ] || fail "read $got bytes at BOT of the new medium"
}

mkdir -p /tmp/tapeshared-e2e
tape_add
hctl=$(tapes_on scsi_debug 1 | head -n1)
serial=$(serial_of "$hctl")
[ -n "$serial" ] || fail "no serial for local tape $hctl"
tgt_start
write_tape_conf "$serial"
daemon_start || fail "export of $hctl (serial $serial) live"
grep -q "reset the logical unit $hctl " "$TS_LOG" || fail "the first export reset $hctl"
check "initiator logged in" login "$TGT_IQN"
dev=$(remote_nst)
rsg=$(node_of "$(tapes_on iscsi_tcp 1 | head -n1)" scsi_generic)
# the first export's reset is the first command's UA: consume it, as any user would
first=$(sense_of "$rsg")
case $first in
    *29*|*"Power on"*) pass "export: drive reset before tgtd exported it; the initiator's first TUR got: $first" ;;
    *) note "export: the initiator's first TUR after login got: $first (the login's scan may have taken the UA)" ;;
esac
mt -f "$dev" setblk 0

# --- (a) an open writer, idle across the renumbering --------------------------
out=/tmp/tapeshared-e2e/writer-a
rm -f "$FLAG" "$FLAG.ready"
tape_writer "$dev" 1 3 3 "$FLAG" > "$out" 2>&1 &
wpid=$!
wait_for 30 test -e "$FLAG.ready" || { indent < "$out"; fail "(a) writer wrote 3 blocks"; }
[ "$(host_position "$(node_of "$hctl" scsi_generic)")" -le 3 ] || fail "(a) drive position"
renumber_idle "$hctl"
touch "$FLAG"
wait "$wpid" || true
sed -n '5,$p' "$out" | grep -q ' EIO$' \
    || { indent < "$out"; fail "(a) the idle writer's writes after the renumbering succeeded"; }
eio=$(sed -n '5,$p' "$out" | grep -n ' EIO$' | head -n1 | cut -d: -f1)
[ "$eio" -le 2 ] || { indent < "$out"; fail "(a) first EIO on write $eio after the renumbering (want <= 2)"; }
grep -q '^close EIO$' "$out" || note "(a) close: $(tail -n1 "$out")"
st=$(st_position "$dev")
blank_after "$NEW" "$dev"
pass "(a) idle writer across renumbering $hctl -> $NEW: $(steps "$out"); st then: $st; nothing written on the new medium (host READ POSITION 0, blank at BOT)"
hctl=$NEW

# --- (b) two archives with a renumbering between them --------------------------
out=/tmp/tapeshared-e2e/writer-b
mt -f "$dev" rewind
tape_writer "$dev" 1 3 0 > "$out" 2>&1
writer_failed "$out" && { indent < "$out"; fail "(b) archive 1"; }
pos=$(host_position "$(node_of "$hctl" scsi_generic)")
[ "$pos" = 4 ] || fail "(b) archive 1: drive at block $pos, want 4 (3 blocks, a filemark)"
renumber_idle "$hctl"
tape_writer "$dev" 2 3 0 > "$out" 2>&1
writer_failed "$out" || { indent < "$out"; fail "(b) archive 2 after the renumbering was written"; }
st=$(st_position "$dev")
blank_after "$NEW" "$dev"
pass "(b) archive 1 on $hctl (drive block 4 before); archive 2 after renumbering to $NEW: $(steps "$out"); st then: $st; nothing written on the new medium"
note "(b) archive 1 left with the old device (scsi_debug keeps data per device)"
hctl=$NEW

# --- (c) a writer that opens during the outage ---------------------------------
out=/tmp/tapeshared-e2e/writer-c
mt -f "$dev" rewind
t0=$(now_ms)
tape_leave "$hctl" || fail "(c) $hctl did not leave"
gone() { [ -z "$(lun_path "$TGT_IQN" 1)" ]; }
wait_for 60 gone || fail "(c) LUN 1 deleted while the tape is away"
tape_writer "$dev" 3 0 3 > "$out" 2>&1 &
wpid=$!
sleep 1
NEW=$(tape_return) || fail "(c) the tape did not come back"
wait_for 60 reexported "$TGT_IQN" 1 "$NEW" "$t0" || fail "(c) LUN 1 re-exported on $NEW"
waited() { ! kill -0 "$wpid" 2>/dev/null; }
wait_for 90 waited || { indent < "$out"; fail "(c) the writer still runs 90 s after the return"; }
st=$(st_position "$dev")
pos=$(host_position "$(node_of "$NEW" scsi_generic)") || fail "(c) READ POSITION on $NEW"
if writer_failed "$out"; then
    pass "(c) writer opened during the outage: $(steps "$out") (EIO); st then: $st, drive at block $pos"
else
    # st counted one file of 3 blocks from BOT: the drive holds 3 blocks and a filemark
    [ "$st" = "file 1 block 0" ] && [ "$pos" = 4 ] \
        || { indent < "$out"; fail "(c) writer succeeded but st says '$st', the drive block $pos"; }
    pass "(c) writer opened during the outage: $(steps "$out"); st ($st) and the drive (block $pos) agree"
fi
hctl=$NEW

# --- (x) a WRITE that fails on the host: what does tgt report? ----------------
mt -f "$dev" rewind
first=$(sense_of "$rsg")
[ "$first" = GOOD ] || note "(x) TUR before the injection: $first"
mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
inject=/sys/kernel/debug/scsi_debug/$hctl/error
[ -w "$inject" ] || fail "(x) no scsi_debug error injection at $inject"
# type 2 (fail the command), once, WRITE(6) 0x0a: status GOOD, host byte
# DID_ERROR (0x07), no driver byte, no sense
echo "2 -1 0x0a 0x00 0x07 0x00 0x00 0x00 0x00" > "$inject"
out=/tmp/tapeshared-e2e/writer-x
tape_writer "$dev" 4 3 0 > "$out" 2>&1
pos=$(host_position "$(node_of "$hctl" scsi_generic)") || fail "(x) READ POSITION"
left=$(awk '$1 == 2 { print $2 }' "$inject" | head -n1)
dmesg | grep -i -e 'sg_' -e 'tgtd' -e 'st[0-9]*:' | tail -n 4 | indent || true
if writer_failed "$out"; then
    pass "tgt reports a host-side WRITE failure as an error: the writer got $(steps "$out"); drive at block $pos (rule count now ${left:-?})"
elif [ "$pos" -lt 4 ]; then
    pass "tgt reports GOOD for a WRITE that failed on the host (host byte DID_ERROR): the writer saw $(steps "$out"), the drive holds $pos of 4 objects (3 blocks, a filemark): silent data loss (rule count now ${left:-?})"
else
    fail "(x) the injected WRITE failure did not take effect: writer $(steps "$out"), drive block $pos, rule count ${left:-?}"
fi
echo "RESULT tgt host WRITE failure: writer $(steps "$out"), drive block $pos"

# --- (e) a library: only the renumbered drive reports 29h ----------------------
logout_all
daemon_stop
systemctl stop tgt.service
[ -z "${TAPESHARED_RESULTS:-}" ] || cp "$TS_LOG" "$TAPESHARED_RESULTS/tgt-reset.tape.daemon.log"
: > "$TS_LOG"
modprobe -r scsi_debug || fail "(e) scsi_debug unloaded"
tgt_start
SDEBUG=/sys/bus/pseudo/drivers/scsi_debug
tape_add num_tgts=3
first=$(tapes_on scsi_debug 1 | sort -t: -k3n | head -n1)
echo 1 > "/sys/bus/scsi/devices/$first/delete"
echo 8 > "$SDEBUG/ptype"
echo 1 > "$SDEBUG/num_tgts"
echo 1 > "$SDEBUG/add_host"
udevadm settle --timeout=30
echo 1 > "$SDEBUG/ptype"
changer=$(tapes_on scsi_debug 8 | head -n1)
mapfile -t drives < <(tapes_on scsi_debug 1 | sort -t: -k3n)
[ -n "$changer" ] && [ "${#drives[@]}" = 2 ] || { lsscsi -g | indent; fail "(e) one changer and two drives"; }
write_conf <<CONF
[export library0]
iqn = $TGT_IQN
lun1 = serial:$(serial_of "$changer")
lun2 = serial:$(serial_of "${drives[0]}")
lun3 = serial:$(serial_of "${drives[1]}")
initiators = $PORTAL
initiator_iqns = $GUEST_IQN
CONF
daemon_start || fail "(e) library export live and verified"
check "(e) iSCSI login" login "$TGT_IQN"
three() { [ "$(tapes_on iscsi_tcp 1 | wc -l)" = 2 ] && [ -n "$(tapes_on iscsi_tcp 8)" ]; }
wait_for 30 three || { lsscsi -g | indent; fail "(e) a changer and two drives on the initiator"; }
udevadm settle --timeout=30
rch=$(node_of "$(tapes_on iscsi_tcp 8)" scsi_generic)
mapfile -t rdrives < <(tapes_on iscsi_tcp 1)
r2=$(node_of "${rdrives[0]}" scsi_generic)
r3=$(node_of "${rdrives[1]}" scsi_generic)
for sg in "$rch" "$r2" "$r3"; do sense_of "$sg" >/dev/null; done  # the export's own UAs
for sg in "$rch" "$r2" "$r3"; do
    [ "$(sense_of "$sg")" = GOOD ] || fail "(e) $sg not GOOD before: $(sense_of "$sg")"
done
# the drive of LUN 3 leaves and comes back at its address: a new device instance
moved=${drives[1]}
host=${moved%%:*}
rest=${moved#*:}
t0=$(now_ms)
tape_leave "$moved" || fail "(e) $moved did not leave"
dropped3() { [ -z "$(lun_path "$TGT_IQN" 3)" ]; }
wait_for 60 dropped3 || fail "(e) LUN 3 deleted while its drive is away"
echo 3 > "$SDEBUG/num_tgts"  # scsi_debug sets every host's max_id from it
echo "${rest//:/ }" > "/sys/class/scsi_host/host$host/scan"
udevadm settle --timeout=30
wait_for 60 reexported "$TGT_IQN" 3 "$moved" "$t0" || fail "(e) LUN 3 re-exported after a reset"
s3=$(sense_of "$r3")
sch=$(sense_of "$rch")
s2=$(sense_of "$r2")
case $s3 in *29*|*"Power on"*) ;; *) fail "(e) renumbered drive (LUN 3) got: $s3 (want 29h)" ;; esac
[ "$sch" = GOOD ] && [ "$s2" = GOOD ] || fail "(e) changer: $sch; LUN 2 drive: $s2 (want GOOD)"
resets=$(grep -cE 'reset the logical unit [0-9:]+ \(/dev/[a-z0-9/]+\) before' "$TS_LOG" || true)
[ "$resets" = 4 ] || { grep "reset the logical unit" "$TS_LOG" | indent; fail "(e) $resets resets, want 4 (3 at export, 1 on return)"; }
pass "(e) library: LUN 3's drive back at $moved: its next command got $s3; changer $sch, LUN 2 drive $s2; the daemon reset only that drive"
