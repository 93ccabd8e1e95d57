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
tc() { targetcli "$@" >/dev/null; }
# rtslib-fb takes H:C:T:L in some versions only; else the tape's sg node
if targetcli /backstores/pscsi create name=dds4 dev="$HCTL" 2>&1 | indent; then
    test -d "$LIO"/core/pscsi_*/dds4 || tc /backstores/pscsi create name=dds4 \
        dev="$(node_of "$HCTL" scsi_generic)"
fi
check "targetcli: pscsi backstore" test -d "$LIO"/core/pscsi_*/dds4
note "targetcli's backstore: $(grep -h . "$LIO"/core/pscsi_*/dds4/udev_path 2>/dev/null)"
check "targetcli: target" tc /iscsi create "$IQN"
check "targetcli: LUN" tc "/iscsi/$IQN/tpg1/luns" create /backstores/pscsi/dds4
check "targetcli: ACL" tc "/iscsi/$IQN/tpg1/acls" create "$GUEST_IQN"
check "targetcli: CHAP" tc "/iscsi/$IQN/tpg1/acls/$GUEST_IQN" set auth userid=backup \
    password=s3cretpassw0rd mutual_userid=target mutual_password=t4rgetsecret1
check "targetcli saveconfig" tc saveconfig savefile="$SAVED"
check "targetcli clearconfig" tc clearconfig confirm=True

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

doctor() { ts -c "${1:-$TS_CONF}" doctor 2>&1 && DOC_RC=0 || DOC_RC=$?; }
expect() {  # expect RC LEVEL PATTERN WHAT
    local out
    out=$(doctor "${5:-}")
    if [ "$DOC_RC" != "$1" ] || ! printf '%s\n' "$out" | grep -q "^$2 .*$3"; then
        printf '%s\n' "$out" | indent
        fail "doctor: $4 (exit $DOC_RC, wanted $1 and a $2 line /$3/)"
    fi
    pass "doctor: $4 (exit $1): $(printf '%s\n' "$out" | grep "^$2 .*$3" | head -n1)"
}
out=$(doctor) || true
printf '%s\n' "$out" | indent
[ "$DOC_RC" != 2 ] || fail "doctor finds no failure on a working host"
pass "doctor on the working host: exit $DOC_RC"
ts -c "$TS_CONF" doctor --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["schema"] == 1 and d["checks"]' ||
    fail "doctor --json"

mkdir -p /etc/target && cp "$SAVED" /etc/target/saveconfig.json
expect 2 fail "saveconfig.json: target $IQN is ours" "targetcli's saved configuration claims our target"
rm -f /etc/target/saveconfig.json
mkdir -p /etc/tgt/conf.d
printf '<target iqn.2001-04.com.example:other>\n  direct-store %s\n</target>\n' \
    "$(node_of "$HCTL" scsi_generic)" > /etc/tgt/conf.d/lio-doctor.conf
expect 2 fail "is our device serial:$SERIAL" "a tgt targets.conf claims our device"
rm -f /etc/tgt/conf.d/lio-doctor.conf

alt=/etc/tapeshared/alt/tapeshared.conf
mkdir -p "${alt%/*}"
variant() { sed "$1" "$TS_CONF" > "$alt"; cat /etc/tapeshared/conf.d/imported-targetcli.conf >> "$alt"; }
variant 's/^portal = .*/portal = 192.0.2.99/'
expect 1 warn "portal: 192.0.2.99 has no address" "the portal address is absent" "$alt"
variant 's|^backend = lio|&\nstate_dir = /proc/tapeshared|'
expect 2 fail "state_dir: /proc/tapeshared" "the state directory is not writable" "$alt"
variant 's|^backend = lio|&\nfirewall = iptables\nfirewall_parent = NOSUCH|'
expect 2 fail "firewall parent chain" "the firewall's parent chain is missing" "$alt"
sed "s/^lun0 = serial:.*/lun0 = serial:NOSUCHTAPE/" "$TS_CONF" /etc/tapeshared/conf.d/imported-targetcli.conf > "$alt"
expect 1 warn "serial:NOSUCHTAPE not present" "a configured device is missing" "$alt"
expect 2 fail "configuration:" "a broken configuration" /nonexistent/tapeshared.conf
stop_daemon
lio_teardown
if rmdir "$LIO/iscsi" 2>/dev/null; then
    expect 2 fail "lio $LIO/iscsi: absent" "the iSCSI fabric is not registered"
    mkdir "$LIO/iscsi"
else
    note "the guest's kernel keeps $LIO/iscsi: that check is failed in the unit tests only"
fi
