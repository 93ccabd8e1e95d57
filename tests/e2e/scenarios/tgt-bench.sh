#!/bin/bash
# Figures for tgt (not run by pytest): throughput, 256 KiB variable blocks,
# of the local st device and of the same tape through the tgt export (sg
# pass-through, loopback iSCSI); then the renumbering outage, 3 times, from
# the tape's return to the initiator's first GOOD TUR (median printed).
#   python3 tests/e2e/run.py tgt-bench
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/../tgt-lib.sh"
trap tgt_cleanup EXIT
BLOCKS=${TGT_BENCH_BLOCKS:-400}   # x 256 KiB
ROUNDS=${TGT_BENCH_ROUNDS:-3}

tape_add
hctl=$(tapes_on scsi_debug 1 | head -n1)
serial=$(serial_of "$hctl")
tgt_start
write_tape_conf "$serial"
daemon_start || fail "export live"
login "$TGT_IQN" || fail "login"
rdev=$(remote_nst)
rsg=$(node_of "$(tapes_on iscsi_tcp 1 | head -n1)" scsi_generic)
ldev=$(node_of "$hctl" scsi_tape)
mt -f "$rdev" setblk 0
mt -f "$ldev" setblk 0
pass "set up: local $ldev ($hctl), initiator $rdev ($rsg)"
echo "BENCH load average before: $(cut -d' ' -f1-3 /proc/loadavg) (guest, $(nproc) vCPUs, TCG)"

for run in 1 2; do
    lw=$(dd_rate write "$ldev" "$BLOCKS") || fail "local write"
    lr=$(dd_rate read "$ldev" "$BLOCKS") || fail "local read"
    rw=$(dd_rate write "$rdev" "$BLOCKS") || fail "tgt write"
    rr=$(dd_rate read "$rdev" "$BLOCKS") || fail "tgt read"
    echo "BENCH throughput run $run, $BLOCKS x 256 KiB: local st write $lw, read $lr; through tgt (sg pass-through, loopback iSCSI) write $rw, read $rr"
done

outages=()
for round in $(seq 1 "$ROUNDS"); do
    cur=$(tapes_on scsi_debug 1 | head -n1)
    renumber_measure "$cur" "$rsg" || fail "renumber round $round"
    outages+=("$R_MS")
    echo "BENCH renumber $round: $cur -> $R_NEW: initiator TUR GOOD $R_MS ms after add_host (scan $R_SCAN_MS ms, $R_FAILS failed TURs, rescan: $R_RESCAN; $R_DAEMON; tgtd pid $R_TGTD)"
    if tgtd_restarted; then note "round $round: tgtd died and was restarted by systemd"; fi
    out=$(tape_io "$rdev" 1 65536 2>&1) || { printf '%s\n' "$out" | indent; fail "I/O after round $round"; }
    # let the daemon's follow-up passes settle before the next round
    sleep 2
done
median=$(printf '%s\n' "${outages[@]}" | sort -n | sed -n "$(( (ROUNDS + 1) / 2 ))p")
echo "BENCH tgt renumber outage (add_host written -> initiator TUR GOOD): median $median ms of $ROUNDS (${outages[*]} ms)"
echo "BENCH load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
pass "tgt bench"
