#!/bin/bash
# tgt: the daemon exports a scsi_debug tape as LUN 1 (sg pass-through), the
# guest's own initiator logs in over loopback and writes and reads it.
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/../tgt-lib.sh"
trap tgt_cleanup EXIT

check "scsi_debug tape" tape_add
hctl=$(tapes_on scsi_debug 1 | head -n1)
[ -n "$hctl" ] || fail "no local scsi_debug tape"
serial=$(serial_of "$hctl")
[ -n "$serial" ] || fail "no serial for $hctl"
pass "local tape $hctl serial $serial ($(node_of "$hctl" scsi_generic))"

check "tgtd started" tgt_start
write_tape_conf "$serial"
check "check-config" ts -c "$TS_CONF" check-config
daemon_start || fail "tapeshared run: export live and verified"
pass "tapeshared run: export live and verified"
sg=$(node_of "$hctl" scsi_generic)
[ "$(lun_path "$TGT_IQN" 1)" = "$sg" ] || fail "LUN 1 backing store is '$(lun_path "$TGT_IQN" 1)', want $sg"
pass "tgtd LUN 1 of $TGT_IQN is $sg (pass-through)"
tgtadm --lld iscsi --mode target --op show | grep -q "SCSI ID: tapeshared" \
    || fail "LUN 0 does not carry the ownership mark"
pass "LUN 0 carries the ownership mark"

check "iSCSI discovery and login over loopback" login "$TGT_IQN"
dev=$(remote_nst)
rhctl=$(tapes_on iscsi_tcp 1 | head -n1)
pass "initiator-side tape $rhctl ($(host_driver "$rhctl")) $dev"
[ "$(serial_of "$rhctl")" = "$serial" ] || fail "initiator tape serial differs"
pass "initiator tape reports the same serial"
# The remote copy of the same serial must not be exported by mistake.
[ "$(lun_path "$TGT_IQN" 1)" = "$sg" ] || fail "LUN 1 moved to $(lun_path "$TGT_IQN" 1) after login"
pass "export still on the local $sg after the remote copy appeared"

mt -f "$dev" status | grep -q ONLINE || { mt -f "$dev" status | indent; fail "mt status: not ONLINE"; }
pass "mt status ONLINE"
out=$(tape_io "$dev" 4,3,2 65536 2>&1) || { printf '%s\n' "$out" | indent; fail "write/read/compare through the export"; }
pass "write/read/compare through the export: $out"

ts -c "$TS_CONF" status | indent
check "status exit 0 with the initiator connected" ts -c "$TS_CONF" status
ts -c "$TS_CONF" status --json | python3 -c '
import json, sys
doc = json.load(sys.stdin)
s = doc["exports"][0]["sessions"]
assert any(x["initiator"] == sys.argv[1] for x in s), s' "$GUEST_IQN" \
    || fail "status does not show the initiator session"
pass "status shows the initiator session"
