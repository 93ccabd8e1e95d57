#!/bin/bash
# IET's re-point reset on a real kernel tape. IET's module does not build on
# current kernels, so ietd is the stand-in, and a TEST UNIT READY from the
# guest plays the first initiator command (rawio passes each command to the
# drive). The reset itself is real (SG_SCSI_RESET on the tape's sg node):
# a first export, a same-address rescan and a renumbering each leave 29h for
# the next command; a restart for a CHAP change and an apply with nothing to
# do leave none; status shows the last re-point.
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
export TS_SCENARIO=iet-repoint
# shellcheck disable=SC1091
. "$(dirname "$0")/../lio-lib.sh"
R=/tmp/iet-standin
STANDIN="python3 /mnt/src/tests/support/iet_standin.py --root $R"
cleanup() {
    scsi_debug_unload || note "cleanup: scsi_debug still loaded"
    rm -rf "$R" /etc/tapeshared /run/tapeshared
}
trap cleanup EXIT

# drain NODE: the unit attentions pending now (the host's own probe would take
# them), until TUR is GOOD; prints what was drained
drain() {
    local seen="" out
    for _ in 1 2 3 4; do
        if out=$(lio_py tur "$1"); then echo "${seen:-none}"; return 0; fi
        seen="$seen${seen:+, }$out"
    done
    echo "$seen"; return 1
}
# first_command NODE: what the first command gets, then that the next is GOOD
first_command() {
    local out
    out=$(lio_py tur "$1") || true
    echo "$out"
    lio_py tur "$1" >/dev/null
}
restarts() { cat "$R/standin/restarts" 2>/dev/null || echo 0; }

add_tape
HCTL=$(local_tape)
SG=$(node_of "$HCTL" scsi_generic)
SERIAL=$(serial_of "$HCTL")
[ -n "$SERIAL" ] || fail "no serial for $HCTL"
mkdir -p "$R/etc" "$R/proc/net/iet" "$R/standin" /etc/tapeshared
printf 'chap-secret-12\n' > /etc/tapeshared/chap
chmod 600 /etc/tapeshared/chap
config() {
    write_config "[global]
backend = iet
ietd_conf = $R/etc/ietd.conf
initiators_allow = $R/etc/initiators.allow
initiators_deny = $R/etc/initiators.deny
iet_volume = $R/proc/net/iet/volume
iet_session = $R/proc/net/iet/session
restart_command = $STANDIN restart
ietadm = $STANDIN ietadm
iqn_prefix = iqn.2007-04.com.example

[export tape0]
serial = $SERIAL
initiators = 192.0.2.10
$1"
}

note "at load, drained: $(drain "$SG")"
config ""
begin=$(now_ns)
check "first apply" ts apply
note "first apply (reset, restart) took $(ms_since "$begin") ms"
got=$(first_command "$SG") || fail "TUR after the first command is not GOOD"
case $got in *"sense 6/29/"*) pass "first export: the first command gets $got" ;;
    *) fail "first export: the first command got $got, not 6/29" ;; esac

config "incoming_user = backup
incoming_secret_file = /etc/tapeshared/chap"
begin=$(now_ns)
check "CHAP apply" ts apply
note "CHAP apply (restart, no reset) took $(ms_since "$begin") ms"
[ "$(restarts)" = 2 ] || fail "the CHAP change did not restart ietd ($(restarts) restarts)"
got=$(first_command "$SG") || fail "TUR after the CHAP restart"
[ "$got" = GOOD ] || fail "a CHAP-only restart reset the drive: $got"
pass "CHAP change: ietd restarted, the drive not reset (GOOD)"

echo 1 > "/sys/bus/scsi/devices/$HCTL/delete"
echo '- - -' > "/sys/class/scsi_host/host${HCTL%%:*}/scan"
udevadm settle --timeout=30
check "the tape is back at $HCTL" test -e "/sys/bus/scsi/devices/$HCTL/type"
SG=$(node_of "$HCTL" scsi_generic)
note "after the rescan, drained: $(drain "$SG")"
check "apply after the rescan" ts apply
[ "$(restarts)" = 3 ] || fail "the new instance did not restart ietd ($(restarts))"
got=$(first_command "$SG") || fail "TUR after the rescan apply"
case $got in *"sense 6/29/"*) pass "same address, new instance: the first command gets $got" ;;
    *) fail "same address, new instance: the first command got $got" ;; esac

renumbered() { local t; t=$(local_tape); [ -n "$t" ] && [ "$t" != "$HCTL" ]; }
renumber "$HCTL"
wait_for 30 renumbered || true
udevadm settle --timeout=30
NEW=$(local_tape)
[ -n "$NEW" ] && [ "$NEW" != "$HCTL" ] || fail "no renumbered tape (have: ${NEW:-none})"
SG=$(node_of "$NEW" scsi_generic)
note "renumbered $HCTL -> $NEW, drained: $(drain "$SG")"
begin=$(now_ns)
check "apply after the renumbering" ts apply
note "apply took $(ms_since "$begin") ms"
check "ietd.conf points at $NEW" grep -q "H=${NEW%%:*},C=" "$R/etc/ietd.conf"
got=$(first_command "$SG") || fail "TUR after the renumbering apply"
case $got in *"sense 6/29/"*) pass "renumbered: the first command gets $got" ;;
    *) fail "renumbered: the first command got $got" ;; esac

begin=$(now_ns)
out=$(ts -v apply 2>&1)
note "idle apply took $(ms_since "$begin") ms"
got=$(first_command "$SG") || fail "TUR after the idle apply"
[ "$got" = GOOD ] && [ "$(restarts)" = 4 ] || { printf '%s\n' "$out" | indent;
    fail "an apply with nothing to do: $got, $(restarts) restarts"; }
pass "an apply with nothing to do: no reset, no restart"

text=$(ts status || true)
printf '%s\n' "$text" | indent
case $text in *"last re-point: reset at "*"told: the first initiator command to reach the drive"*)
    pass "status shows the last re-point" ;; *) fail "status has no re-point line" ;; esac
scope=$(ts status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"][0]["luns"][0]["reset"]["scope"])') || true
[ "$scope" = drive ] || fail "status --json: reset scope ${scope:-missing}"
pass "status --json: reset scope drive"
