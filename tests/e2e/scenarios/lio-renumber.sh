#!/bin/bash
# Renumbering with an initiator logged in: the daemon re-exports the tape at
# its new address by itself; the initiator's device works again without
# logout or rescan, a writer blocked in open() is told of the reset (EIO, not
# a write at a stale position), INQUIRY is still the tape's. Prints the
# outage: new device in sysfs -> first GOOD TUR via iSCSI.
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
export TS_SCENARIO=lio-renumber
# shellcheck disable=SC1091
. "$(dirname "$0")/../lio-lib.sh"
trap lio_cleanup EXIT
IQN=iqn.2007-04.com.example:lio-renumber

export_and_login "$IQN"
check "initiator TUR before" lio_py tur "$RSG"
tape_io_check "I/O before renumbering" "$RNST" 3

old=$HCTL
echo 1 > "/sys/bus/scsi/devices/$old/delete"
pass "deleted the local tape $old"
sleep 0.5
if out=$(lio_py tur "$RSG"); then
    fail "initiator TUR succeeded while the tape is gone ($out)"
fi
pass "initiator TUR while the tape is gone: $out"

writer=
if tape_data_io; then
# A writer that opens the tape during the outage: st waits in open(). The
# drive it reaches is a new instance (reset): st must refuse to write at a
# position it no longer knows (lio-reset checks the drive side too).
python3 - "$RNST" > "$TAPESHARED_RESULTS/lio-renumber-writer.out" 2>&1 <<'PYEOF' &
import os, struct, sys, time
begin = time.monotonic()
fd = os.open(sys.argv[1], os.O_WRONLY)
opened = time.monotonic() - begin
try:
    for b in range(4):
        assert os.write(fd, struct.pack(">HH", 9, b) + bytes(65532)) == 65536
    os.close(fd)
    print("open waited %.2f s; 4 blocks and a filemark written" % opened)
except OSError as exc:
    print("open waited %.2f s; then: %s" % (opened, exc))
PYEOF
writer=$!
else
    note "writer across the outage: skipped, kernel $(uname -r) scsi_debug has no tape data I/O"
fi
sleep 1.5
[ -z "$writer" ] || kill -0 "$writer" 2>/dev/null || { cat "$TAPESHARED_RESULTS/lio-renumber-writer.out" | indent; fail "writer did not wait in open() during the outage"; }
pass "writer blocked in open() during the outage"

out=$(lio_py return-outage "$old" "$RSG") || { daemon_log_tail; fail "initiator back after renumbering: $out"; }
read -r new back outage sense <<< "$out"
pass "tape back at $new (${back} s after add_host); initiator TUR GOOD ${outage} s after it appeared (meanwhile: ${sense//_/ })"
echo "OUTAGE: device return -> initiator first GOOD TUR: ${outage} s (goal < 0.5 s under TCG)"
[ "$new" != "$old" ] || fail "the tape came back at the same address $old"

if [ -n "$writer" ]; then
    for _ in $(seq 300); do kill -0 "$writer" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$writer" 2>/dev/null; then kill "$writer"; fail "writer still blocked 30 s after the return"; fi
    wait "$writer" || { cat "$TAPESHARED_RESULTS/lio-renumber-writer.out" | indent; fail "writer failed"; }
    grep -q "Input/output error" "$TAPESHARED_RESULTS/lio-renumber-writer.out" \
        || fail "writer was not told of the reset: $(cat "$TAPESHARED_RESULTS/lio-renumber-writer.out")"
    pass "writer told of the reset: $(cat "$TAPESHARED_RESULTS/lio-renumber-writer.out")"
fi

check "configfs: export re-pointed at $new" exported "$IQN" "$new"
backstores=$(ls -d "$LIO"/core/pscsi_*/tapeshared-* | wc -l)
[ "$backstores" = 1 ] || { ls -d "$LIO"/core/pscsi_*/tapeshared-* | indent; fail "old backstore left behind"; }
pass "one backstore left: $(ls -d "$LIO"/core/pscsi_*/tapeshared-*)"
check "initiator device $RNST unchanged (no rescan)" test "$(remote_tape)" = "$RHCTL"

out=$(mt -f "$RNST" status 2>&1) || { printf '%s\n' "$out" | indent; fail "mt status after"; }
printf '%s\n' "$out" | grep -q ONLINE || { printf '%s\n' "$out" | indent; fail "mt status after: not ONLINE"; }
pass "mt -f $RNST status after: ONLINE"
tape_io_check "I/O after renumbering" "$RNST" 3,2
inquiry_is_tape "$RSG"
check "iscsi session never logged out" iscsiadm -m session
check "tapeshared status exit 0" ts -c "$TS_CONF" status
no_daemon_errors
