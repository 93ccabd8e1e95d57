#!/bin/bash
# Run the whole suite: lint, unit/integration tests on the current Python under
# umockdev, the unit suite on Python 3.6, and the nested-VM tier when enabled.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0

# The VM tier's images (cached; built on a new machine) are made while the
# lint and the host tests run. The tier's own fixtures wait for them (the
# cache lock) and report a failed build themselves.
images_pid=""
if [ "${TAPESHARED_E2E:-0}" = 1 ] && [ -d tests/e2e ]; then
    images_log=$(mktemp)
    ( .venv/bin/python tests/e2e/run.py --build-only --quiet &&
      .venv/bin/python tests/e2e/run.py --build-only --kernel old --quiet ) > "$images_log" 2>&1 &
    images_pid=$!
fi

echo "== lint"
.venv/bin/ruff check tapeshared tests
.venv/bin/mypy tapeshared
shopt -s nullglob
shellcheck -S warning tests/*.sh tests/e2e/*.sh tests/e2e/scenarios/*.sh .ci/run packaging/*.sh
shellcheck -S warning -s sh init.d/* packaging/debian/tapeshared.p*
shopt -u nullglob
# systemd-analyze wants ExecStart to exist: check a copy pointed at the venv's entry point
unitdir=$(mktemp -d)
sed "s|^ExecStart=/usr/bin/tapeshared|ExecStart=$PWD/.venv/bin/tapeshared|" \
    systemd/tapeshared.service > "$unitdir/tapeshared.service"
SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$unitdir/tapeshared.service"
rm -rf "$unitdir"

# The two Python runs go side by side (one CPU each); the 3.6 run's output
# follows the current Python's. Tests use private names (namespaces, ports,
# temporary directories), so the two do not meet.
py36_log=$(mktemp)
py36_pid=""
if [ -x .venv36/bin/python ]; then
    # The installed package, not the checkout: the pytest script (unlike
    # `python -m pytest`) does not put the current directory on sys.path.
    here=$PWD
    (
        echo "== tests (Python $(.venv36/bin/python -c 'import sys; print(sys.version.split()[0])'), the runtime floor)"
        echo "tapeshared from: $(cd / && "$here/.venv36/bin/python" -c 'import tapeshared; print(tapeshared.__file__)')"
        .venv36/bin/pytest -q -m "not e2e and not packaging" -p no:cacheprovider tests
    ) > "$py36_log" 2>&1 &
    py36_pid=$!
else
    echo "no .venv36: the Python 3.6 run did not happen" >&2
    status=1
fi

echo "== tests (Python $(.venv/bin/python -c 'import sys; print(sys.version.split()[0])'))"
umockdev-wrapper .venv/bin/python -m pytest -q -m "not e2e" -p no:cacheprovider || status=1

if [ -n "$py36_pid" ]; then
    py36_rc=0
    wait "$py36_pid" || py36_rc=$?
    cat "$py36_log"
    [ "$py36_rc" = 0 ] || status=1
fi
rm -f "$py36_log"

if [ "${TAPESHARED_E2E:-0}" = 1 ] && [ -d tests/e2e ]; then
    echo "== nested-VM tier"
    if [ -n "$images_pid" ]; then
        wait "$images_pid" || echo "image build in the background failed; the tier retries it:"
        tail -n 3 "$images_log"
        rm -f "$images_log"
    fi
    .venv/bin/python -m pytest -q -m e2e -p no:cacheprovider tests/e2e || status=1
fi
exit $status
