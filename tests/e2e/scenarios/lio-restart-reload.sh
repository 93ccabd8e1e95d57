#!/bin/bash
# Stop, renumber while stopped, start: the export converges to the new
# address. SIGHUP with a bad config keeps the export (configfs unchanged, the
# error names file, section and key); a good reload applies.
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
export TS_SCENARIO=lio-restart-reload
# shellcheck disable=SC1091
. "$(dirname "$0")/../lio-lib.sh"
trap lio_cleanup EXIT
IQN=iqn.2007-04.com.example:lio-restart

export_and_login "$IQN"
before=$(configfs_snapshot)
pid=$DAEMON_PID
check "SIGTERM: daemon stops" stop_daemon
grep -q "stopping (stop_action = keep)" "$TS_LOG" || fail "no 'stopping (stop_action = keep)' in the log"
after=$(configfs_snapshot)
[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after") | indent; fail "configfs changed on stop"; }
pass "stopped (pid $pid): configfs unchanged, export kept"
check "initiator TUR with the daemon stopped" lio_py tur "$RSG"
code=0; ts -c "$TS_CONF" status >/dev/null || code=$?
[ "$code" = 3 ] || fail "status with the daemon stopped: exit $code, not 3"
pass "tapeshared status: exit 3 (not running)"

old=$HCTL
renumber "$old"
udevadm settle --timeout=30
new=$(local_tape)
[ -n "$new" ] && [ "$new" != "$old" ] || fail "the tape did not come back at a new address ($new)"
pass "renumbered while stopped: $old -> $new"
if lio_py tur "$RSG" >/dev/null; then fail "initiator TUR GOOD while the export points at the old address"; fi
pass "initiator TUR fails while nobody follows: $(lio_py tur "$RSG" || true)"

start_daemon
wait_for 30 exported "$IQN" "$new" || { daemon_log_tail; fail "restarted daemon re-exported $new"; }
pass "restarted daemon converged: export on $new"
wait_for 10 lio_py tur "$RSG" >/dev/null || fail "initiator TUR after the restart"
pass "initiator TUR GOOD again (no logout, no rescan)"
[ "$(ls -d "$LIO"/core/pscsi_*/tapeshared-* | wc -l)" = 1 ] || fail "old backstore left behind"
pass "old backstore removed"
inquiry_is_tape "$RSG"
tape_io_check "I/O after the restart" "$RNST" 2
wait_for 15 ts -c "$TS_CONF" status >/dev/null || { ts -c "$TS_CONF" status | indent || true; fail "status exit 0 after restart"; }
pass "tapeshared status: exit 0"

# A bad reload: the export stays, the error names file, section and key.
good=$(cat "$TS_CONF")
printf '%s\nbogus_key = 1\n' "$good" > "$TS_CONF"
before=$(configfs_snapshot)
lines=$(wc -l < "$TS_LOG")
kill -HUP "$DAEMON_PID"
refused() { tail -n +"$((lines + 1))" "$TS_LOG" | grep "reload refused"; }
wait_for 15 refused >/dev/null || { daemon_log_tail; fail "no 'reload refused' in the log"; }
msg=$(refused | head -n1)
for want in "$TS_CONF" "export" "bogus_key"; do
    case $msg in *"$want"*) ;; *) fail "reload error does not name $want: $msg" ;; esac
done
pass "bad reload refused: ${msg#*: ERROR: }"
sleep 1
check "daemon still running" kill -0 "$DAEMON_PID"
after=$(configfs_snapshot)
[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after") | indent; fail "configfs changed on a bad reload"; }
pass "configfs unchanged by the bad reload"
check "initiator TUR after the bad reload" lio_py tur "$RSG"

# A good reload: a second initiator IQN gets an ACL with the LUN mapped.
OTHER=iqn.1994-05.com.example:second
printf '%s\n' "$good" | sed "s/^initiator_iqns = .*/&, $OTHER/" > "$TS_CONF"
grep -q "$OTHER" "$TS_CONF" || fail "test bug: config not edited"
kill -HUP "$DAEMON_PID"
acl_mapped() { [ -L "$LIO/iscsi/$IQN/tpgt_1/acls/$OTHER/lun_0/lun" ]; }
wait_for 15 acl_mapped || { daemon_log_tail; fail "good reload: ACL for $OTHER"; }
pass "good reload applied: ACL $OTHER with LUN 0 mapped"
check "export unchanged for $GUEST_IQN" exported "$IQN" "$new"
check "initiator TUR after the good reload" lio_py tur "$RSG"
inquiry_is_tape "$RSG"
wait_for 15 ts -c "$TS_CONF" status >/dev/null || { ts -c "$TS_CONF" status | indent || true; fail "status exit 0 after reload"; }
pass "tapeshared status: exit 0"
if grep -e Traceback "$TS_LOG"; then fail "traceback in the daemon log"; fi
pass "daemon log: no traceback (the one ERROR is the refused reload)"
