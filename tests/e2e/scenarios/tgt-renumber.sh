#!/bin/bash
# tgt: with the initiator logged in, the local tape is renumbered (deleted,
# back on a new scsi_debug host). tgtd still holds the old sg node open; the
# daemon must delete and re-add LUN 1 on the new sg node, and the initiator's
# same /dev/nstN must work again. Prints the outage: from the device's return
# to the initiator's first successful command.
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/../tgt-lib.sh"
trap tgt_cleanup EXIT

tape_add
hctl=$(tapes_on scsi_debug 1 | head -n1)
serial=$(serial_of "$hctl")
[ -n "$serial" ] || fail "no serial for local tape $hctl"
tgt_start
write_tape_conf "$serial"
daemon_start || fail "export of $hctl (serial $serial) live"
pass "export of $hctl (serial $serial) live"
check "initiator logged in" login "$TGT_IQN"
dev=$(remote_nst)
rhctl=$(tapes_on iscsi_tcp 1 | head -n1)
rsg=$(node_of "$rhctl" scsi_generic)
old_sg=$(lun_path "$TGT_IQN" 1)
out=$(tape_io "$dev" 2 65536 2>&1) || { printf '%s\n' "$out" | indent; fail "I/O before renumbering"; }
pass "before: LUN 1 on $old_sg ($hctl); initiator $dev ($rsg): $out"

# --- the tape leaves and comes back on a new host ---------------------------
# shellcheck disable=SC2317  # called through wait_for
dropped() { [ -z "$(lun_path "$TGT_IQN" 1)" ] && ! tgtd_holds "$old_sg"; }
# While it is away, tgtd holds the dead sg node: the daemon drops LUN 1
# (tgtd would fail every command and spin on that fd) until it returns.
while_gone() {
    local sense t0
    t0=$(now_ms)
    if sense=$(sg_turs -v "$rsg" 2>&1); then
        fail "initiator TUR succeeded while the tape is gone"
    fi
    pass "tape gone: initiator TUR fails ($(echo "$sense" | grep -i -e 'sense key' -e 'additional sense' | sed 's/^ *//' | paste -sd';' -))"
    wait_for 60 dropped || fail "LUN 1 still on $old_sg 60 s after the tape left"
    pass "daemon deleted LUN 1 while the tape is away; tgtd no longer holds $old_sg ($(( $(now_ms) - t0 )) ms)"
    sense=$(sg_turs -v "$rsg" 2>&1) && fail "initiator TUR succeeded on the deleted LUN"
    pass "meanwhile the initiator gets: $(echo "$sense" | grep -i -e 'sense key' -e 'additional sense' | sed 's/^ *//' | paste -sd';' -)"
}
renumber_measure "$hctl" "$rsg" || fail "renumbering"
pass "tape back at $R_NEW (was $hctl)"
new_sg=$(lun_path "$TGT_IQN" 1)
[ "$new_sg" = "$(node_of "$R_NEW" scsi_generic)" ] \
    || fail "LUN 1 backing store $new_sg is not the new device's $(node_of "$R_NEW" scsi_generic)"
pass "daemon re-added LUN 1 on $new_sg (was $old_sg): $R_DAEMON"
pass "initiator TUR GOOD $R_MS ms after add_host was written (its scan took $R_SCAN_MS ms; $R_FAILS failed TURs before; rescan needed: $R_RESCAN)"
[ -z "$R_SEEN" ] || echo "    failed TURs:$R_SEEN"
if tgtd_restarted; then
    fail "tgtd died during the renumbering (pid $R_TGTD)"
fi
pass "tgtd kept running (pid $R_TGTD)"
echo "RESULT tgt renumber outage: $R_MS ms (rescan: $R_RESCAN)"

[ "$(remote_nst)" = "$dev" ] || fail "initiator tape is now $(remote_nst), was $dev"
out=$(tape_io "$dev" 2,1 65536 2>&1) || { printf '%s\n' "$out" | indent; fail "I/O after renumbering"; }
pass "after: the same $dev works: $out"
check "status exit 0 after renumbering" ts -c "$TS_CONF" status
ts -c "$TS_CONF" status | indent
grep -E "LUN 1|tgtadm.*logicalunit" "$TS_LOG" | tail -n 6 | indent || true
