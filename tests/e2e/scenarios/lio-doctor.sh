#!/bin/bash
# Migration from targetcli and the self-check, on a real kernel: real targetcli
# exports a scsi_debug tape (pscsi by H:C:T:L, an ACL, CHAP) and saves it;
# `tapeshared import` turns that into an export by serial which the daemon
# brings up; then `doctor` passes, and each check that the guest can break
# once is broken and seen to fail.
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
export TS_SCENARIO=lio-doctor
# shellcheck disable=SC1091
. "$(dirname "$0")/../lio-lib.sh"
IQN=iqn.2003-01.org.linux-iscsi.e2e:dds4
SAVED=${TAPESHARED_RESULTS:-/tmp}/saveconfig.json
cleanup() {
    targetcli clearconfig confirm=True >/dev/null 2>&1 || true
    rm -f /etc/target/saveconfig.json /etc/tgt/conf.d/lio-doctor.conf
    lio_cleanup
}
trap cleanup EXIT

check "scsi_debug tape" add_tape
check "LIO modules and configfs" lio_modules
HCTL=$(local_tape)
SERIAL=$(serial_of "$HCTL")
pass "local tape $HCTL, serial $SERIAL"
# One targetcli run reading its commands from stdin (each start costs seconds
# under TCG). This rtslib-fb refuses dev=H:C:T:L ("not a device file"): the
# backstore is made on the tape's sg node.
SG=$(node_of "$HCTL" scsi_generic)
tc_batch() {
    printf '%s\n' "/backstores/pscsi create name=dds4 dev=$SG" \
        "/iscsi create $IQN" "/iscsi/$IQN/tpg1/luns create /backstores/pscsi/dds4" \
        "/iscsi/$IQN/tpg1/acls create $GUEST_IQN" \
        "/iscsi/$IQN/tpg1/acls/$GUEST_IQN set auth userid=backup password=s3cretpassw0rd mutual_userid=target mutual_password=t4rgetsecret1" \
        "saveconfig savefile=$SAVED" "clearconfig confirm=True" | targetcli
    test -s "$SAVED" && ! test -e "$LIO/iscsi/$IQN"
}
check "targetcli: pscsi backstore on $SG, target, LUN, ACL, CHAP; saveconfig" tc_batch

write_config "[global]
backend = lio
portal = 127.0.0.1"
out=$(ts -c "$TS_CONF" import --from-targetcli "$SAVED" --write 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | indent
[ "$rc" = 0 ] || fail "import exits 0 (got $rc)"
grep -q "^lun0 = serial:$SERIAL\$" /etc/tapeshared/conf.d/imported-targetcli.conf ||
    fail "the import names the tape by its serial"
check "imported configuration passes check-config" ts -c "$TS_CONF" check-config
start_daemon
wait_for 30 exported "$IQN" "$HCTL" || { daemon_log_tail; fail "export of the import"; }
pass "the daemon exports the imported target on $HCTL"
wait_for 10 ts -c "$TS_CONF" plan >/dev/null || fail "plan: nothing to do"

DOC_OUT=/tmp/lio-doctor.out
doctor() { ts -c "${1:-$TS_CONF}" doctor > "$DOC_OUT" 2>&1 && DOC_RC=0 || DOC_RC=$?; }
# expect RC CONFIG WHAT "LEVEL PATTERN"...: doctor on CONFIG exits RC with each line
expect() {
    local rc=$1 conf=$2 what=$3 want
    shift 3
    doctor "$conf"
    [ "$DOC_RC" = "$rc" ] || { indent < "$DOC_OUT"; fail "doctor: $what: exit $DOC_RC, not $rc"; }
    for want in "$@"; do
        grep -q "^$want" "$DOC_OUT" || { indent < "$DOC_OUT"; fail "doctor: $what: no line /$want/"; }
        pass "doctor: $what: $(grep "^$want" "$DOC_OUT" | head -n1)"
    done
}
doctor
indent < "$DOC_OUT"
[ "$DOC_RC" != 2 ] || fail "doctor finds no failure on a working host"
pass "doctor on the working host: exit $DOC_RC"

# other tools' configurations claiming our target and our device
mkdir -p /etc/target /etc/tgt/conf.d && cp "$SAVED" /etc/target/saveconfig.json
printf '<target iqn.2001-04.com.example:other>\n  direct-store %s\n</target>\n' \
    "$(node_of "$HCTL" scsi_generic)" > /etc/tgt/conf.d/lio-doctor.conf
expect 2 "$TS_CONF" "other tools' configurations" \
    "fail .*saveconfig.json: target $IQN is ours" \
    "fail .*lio-doctor.conf: LUN 1 of iqn.2001-04.com.example:other is our device serial:$SERIAL"
rm -f /etc/target/saveconfig.json /etc/tgt/conf.d/lio-doctor.conf

# one configuration breaking four independent checks at once
alt=/etc/tapeshared/alt/tapeshared.conf
mkdir -p "${alt%/*}"
sed -e 's/^portal = .*/portal = 192.0.2.99/' \
    -e 's|^backend = lio|&\nstate_dir = /proc/tapeshared\nfirewall = iptables\nfirewall_parent = NOSUCH|' \
    "$TS_CONF" > "$alt"
sed 's/^lun0 = serial:.*/lun0 = serial:NOSUCHTAPE/' /etc/tapeshared/conf.d/imported-targetcli.conf >> "$alt"
expect 2 "$alt" "a broken host" "warn  portal: 192.0.2.99 has no address" \
    "fail  state_dir: /proc/tapeshared" "fail  firewall parent chain" \
    "warn  device dds4 LUN 0: serial:NOSUCHTAPE not present"
expect 2 /nonexistent/tapeshared.conf "no configuration" "fail  configuration:"
stop_daemon
lio_teardown
if rmdir "$LIO/iscsi" 2>/dev/null; then
    expect 2 "$TS_CONF" "no fabric" "fail  lio $LIO/iscsi: absent"
    mkdir "$LIO/iscsi"
else
    note "the guest's kernel keeps $LIO/iscsi: that check is failed in the unit tests only"
fi
