#!/bin/bash
# Runs in the guest, as root, from the image's tapeshared-e2e.service:
#   guest-run.sh NAME[,NAME...]
# runs tests/e2e/scenarios/NAME.sh for each NAME, records each exit status in
# /mnt/results/NAME.rc and exits with the first non-zero one.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export TAPESHARED_SRC=/mnt/src TAPESHARED_RESULTS=/mnt/results
here=$(cd "$(dirname "$0")" && pwd)

# The checkout is shared read-only over 9p, where Python can keep no bytecode
# and every import is a round trip: each `python3 -m tapeshared` cost ~3 s of
# TCG time. A copy of the package on tmpfs, bound over the share's, keeps the
# paths and lets Python write and reuse its bytecode (~1 s a command).
pkg=$TAPESHARED_SRC/tapeshared
if [ -d "$pkg" ] && ! mountpoint -q "$pkg"; then
    rm -rf /run/tapeshared-e2e-src
    if mkdir -p /run/tapeshared-e2e-src && cp -r "$pkg" /run/tapeshared-e2e-src/ &&
            find /run/tapeshared-e2e-src -name __pycache__ -prune -exec rm -rf {} + &&
            mount --bind /run/tapeshared-e2e-src/tapeshared "$pkg"; then
        :
    else
        echo "guest-run: the package stays on the read-only share (no bytecode)"
        export PYTHONDONTWRITEBYTECODE=1
    fi
fi
cd /tmp || exit 125

status=0
IFS=, read -ra names <<< "${1:-}"
[ ${#names[@]} -gt 0 ] || { echo "guest-run: no scenario named"; exit 125; }
for name in "${names[@]}"; do
    script=$here/scenarios/$name.sh
    if [[ ! $name =~ ^[A-Za-z0-9_-]+$ ]] || [ ! -f "$script" ]; then
        echo "guest-run: no such scenario: $name"
        rc=125
    else
        echo "=== scenario $name: start (kernel $(uname -r), uptime $(cut -d' ' -f1 /proc/uptime)s)"
        start=$(date +%s%N)
        bash "$script"
        rc=$?
        elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
        echo "=== scenario $name: exit $rc ($((elapsed / 1000)).$(printf %03d $((elapsed % 1000))) s)"
    fi
    echo "$rc" > "$TAPESHARED_RESULTS/$name.rc" 2>/dev/null || true
    [ "$status" -ne 0 ] || status=$rc
done
exit "$status"
