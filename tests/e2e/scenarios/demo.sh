#!/bin/bash
# One-command demo (not run by pytest; it stops at the first failure):
#   python3 tests/e2e/run.py demo
# In a throwaway guest: a scsi_debug tape, `tapeshared scan`, an export with
# tgt by serial, the guest's own initiator writing and reading it over
# iSCSI, then the tape renumbered (gone, back on another SCSI host) while
# the initiator stays logged in: `tapeshared status` before and after, and
# the measured outage.
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/../tgt-lib.sh"
trap tgt_cleanup EXIT
say() { printf '\n==> %s\n' "$*"; }

say "a tape appears: modprobe scsi_debug ptype=1 vpd_use_hostno=0"
tape_add
hctl=$(tapes_on scsi_debug 1 | head -n1)

say "tapeshared scan"
ts scan | indent
serial=$(serial_of "$hctl")

say "configuration ($TS_CONF): backend tgt, the tape by its serial"
write_tape_conf "$serial"
indent < "$TS_CONF"
tgt_start
ts -c "$TS_CONF" check-config | indent

say "tapeshared run (the daemon), then tapeshared status"
daemon_start || fail "the export did not come up"
ts -c "$TS_CONF" status | indent

say "an initiator logs in (iscsiadm, loopback) and uses the tape"
login "$TGT_IQN" || fail "login"
dev=$(remote_nst)
rsg=$(node_of "$(tapes_on iscsi_tcp 1 | head -n1)" scsi_generic)
echo "    initiator-side tape: $dev ($rsg) on an iscsi_tcp host"
mt -f "$dev" status | indent
tape_io "$dev" 3,2 65536 | indent

say "status before renumbering (initiator connected)"
ts -c "$TS_CONF" status | indent

say "renumber: echo 1 > /sys/bus/scsi/devices/$hctl/delete; (away) echo 1 > .../scsi_debug/add_host"
old_sg=$(lun_path "$TGT_IQN" 1)
# shellcheck disable=SC2317  # called through wait_for / renumber_measure
dropped() { [ -z "$(lun_path "$TGT_IQN" 1)" ] && ! tgtd_holds "$old_sg"; }
# shellcheck disable=SC2317
while_gone() {
    echo "    the tape is gone; the initiator gets: $(sg_turs -v "$rsg" 2>&1 | grep -m1 -i 'additional sense' | sed 's/^ *//')"
    wait_for 60 dropped || fail "the daemon did not drop LUN 1 while the tape was away"
    echo "    the daemon dropped LUN 1 (tgtd released the dead $old_sg); now: $(sg_turs -v "$rsg" 2>&1 | grep -m1 -i 'additional sense' | sed 's/^ *//')"
    ts -c "$TS_CONF" status | indent
}
renumber_measure "$hctl" "$rsg" || fail "renumbering"
echo "    the tape is back at $R_NEW (was $hctl); daemon: $R_DAEMON"
echo "    the initiator's $dev answered TEST UNIT READY again $R_MS ms after the tape came back (add_host written; its scan took $R_SCAN_MS ms; no logout, rescan: $R_RESCAN)"
tape_io "$dev" 2 65536 | indent

say "status after renumbering"
ts -c "$TS_CONF" status | indent
say "what the daemon did (its log)"
grep -E 'INFO: (ran tgtadm|\[export)' "$TS_LOG" | cut -d' ' -f2- | indent
echo
echo "demo: renumbered $hctl -> $R_NEW with the initiator logged in; outage $R_MS ms"
