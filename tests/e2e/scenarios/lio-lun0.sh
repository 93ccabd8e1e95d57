#!/bin/bash
# A tape back at the same address under LIO, on its own (lio-reset runs it
# after renumberings; this one runs on any guest kernel): while the dead
# backstore is replaced, a TEST UNIT READY + INQUIRY loop on the initiator's
# sg node sees the holder LUN's NOT READY (04h/0Ch) and no GOOD (but a lone
# one inside a mapping swap's two syscalls) until the new drive's 29h; with
# one ACL, then with two (LIO's LUN reset).
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
export TS_SCENARIO=lio-lun0
# shellcheck disable=SC1091
. "$(dirname "$0")/../lio-lib.sh"
trap lio_cleanup EXIT
IQN=iqn.2007-04.com.example:lio-lun0

export_and_login "$IQN"
lio_py tur "$RSG" >/dev/null || true  # the unit attention of the new nexus
check "initiator TUR" lio_py tur "$RSG"
same_address_watch "$IQN" "one ACL:"
pass "one ACL: the holder answered until the reset reached the initiator"

IQN2=iqn.1994-05.com.example:lio-lun0-second
sed -i "s/^initiator_iqns = .*/initiator_iqns = $GUEST_IQN, $IQN2/" "$TS_CONF"
kill -HUP "$DAEMON_PID"
wait_for 30 test -d "$LIO/iscsi/$IQN/tpgt_1/acls/$IQN2" || { daemon_log_tail; fail "second ACL"; }
lio_py tur "$RSG" >/dev/null || true
check "initiator TUR with two ACLs" lio_py tur "$RSG"
same_address_watch "$IQN" "two ACLs:"
pass "two ACLs: the holder answered until the reset reached the initiator"

check "initiator device unchanged (no rescan)" test "$(remote_tape)" = "$RHCTL"
no_daemon_errors
