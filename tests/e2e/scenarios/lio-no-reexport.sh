#!/bin/bash
# The daemon's own export, seen back on this host through the loopback
# session, carries the same serial but is remote: never exported, and the
# export stays on the local device through events and resyncs.
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
export TS_SCENARIO=lio-no-reexport
# shellcheck disable=SC1091
. "$(dirname "$0")/../lio-lib.sh"
trap lio_cleanup EXIT
IQN=iqn.2007-04.com.example:lio-noreexport

export_and_login "$IQN"
loc=$(ts scan --json | python3 -c '
import json, sys
for d in json.load(sys.stdin)["devices"]:
    if d["hctl"] == sys.argv[1]:
        print(d["location"], d["transport"], d["serial"])' "$RHCTL")
[ "$loc" = "remote iscsi_tcp $SERIAL" ] || fail "scan of $RHCTL: '$loc', not 'remote iscsi_tcp $SERIAL'"
pass "tapeshared scan: $RHCTL is remote via iscsi_tcp with the same serial $SERIAL"
ts scan | grep -A1 "^$RHCTL" | indent

# Events (the session's device appearing) and a forced pass (SIGHUP) must not move it.
before=$(configfs_snapshot)
kill -HUP "$DAEMON_PID"
sleep 2
udevadm trigger --action=change "/sys/bus/scsi/devices/$RHCTL" || true
sleep 2
check "export still on the local device $HCTL" exported "$IQN" "$HCTL"
if backstore_for "$RHCTL" >/dev/null; then fail "a backstore is bound to the remote device $RHCTL"; fi
h=${RHCTL%%:*}
if grep -rqs "scsi_host_id=$h," "$LIO"/core/pscsi_*/*/control 2>/dev/null \
    || ls -d "$LIO"/core/pscsi_*/*-h"$h"c* >/dev/null 2>&1; then
    fail "configfs has a backstore on the iscsi_tcp host $h"
fi
pass "configfs: no backstore for the iscsi_tcp device $RHCTL (host $h)"
after=$(configfs_snapshot)
[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after") | indent; fail "configfs changed"; }
pass "configfs unchanged by events and a reload ($(echo "$after" | wc -l) objects)"
check "plan: nothing to do" ts -c "$TS_CONF" plan
check "tapeshared status exit 0" ts -c "$TS_CONF" status

# The local tape goes away: the remote copy (same serial) must not take its place.
echo 1 > "/sys/bus/scsi/devices/$HCTL/delete"
sleep 3
if backstore_for "$RHCTL" >/dev/null; then fail "the remote device was exported after the local one went"; fi
stores=$(ls -d "$LIO"/core/pscsi_*/tapeshared-* 2>/dev/null)
[ "$(echo "$stores" | wc -l)" = 1 ] && echo "$stores" | grep -q -e "-h${HCTL%%:*}c" \
    || { echo "$stores" | indent; fail "backstore not kept on the absent local $HCTL"; }
pass "local tape gone: export kept at its last local address, remote copy not exported"
lun_note=$(ts -c "$TS_CONF" status --json | python3 -c '
import json, sys
lun = json.load(sys.stdin)["exports"][0]["luns"][0]
print("%s: %s" % (lun["status"], lun["note"]))') || true
case $lun_note in
    "kept: "*"only seen through an iSCSI session"*) pass "status --json: LUN 0 $lun_note" ;;
    *) fail "status --json does not say the remote copy is not used: $lun_note" ;;
esac
no_daemon_errors
