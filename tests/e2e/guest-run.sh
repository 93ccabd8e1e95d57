#!/bin/bash
# Runs in the guest, as root, from the image's tapeshared-e2e.service:
#   guest-run.sh NAME[,NAME...]
# runs tests/e2e/scenarios/NAME.sh for each NAME, records each exit status in
# /mnt/results/NAME.rc and exits with the first non-zero one.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PYTHONDONTWRITEBYTECODE=1   # the checkout is shared read-only
export TAPESHARED_SRC=/mnt/src TAPESHARED_RESULTS=/mnt/results
here=$(cd "$(dirname "$0")" && pwd)
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
