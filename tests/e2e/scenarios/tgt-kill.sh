#!/bin/bash
# tgt: `tapeshared apply` killed (SIGKILL, the daemon's own step hook) right
# before every one of its steps, for a first export, a renumbering and a
# library drive's re-point. After each kill of the first export an initiator
# tries to log in (it must be refused until the plan's first ACL bind, which
# comes after the LUN: then it must see the drive); then one apply (the first
# pass) and one more (the resync, which must change nothing) must leave
# exactly the objects an apply that was never killed leaves (`tgtadm --op
# show`, each backing store named by its device's serial and open on the
# live node). Devices are found by serial: the scenario does not care where
# an earlier scenario of the boot left the tapes. killmatrix.py imports
# tapeshared once and forks each apply (a Python start costs ~8 s of TCG time).
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/../tgt-lib.sh"
# tgtd first (it holds the sg nodes), then scsi_debug (ch holds the changer)
kill_cleanup() {
    tgt_cleanup
    scsi_debug_fresh || note "cleanup: scsi_debug still loaded"
}
trap kill_cleanup EXIT
here=$(cd "$(dirname "$0")/.." && pwd)
t_start=$(now_ms)

scsi_debug_fresh || fail "scsi_debug left loaded by an earlier scenario cannot be removed"
tape_add
hctl=$(tapes_on scsi_debug 1 | head -n1)
KILL_SERIAL=$(sysfs_serial "$hctl")
[ -n "$KILL_SERIAL" ] || fail "no serial for local tape $hctl"
export KILL_SERIAL
tgt_start
write_tape_conf "$KILL_SERIAL"
note "setup (scsi_debug, tgtd) $(( $(now_ms) - t_start )) ms; tape $hctl, serial $KILL_SERIAL"

PYTHONPATH=${TAPESHARED_SRC:-/mnt/src} python3 "$here/killmatrix.py" --conf "$TS_CONF" \
    --steps "${TAPESHARED_RESULTS:-/tmp/tapeshared-e2e}/tgt-kill-steps" \
    --lib "$here/lib.sh" --lib "$here/tgt-lib.sh" \
    --objects tgt_objects --after-kill tgt_kill_after \
    --case "first export" - tgt_teardown tgt_kill_exported_single \
    --case "renumbering" - tgt_kill_renumber tgt_kill_exported_single \
    --case "library re-point" tgt_kill_library tgt_kill_repoint tgt_kill_exported_library \
    || fail "the kill matrix (see above; the applies' output: tgt-kill-steps.children)"
pass "tgt: killed before every step of three changes and converged ($(( ($(now_ms) - t_start) / 1000 )) s)"
