#!/bin/bash
# The tape goes and comes back at the SAME address (delete, then a host
# rescan): the backstore name is unchanged, but LIO's pscsi backstore still
# holds the deleted device; the daemon must re-bind it, and the initiator's
# device must work again without logout or rescan.
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
export TS_SCENARIO=lio-rescan
# shellcheck disable=SC1091
. "$(dirname "$0")/../lio-lib.sh"
trap lio_cleanup EXIT
IQN=iqn.2007-04.com.example:lio-rescan

export_and_login "$IQN"
check "initiator TUR before" lio_py tur "$RSG"
old=$HCTL
echo 1 > "/sys/bus/scsi/devices/$old/delete"
sleep 1
echo '- - -' > "/sys/class/scsi_host/host${old%%:*}/scan"
udevadm settle --timeout=30
check "the tape is back at the same address $old" test -e "/sys/bus/scsi/devices/$old/type"
if ! wait_for 15 lio_py tur "$RSG" >/dev/null; then
    note "initiator TUR: $(lio_py tur "$RSG" || true)"
    cat "$LIO"/core/pscsi_*/tapeshared-*/info 2>/dev/null | indent || true
    daemon_log_tail 20
    fail "initiator TUR GOOD after the tape came back at the same address"
fi
pass "initiator TUR GOOD again"
check "configfs: export on $old" exported "$IQN" "$old"
inquiry_is_tape "$RSG"
out=$(tape_io "$RNST" 2 2>&1) || { printf '%s\n' "$out" | indent; fail "I/O after the rescan"; }
pass "after the rescan: $out"
no_daemon_errors
