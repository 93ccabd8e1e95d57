#!/bin/bash
# Crash consistency: `tapeshared apply` SIGKILLed before every configfs step
# (the daemon's own step log counts them) of a first export, a renumbering and
# a library drive's re-point, then one apply (the restart's first pass) and a
# second (the resync): configfs then holds exactly the objects a whole apply
# makes, nothing left over (an empty HBA of ours, an unlinked LUN), nothing
# missing, every backstore bound to the device now at its address; the second
# apply changes nothing (killmatrix.py lists configfs as configfs_snapshot does,
# in Python). killmatrix.py imports tapeshared once and forks each
# apply (a Python start costs ~8 s of TCG time, an apply well under one).
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
export TS_SCENARIO=lio-kill
# shellcheck disable=SC1091
. "$(dirname "$0")/../lio-lib.sh"
trap lio_cleanup EXIT
export IQN=iqn.2007-04.com.example:lio-kill
here=$(cd "$(dirname "$0")/.." && pwd)
begin=$(now_ns)

check "scsi_debug tape" add_tape
check "LIO modules and configfs" lio_modules
HCTL=$(local_tape)
SERIAL=$(sysfs_serial "$HCTL")
[ -n "$SERIAL" ] || fail "no serial for the local tape $HCTL"
single_config "$IQN" "$SERIAL"

PYTHONPATH=/mnt/src python3 "$here/killmatrix.py" --conf "$TS_CONF" \
    --steps "$TAPESHARED_RESULTS/lio-kill-steps" --lib "$here/lib.sh" --lib "$here/lio-lib.sh" \
    --objects lio \
    --case "first export" - lio_teardown lio_kill_exported_single \
    --case "renumbering" - lio_kill_renumber lio_kill_exported_single \
    --case "library re-point" lio_kill_library library_repoint lio_kill_exported_library \
    || fail "the kill matrix (see above; the applies' output: lio-kill-steps.children)"
pass "LIO: killed before every step of three changes and converged ($(ms_since "$begin") ms)"
