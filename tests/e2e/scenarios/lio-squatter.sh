#!/bin/bash
# absent = keep, and a disk takes the kept address: a tape is exported, then
# deleted; a scsi_debug disk (ptype=0) appears at the tape's old H:C:T:L. The
# daemon must never export the disk (the initiator's INQUIRY never reports a
# disk; status shows the problem and exits non-zero); when the tape returns
# at another address it is exported there and status is clean again.
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
export TS_SCENARIO=lio-squatter
# shellcheck disable=SC1091
. "$(dirname "$0")/../lio-lib.sh"
trap lio_cleanup EXIT
IQN=iqn.2007-04.com.example:lio-squatter
begin=$(now_ns)
stamp() { local ms; ms=$(ms_since "$begin"); printf 'TIME: %d.%d s: %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*"; }

# logged STATUS [AT]: the daemon logged that LUN 0 changed to STATUS (at AT);
# cheaper than polling `tapeshared status` (a Python start costs seconds under TCG)
logged() { grep -q "LUN 0 (serial:$SERIAL): $1 at ${2:-}" "$TS_LOG"; }
# status_json: `tapeshared status --json` once (exit code in $STATUS_RC),
# then "STATUS FIRST-PROBLEM" of LUN 0
status_json() {
    local out
    out=$(ts -c "$TS_CONF" status --json 2>/dev/null) && STATUS_RC=0 || STATUS_RC=$?
    printf '%s\n' "$out" | python3 -c '
import json, sys
export = json.load(sys.stdin)["exports"][0]
print(export["luns"][0]["status"], (export["problems"] or ["-"])[0])'
}
# no_remote_disk: no direct-access device (type 0) on an iscsi_tcp host.
no_remote_disk() { [ -z "$(devices_of iscsi_tcp 0)" ]; }

export_and_login "$IQN"
inquiry_is_tape "$RSG"
stamp "exported and logged in"
old=$HCTL

echo 1 > "/sys/bus/scsi/devices/$old/delete"
udevadm settle --timeout=30
wait_for 20 logged kept "$old" || { daemon_log_tail; fail "LUN kept at $old while the tape is away"; }
pass "tape $old deleted: the LUN is kept at its last address"
stamp "kept"

# the disk: scsi_debug's ptype is writable at run time; a host scan makes a
# new device at the same H:C:T:L with it (vpd_use_hostno=0: the same serial
# as the tape had, so only its type and presence tell it apart)
echo 0 > "$SDEBUG/ptype" || fail "cannot set scsi_debug ptype=0"
echo '- - -' > "/sys/class/scsi_host/host${old%%:*}/scan"
udevadm settle --timeout=30
check "a disk (type 0) now holds $old" test "$(cat "/sys/bus/scsi/devices/$old/type" 2>/dev/null)" = 0
pass "disk at $old: block $(ls "/sys/bus/scsi/devices/$old/block" 2>/dev/null | tr '\n' ' ')"

wait_for 30 logged squatted || { daemon_log_tail; fail "the daemon refuses the squatter at $old"; }
stamp "refused by the daemon"
status_json > "$TAPESHARED_RESULTS/lio-squatter-status.txt"  # not in a subshell: STATUS_RC
out=$(cat "$TAPESHARED_RESULTS/lio-squatter-status.txt")
[ "$STATUS_RC" = 150 ] || fail "status exit $STATUS_RC with a squatter (want 150): $out"
case $out in
    "squatted "*"now holds"*) pass "status exit 150, LUN 0 squatted: ${out#squatted }" ;;
    *) fail "status does not show the squatter: $out" ;;
esac
grep -q "now holds" "$TS_LOG" || fail "daemon log does not report the squatter"
pass "daemon log: $(grep -m1 'now holds' "$TS_LOG" | sed 's/^.*WARNING[: ]*//')"

stamp "status checked"
# the initiator: a rescan finds no disk, and what it reaches is never the disk
iscsiadm -m session --rescan >/dev/null 2>&1 || true
udevadm settle --timeout=30
sleep 1
check "initiator: no disk on an iscsi_tcp host after a rescan" no_remote_disk
for dev in /sys/bus/scsi/devices/*:*:*:*; do
    h=${dev##*/}
    [ "$(proc_name_of "$h")" = iscsi_tcp ] || continue
    sg=$(node_of "$h" scsi_generic) || continue
    inq=$(inquiry "$sg")
    case $inq in
        *disk*|*"Direct access"*|*"direct access"*) fail "initiator INQUIRY via $sg reports the disk: $inq" ;;
    esac
    pass "initiator INQUIRY via $sg ($h): $inq (not the disk)"
done
for b in "$LIO"/core/pscsi_*/tapeshared-*; do
    [ -d "$b" ] || continue
    info=$(tr '\n' ' ' < "$b/info")
    case $info in
        *"Direct-Access"*) fail "backstore ${b##*/} serves the disk: $info" ;;
    esac
    note "backstore ${b##*/}: $info"
done

stamp "initiator checked"
# the tape returns elsewhere: exported there, never the disk
echo 1 > "$SDEBUG/ptype"
echo 1 > "$SDEBUG/add_host"
udevadm settle --timeout=30
wait_for 20 have_local_tape || fail "no local tape after add_host"
new=$(local_tape)
[ "$new" != "$old" ] || fail "the tape came back at $old, which the disk holds"
wait_for 30 exported "$IQN" "$new" || { daemon_log_tail; fail "export re-pointed at $new"; }
pass "tape back at $new: exported there"
stamp "re-exported"
wait_for 20 logged present "$new" || fail "the daemon logged the return at $new"
iscsiadm -m session --rescan >/dev/null 2>&1 || true
wait_remote
inquiry_is_tape "$RSG"
check "initiator: still no disk" no_remote_disk
wait_for 20 ts -c "$TS_CONF" status >/dev/null || { ts -c "$TS_CONF" status | indent; fail "status exit 0 after the return"; }
pass "status exit 0 after the return"
stamp "status clean"
backstores=$(ls -d "$LIO"/core/pscsi_*/tapeshared-* | wc -l)
[ "$backstores" = 1 ] || { ls -d "$LIO"/core/pscsi_*/tapeshared-* | indent; fail "held backstore left behind"; }
no_daemon_errors
echo "SCENARIO TIME: lio-squatter $(( $(ms_since "$begin") / 1000 )) s in the guest"
