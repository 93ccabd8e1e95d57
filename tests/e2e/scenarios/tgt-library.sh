#!/bin/bash
# tgt: a library as one target: the changer as LUN 1 and two drives as LUNs
# 2 and 3 (tgt's own controller is LUN 0), each found by its serial; the
# initiator sees types 8, 1, 1 behind LUN 0, the same serials, and a drive
# works. scsi_debug identities: see lio-library.sh (num_tgts gives distinct
# serials; ptype applies to devices created after it is written).
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/../tgt-lib.sh"
trap tgt_cleanup EXIT
SDEBUG=/sys/bus/pseudo/drivers/scsi_debug

check "scsi_debug: three tapes (num_tgts=3)" tape_add num_tgts=3
first=$(tapes_on scsi_debug 1 | sort -t: -k3n | head -n1)
echo 1 > "/sys/bus/scsi/devices/$first/delete"
echo 8 > "$SDEBUG/ptype"
echo 1 > "$SDEBUG/num_tgts"
echo 1 > "$SDEBUG/add_host"
udevadm settle --timeout=30
changer=$(tapes_on scsi_debug 8 | head -n1)
mapfile -t drives < <(tapes_on scsi_debug 1 | sort -t: -k3n)
if [ -z "$changer" ] || [ "${#drives[@]}" != 2 ]; then
    lsscsi -g | indent
    fail "one changer and two drives"
fi
c_serial=$(serial_of "$changer")
d1_serial=$(serial_of "${drives[0]}")
d2_serial=$(serial_of "${drives[1]}")
[ "$(printf '%s\n' "$c_serial" "$d1_serial" "$d2_serial" | sort -u | wc -l)" = 3 ] \
    || fail "serials collide: $c_serial $d1_serial $d2_serial"
pass "changer $changer ($c_serial), drives ${drives[0]} ($d1_serial), ${drives[1]} ($d2_serial)"

tgt_start
write_conf <<CONF
[export library0]
iqn = $TGT_IQN
lun1 = serial:$c_serial
lun2 = serial:$d1_serial
lun3 = serial:$d2_serial
initiators = $PORTAL
initiator_iqns = $GUEST_IQN
CONF
check "check-config" ts -c "$TS_CONF" check-config
daemon_start || fail "library export live and verified"
for pair in "1:$changer" "2:${drives[0]}" "3:${drives[1]}"; do
    want=$(node_of "${pair#*:}" scsi_generic)
    [ "$(lun_path "$TGT_IQN" "${pair%%:*}")" = "$want" ] \
        || fail "LUN ${pair%%:*} is '$(lun_path "$TGT_IQN" "${pair%%:*}")', want $want"
done
pass "tgtd LUNs 1, 2, 3 -> $(for n in 1 2 3; do lun_path "$TGT_IQN" $n; done | paste -sd' ' -)"

check "iSCSI login over loopback" login "$TGT_IQN"
three() { [ "$(tapes_on iscsi_tcp 1 | wc -l)" = 2 ] && [ -n "$(tapes_on iscsi_tcp 8)" ]; }
wait_for 30 three || { lsscsi -g | indent; fail "a changer and two drives on the iscsi_tcp host"; }
udevadm settle --timeout=30
rchanger=$(tapes_on iscsi_tcp 8)
[ "${rchanger##*:}" = 1 ] || fail "changer at LUN ${rchanger##*:}, want 1"
mapfile -t rdrives < <(tapes_on iscsi_tcp 1)
if [ "${rdrives[0]##*:}" != 2 ] || [ "${rdrives[1]##*:}" != 3 ]; then
    fail "drives at ${rdrives[*]}, want LUNs 2 and 3"
fi
got="$(serial_of "$rchanger") $(serial_of "${rdrives[0]}") $(serial_of "${rdrives[1]}")"
[ "$got" = "$c_serial $d1_serial $d2_serial" ] || fail "initiator-side serials: $got"
pass "initiator: changer LUN 1 ($c_serial), drives LUN 2 ($d1_serial), LUN 3 ($d2_serial)"
lsscsi | grep -e mediumx -e tape | indent

if ! out=$(tape_io "$(node_of "${rdrives[1]}" scsi_tape)" 2,1 65536 2>&1); then
    printf '%s\n' "$out" | indent
    rsg3=$(node_of "${rdrives[1]}" scsi_generic)
    sg_turs -v "$rsg3" 2>&1 | indent
    sg_requests "$rsg3" 2>&1 | indent
    sg_rbl -v "$rsg3" 2>&1 | tail -n 3 | indent
    dmesg | tail -n 8 | indent
    fail "I/O on the LUN 3 drive"
fi
pass "LUN 3 drive: $out"
check "status exit 0" ts -c "$TS_CONF" status
