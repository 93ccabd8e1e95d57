#!/bin/bash
# A library as one target: a changer at LUN 0 and two drives at LUNs 1 and 2,
# each found by its own serial; the initiator sees types 8, 1, 1, and per LUN
# the same INQUIRY bytes (standard, VPD 0x80, VPD 0x83) as the host's device.
#
# scsi_debug identities (sid kernel 7.2, measured): the VPD serial and NAA are
# derived from the target id and LUN (2000 + 1000 * target + lun) and, with
# vpd_use_hostno=0, not from the host: every host added with add_host repeats
# "2000". Distinct identities therefore come from num_tgts (targets 0..2 ->
# serials 2000, 3000, 4000).
#
# scsi_debug's `ptype` (sysfs, writable): a device scanned while it is N gets
# type N in sysfs on every kernel. What INQUIRY answers afterwards differs:
# 7.2's scsi_debug answers each device's own type (it uses scsi_device->type
# once set); 5.10's answers the module's current ptype for EVERY device
# (resp_inquiry: pq_pdt = sdebug_ptype), and pscsi passes INQUIRY through, so
# with ptype left at 8 the initiator saw a changer at every LUN. The library
# below is built with ptype 8 for the changer only and put back to 1; every
# INQUIRY that must see a device's own type (the initiator's scan of a LUN, the
# byte comparisons) runs with ptype at that device's type (`as_type`), which on
# 7.2 changes nothing.
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
export TS_SCENARIO=lio-library
# shellcheck disable=SC1091
. "$(dirname "$0")/../lio-lib.sh"
trap lio_cleanup EXIT
IQN=iqn.2007-04.com.example:lio-library

# Three drives on targets 0..2 of one host; the drive on target 0 makes way
# for a changer on a second host (target 0 again: serial 2000).
scsi_debug_unload || fail "scsi_debug is loaded and cannot be removed"
check "scsi_debug: three tapes (num_tgts=3)" modprobe scsi_debug ptype=1 vpd_use_hostno=0 num_tgts=3
udevadm settle --timeout=30
first=$(devices_of scsi_debug 1 | sort -t: -k3n | sed -n 1p)
echo 1 > "/sys/bus/scsi/devices/$first/delete"
echo 8 > "$SDEBUG/ptype"
echo 1 > "$SDEBUG/num_tgts"
echo 1 > "$SDEBUG/add_host"
udevadm settle --timeout=30
check "LIO modules and configfs" lio_modules

# as_type TYPE COMMAND...: COMMAND with scsi_debug's ptype at TYPE, then at 1.
as_type() {
    local rc=0
    echo "$1" > "$SDEBUG/ptype"
    shift
    "$@" || rc=$?
    echo 1 > "$SDEBUG/ptype"
    return "$rc"
}
# inq_hex NODE [PAGE]: the bytes of a standard INQUIRY (or of VPD page PAGE), hex.
inq_hex() {
    sg_inq --raw ${2:+--page=$2} "$1" 2>/dev/null | od -An -v -tx1 | tr -d ' \n'
}

changer=$(devices_of scsi_debug 8 | sed -n 1p)
mapfile -t drives < <(devices_of scsi_debug 1 | sort -t: -k3n)
[ -n "$changer" ] && [ "${#drives[@]}" = 2 ] || { lsscsi -g | indent; fail "one changer and two drives"; }
lsscsi -g | indent
c_serial=$(serial_of "$changer"); d1_serial=$(serial_of "${drives[0]}"); d2_serial=$(serial_of "${drives[1]}")
for d in "$changer" "${drives[@]}"; do
    note "$d type $(cat "/sys/bus/scsi/devices/$d/type") wwid $(cat "/sys/bus/scsi/devices/$d/wwid")"
done
[ "$(printf '%s\n' "$c_serial" "$d1_serial" "$d2_serial" | sort -u | wc -l)" = 3 ] \
    || fail "serials collide: $c_serial $d1_serial $d2_serial"
pass "distinct serials: changer $c_serial, drives $d1_serial $d2_serial"
# what the host's own drives answer while ptype is still 8 (the changer's)
follows=no
for d in "${drives[@]}"; do
    inq=$(inquiry "$(node_of "$d" scsi_generic)")
    note "ptype 8: host drive $d (sysfs type 1) answers INQUIRY $inq"
    case $inq in *changer*) follows=yes ;; esac
