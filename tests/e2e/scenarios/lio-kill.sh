#!/bin/bash
# Crash consistency: `tapeshared apply` SIGKILLed before a configfs step of a
# first export and of a renumbering (the step log counts them), then one apply
# (the restart's first pass) and a second (the resync): configfs then holds
# exactly the objects a whole apply makes, nothing left over (an empty HBA of
# ours, an unlinked LUN), nothing missing; the second apply changes nothing.
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
export TS_SCENARIO=lio-kill
# shellcheck disable=SC1091
. "$(dirname "$0")/../lio-lib.sh"
trap lio_cleanup EXIT
IQN=iqn.2007-04.com.example:lio-kill
STEPS=$TAPESHARED_RESULTS/lio-kill-steps

check "scsi_debug tape" add_tape
check "LIO modules and configfs" lio_modules
HCTL=$(local_tape)
SERIAL=$(serial_of "$HCTL")
[ -n "$SERIAL" ] || fail "no serial for the local tape $HCTL"
single_config "$IQN" "$SERIAL"

# objects: configfs_snapshot with the numbers LIO leaves to tapeshared (HBA,
# target LUN) and the address in the backstore's name made uniform.
objects() {
    configfs_snapshot | sed -E -e 's/pscsi_[0-9]+/pscsi_N/g' -e 's#/lun/lun_[0-9]+#/lun/lun_N#g' \
        -e 's/-h[0-9]+c[0-9]+t[0-9]+l[0-9]+/-hHCTL/g'
}

# killed_at K: one apply killed before step K; the step log must end there.
killed_at() {
    local rc=0
    rm -f "$STEPS"
    TAPESHARED_STEP_LOG=$STEPS TAPESHARED_KILL_AT_STEP=$1 ts -c "$TS_CONF" apply \
        >/dev/null 2>&1 || rc=$?
    [ "$rc" = 137 ] || { echo "apply exited $rc, not killed at step $1"; return 1; }
    tail -n1 "$STEPS" | grep -q "^$1	.*	KILL\$" || { tail -n2 "$STEPS"; return 1; }
}

# converge WHAT K: first pass and resync; the objects must equal the expected.
converge() {
    ts -c "$TS_CONF" apply >/dev/null 2>&1 || { echo "first pass after the kill failed"; return 1; }
    rm -f "$STEPS"
    TAPESHARED_STEP_LOG=$STEPS ts -c "$TS_CONF" apply >/dev/null 2>&1 || { echo "resync failed"; return 1; }
    [ ! -s "$STEPS" ] || { echo "resync still changed:"; indent < "$STEPS"; return 1; }
    diff <(echo "$EXPECTED") <(objects) | indent
    [ "$(objects)" = "$EXPECTED" ]
}

# change NAME PREPARE: count the steps of PREPARE's change, then kill at each.
change() {
    local name=$1 prepare=$2 n k ks begin
    begin=$(now_ns)
    $prepare
    rm -f "$STEPS"
    TAPESHARED_STEP_LOG=$STEPS ts -c "$TS_CONF" apply >/dev/null || fail "$name: dry run"
    cp "$STEPS" "$STEPS.dry"
    n=$(wc -l < "$STEPS.dry")
    [ "$n" -gt 0 ] || fail "$name: no steps logged"
    EXPECTED=$(objects)
    # every k costs ~25 s of TCG guest time (three Python starts): CI kills at
    # the middle and before the last step (after the old backstore's rmdir, before
    # its HBA's); LIO_KILL_ALL=1 kills before every step
    if [ "${LIO_KILL_ALL:-0}" = 1 ]; then ks=$(seq "$n"); else ks="$((n / 2)) $n"; fi
    for k in $ks; do
        $prepare
        check "$name: killed before step $k/$n ($(sed -n "${k}p" "$STEPS.dry" | cut -f2 | cut -c1-60))" killed_at "$k"
        check "$name: killed at $k: converged to the whole apply's objects" converge
    done
    pass "$name: $n steps; killed before step(s) ${ks//$'\n'/ } and converged ($(ms_since "$begin") ms)"
}

first_export() { lio_teardown || fail "teardown before the first export"; }
# the tape moves to a new address; the last pass exported it at the old one
renumbering() {
    local before
    before=$(local_tape)
    renumber "$before"
    wait_for 30 have_local_tape || fail "tape back after renumbering"
    udevadm settle --timeout=30
}

change "first export" first_export
check "exported at $HCTL" exported "$IQN" "$HCTL"
change "renumbering" renumbering
check "exported at the new address $(local_tape)" exported "$IQN" "$(local_tape)"
