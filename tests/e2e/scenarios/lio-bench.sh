#!/bin/bash
# Figures, not a pass/fail test (test_vm.py skips *-bench): the renumbering
# outage seen by a logged-in initiator (median of 3: new device in sysfs ->
# first GOOD TEST UNIT READY through the export) and 256 KiB-block throughput,
# local st vs through the LIO export over loopback.
#   python3 tests/e2e/run.py lio-bench
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
export TS_SCENARIO=lio-bench TS_VERBOSE=-vv
# shellcheck disable=SC1091
. "$(dirname "$0")/../lio-lib.sh"
trap lio_cleanup EXIT
IQN=iqn.2007-04.com.example:lio-bench
BLOCKS=${LIO_BENCH_BLOCKS:-200}

export_and_login "$IQN"

# dd_rate DEV write|read: MB/s of BLOCKS x 256 KiB (from the rewound tape).
dd_rate() {
    local out
    mt -f "$1" rewind
    if [ "$2" = write ]; then
        out=$(dd if=/dev/zero of="$1" bs=256k count="$BLOCKS" 2>&1)
    else
        out=$(dd if="$1" of=/dev/null bs=256k count="$BLOCKS" 2>&1)
    fi
    mt -f "$1" rewind
    printf '%s\n' "$out" | tail -n1 | sed 's/.*, //'
}
lnst=$(node_of "$HCTL" scsi_tape)
# the export reset the drive: the host's own st refuses all but positioning
# until it is told where it is
mt -f "$lnst" rewind 2>/dev/null || mt -f "$lnst" rewind
mt -f "$lnst" setblk 0
mt -f "$RNST" rewind 2>/dev/null || mt -f "$RNST" rewind
mt -f "$RNST" setblk 0
lw=$(dd_rate "$lnst" write); lr=$(dd_rate "$lnst" read)
rw=$(dd_rate "$RNST" write); rr=$(dd_rate "$RNST" read)

outages=()
for i in 1 2 3; do
    old=$(local_tape)
    echo 1 > "/sys/bus/scsi/devices/$old/delete"
    sleep 1
    out=$(lio_py return-outage "$old" "$RSG") || { daemon_log_tail; fail "renumbering $i: $out"; }
    read -r new _back outage _sense <<< "$out"
    wait_for 30 exported "$IQN" "$new" || fail "renumbering $i: export on $new"
    outages+=("$outage")
    note "renumbering $i: $old -> $new, outage $outage s"
    sleep 1
done
median=$(printf '%s\n' "${outages[@]}" | sort -n | sed -n 2p)

echo "BENCH: renumber -> initiator TUR GOOD (median of 3): $median s (runs: ${outages[*]})"
echo "BENCH: local st      256 KiB x $BLOCKS: write $lw, read $lr"
echo "BENCH: LIO export    256 KiB x $BLOCKS: write $rw, read $rr"
pass "benchmark done"
