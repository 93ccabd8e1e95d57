# shellcheck shell=bash
# Helpers for scenarios (source it: . "$(dirname "$0")/../lib.sh").
# Scenarios run under "set -eu"; each check prints one PASS or FAIL line.

pass() { echo "PASS: $*"; }
note() { echo "NOTE: $*"; }
indent() { sed 's/^/    /'; }
fail() { echo "FAIL: $*"; exit 1; }

# check DESCRIPTION COMMAND...: run COMMAND; PASS, or FAIL with its output.
check() {
    local desc=$1 out
    shift
    if out=$("$@" 2>&1); then
        pass "$desc"
    else
        printf '%s\n' "$out" | indent
        fail "$desc"
    fi
}

# wait_for SECONDS COMMAND...: retry COMMAND every 0.1 s until it succeeds.
wait_for() {
    local deadline=$(( $(date +%s) + $1 ))
    shift
    until "$@" 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# serial_of H:C:T:L: the unit serial tapeshared's scan reports for that device
# (needs a `ts` function running tapeshared).
serial_of() {
    ts scan --json | python3 -c '
import json, sys
for d in json.load(sys.stdin)["devices"]:
    if d["hctl"] == sys.argv[1]:
        print(d["serial"] or ""); break' "$1"
}

# tape_io DEV [FILES] [SIZE]: the tagged write/read/compare check of tapeio.py
# (FILES e.g. "5,3": blocks per tape file; SIZE bytes per block).
tape_io() {
    python3 "$(dirname "${BASH_SOURCE[0]}")/tapeio.py" "$@"
}

# kernel_older_than MAJOR MINOR: the running kernel is older than MAJOR.MINOR.
kernel_older_than() {
    local major minor
    IFS=. read -r major minor _ <<<"$(uname -r)"
    minor=${minor%%[!0-9]*}
    [ "$major" -lt "$1" ] || { [ "$major" -eq "$1" ] && [ "${minor:-0}" -lt "$2" ]; }
}

# tape_data_io: scsi_debug on this kernel emulates tape data (READ/WRITE,
# filemarks). The older-kernel guest (5.10) does not; its scenarios check
# TUR/INQUIRY/mt status only and say so.
tape_data_io() {
    ! kernel_older_than 6 0
}

# tape_io_check DESC DEV [FILES] [SIZE]: tape_io with a PASS/FAIL line; on a
# kernel without scsi_debug tape data I/O a NOTE saying it was skipped.
tape_io_check() {
    local desc=$1 out
    shift
    if ! tape_data_io; then
        note "$desc: skipped, kernel $(uname -r) scsi_debug has no tape data I/O"
        return 0
    fi
    out=$(tape_io "$@" 2>&1) || { printf '%s\n' "$out" | indent; fail "$desc"; }
    pass "$desc: $out"
}