done
echo 1 > "$SDEBUG/ptype"
note "kernel $(uname -r): scsi_debug INQUIRY follows the module's ptype for every device: $follows"

write_config "[global]
backend = lio
portal = 127.0.0.1

[export lio-library]
iqn = $IQN
lun0 = serial:$c_serial
lun1 = serial:$d1_serial
lun2 = serial:$d2_serial
initiators = 127.0.0.0/8
initiator_iqns = $GUEST_IQN"
check "tapeshared check-config" ts -c "$TS_CONF" check-config
start_daemon
for pair in "0 $changer" "1 ${drives[0]}" "2 ${drives[1]}"; do
    set -- $pair
    wait_for 30 exported "$IQN" "$2" "$1" || { daemon_log_tail; fail "LUN $1 -> $2 in configfs"; }
done
pass "configfs: mapped LUNs 0, 1, 2 -> $changer, ${drives[0]}, ${drives[1]}"
wait_for 15 ts -c "$TS_CONF" status >/dev/null || { ts -c "$TS_CONF" status | indent || true; fail "tapeshared status exit 0"; }
pass "tapeshared status: exit 0"

check "iscsiadm discovery + login over loopback" login "$IQN"
remote_count() { [ "$(devices_of iscsi_tcp | wc -l)" -ge 3 ]; }
wait_for 30 remote_count || { lsscsi -g | indent; fail "three LUNs on the iscsi_tcp host"; }
udevadm settle --timeout=30
lsscsi -g | indent
# the host device each mapped LUN reaches, by the configuration
local_of() { case $1 in 0) echo "$changer" ;; 1) echo "${drives[0]}" ;; 2) echo "${drives[1]}" ;; esac; }
# rescan_as_local H:C:T:L: the initiator's device for a LUN, deleted and scanned
# again while scsi_debug answers INQUIRY with its host device's type
rescan_as_local() {
    local h c t l
    IFS=: read -r h c t l <<< "$1"
    echo 1 > "/sys/bus/scsi/devices/$1/delete"
    echo "$c $t $l" > "/sys/class/scsi_host/host$h/scan"
    wait_for 30 test -e "/sys/bus/scsi/devices/$1/type" && udevadm settle --timeout=30
}
for d in $(devices_of iscsi_tcp | sort -t: -k4n); do
    ltype=$(cat "/sys/bus/scsi/devices/$(local_of "${d##*:}")/type")
    as_type "$ltype" rescan_as_local "$d" || fail "LUN ${d##*:} ($d) back after a rescan"
done
udevadm settle --timeout=30
lsscsi -g | indent
got=""
for d in $(devices_of iscsi_tcp | sort -t: -k4n); do
    got="$got ${d##*:}:$(cat "/sys/bus/scsi/devices/$d/type")"
done
[ "$got" = " 0:8 1:1 2:1" ] || fail "initiator LUN:type is$got, not 0:8 1:1 2:1"
pass "initiator sees LUN:type$got (changer, tape, tape)"

scan=$(ts scan --json)
for d in $(devices_of iscsi_tcp | sort -t: -k4n); do
    sg=$(node_of "$d" scsi_generic)
    want=$(printf '%s' "$scan" | python3 -c '
import json, sys
print([d for d in json.load(sys.stdin)["devices"] if d["hctl"] == sys.argv[1]][0]["serial"])' "$d")
    case ${d##*:} in 0) expect=$c_serial ;; 1) expect=$d1_serial ;; 2) expect=$d2_serial ;; esac
    [ "$want" = "$expect" ] || fail "LUN ${d##*:} ($sg) has serial $want, not $expect"
    inq=$(as_type "$(cat "/sys/bus/scsi/devices/$(local_of "${d##*:}")/type")" inquiry "$sg")
    case ${d##*:}:$inq in 0:Linux\|scsi_debug\|medium*|[12]:Linux\|scsi_debug\|tape*) ;;
        *) fail "INQUIRY via $sg: $inq" ;; esac
    pass "LUN ${d##*:} via $sg: serial $want, INQUIRY $inq"
done
scan_remote=$(printf '%s' "$scan" | python3 -c '
import json, sys
print(sum(1 for d in json.load(sys.stdin)["devices"] if d["location"] == "remote"))')
[ "$scan_remote" = 3 ] || fail "tapeshared scan shows $scan_remote remote devices, not 3"
pass "tapeshared scan: the 3 LUNs seen back are remote"

# per LUN: the initiator's INQUIRY bytes are the host device's, byte for byte
# compare_lun H:C:T:L (remote) HOST-H:C:T:L: standard INQUIRY, VPD 0x80, 0x83
compare_lun() {
    local rsg lsg page mine theirs ltype
    rsg=$(node_of "$1" scsi_generic); lsg=$(node_of "$2" scsi_generic)
    ltype=$(cat "/sys/bus/scsi/devices/$2/type")
    for page in "" 0x80 0x83; do
        mine=$(inq_hex "$lsg" "$page"); theirs=$(inq_hex "$rsg" "$page")
        [ -n "$mine" ] || { echo "host $2 ($lsg): no INQUIRY ${page:-standard} data"; return 1; }
        [ "$mine" = "$theirs" ] || {
            printf 'INQUIRY %s differs\n  host %s (%s): %s\n  LUN  %s (%s): %s\n' \
                "${page:-standard}" "$2" "$lsg" "$mine" "$1" "$rsg" "$theirs"; return 1; }
        [ -n "$page" ] || [ $(( 0x${mine:0:2} & 0x1f )) = "$ltype" ] \
            || { echo "host $2 answers type 0x${mine:0:2}, sysfs says $ltype"; return 1; }
        echo "${page:-std}:$(( ${#mine} / 2 ))B"
    done
}
for d in $(devices_of iscsi_tcp | sort -t: -k4n); do
    l=$(local_of "${d##*:}")
    out=$(as_type "$(cat "/sys/bus/scsi/devices/$l/type")" compare_lun "$d" "$l") \
        || { printf '%s\n' "$out" | indent; fail "LUN ${d##*:}: INQUIRY through LIO is not the host's $l"; }
    pass "LUN ${d##*:} and host $l: same INQUIRY bytes ($(echo $out))"
done
configfs_dump > "${TAPESHARED_RESULTS:-/tmp}/lio-library-configfs-$(uname -r).txt" \
    && note "configfs dump: lio-library-configfs-$(uname -r).txt"
check "nothing to do while the library is seen back (plan exit 0)" ts -c "$TS_CONF" plan

# One drive comes back as a new kernel object at its own address (deleted,
# host rescanned): only its LUN is re-pointed, and only that LUN reports the
# reset; the changer and the other drive get no reset unit attention (LIO
# queues REPORTED LUNS DATA HAS CHANGED on them when a mapping changes).
declare -A rsg
for d in $(devices_of iscsi_tcp | sort -t: -k4n); do
    rsg[${d##*:}]=$(node_of "$d" scsi_generic)
    lio_py tur "${rsg[${d##*:}]}" >/dev/null || true
done
d2=${drives[1]}
old_alias=$(cat "$(backstore_for "$d2")/alias")
IFS=: read -r h c t l <<< "$d2"
echo 1 > "/sys/bus/scsi/devices/$d2/delete"
echo 3 > "$SDEBUG/num_tgts"  # scsi_debug bounds a scan by the current num_tgts
echo "$c $t $l" > "/sys/class/scsi_host/host$h/scan"
wait_for 30 test -e "/sys/bus/scsi/devices/$d2" || fail "drive $d2 did not come back"
[ "$(cat "/sys/bus/scsi/devices/$d2/type")" = 1 ] || fail "drive $d2 came back as type $(cat "/sys/bus/scsi/devices/$d2/type")"
# the new backstore may get the old one's path: its alias names another instance
repointed() { [ "$(cat "$(backstore_for "$d2")/alias" 2>/dev/null)" != "$old_alias" ] && exported "$IQN" "$d2" 2; }
wait_for 30 repointed || { daemon_log_tail; fail "LUN 2 re-pointed at the new $d2"; }
pass "drive $d2 back as a new object: LUN 2 re-pointed"
for n in 0 1 2; do
    got=$(lio_py tur "${rsg[$n]}" || true)
    note "LUN $n: first TUR after the re-point: $got"
    case "$n:$got" in
        2:*6/29/*) pass "LUN 2 (re-pointed) reports the reset: $got" ;;
        2:*) fail "LUN 2 was re-pointed but reports no reset: $got" ;;
        *6/29/*) fail "LUN $n was not re-pointed but reports a reset: $got" ;;
        *) pass "LUN $n (untouched) reports no reset: $got" ;;
    esac
done
no_daemon_errors
