#!/bin/bash
# Run the whole suite: lint, unit/integration tests on the current Python under
# umockdev, the unit suite on Python 3.6, and the nested-VM tier when enabled.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0

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

echo "== tests (Python $(.venv/bin/python -c 'import sys; print(sys.version.split()[0])'))"
umockdev-wrapper .venv/bin/python -m pytest -q -m "not e2e" -p no:cacheprovider || status=1

if [ -x .venv36/bin/python ]; then
    echo "== tests (Python $(.venv36/bin/python -c 'import sys; print(sys.version.split()[0])'), the runtime floor)"
    # The installed package, not the checkout: the pytest script (unlike
    # `python -m pytest`) does not put the current directory on sys.path.
    here=$PWD
    echo "tapeshared from: $(cd / && "$here/.venv36/bin/python" -c 'import tapeshared; print(tapeshared.__file__)')"
    .venv36/bin/pytest -q -m "not e2e and not packaging" -p no:cacheprovider tests || status=1
else
    echo "no .venv36: the Python 3.6 run did not happen" >&2
    status=1
fi

if [ "${TAPESHARED_E2E:-0}" = 1 ] && [ -d tests/e2e ]; then
    echo "== nested-VM tier"
    .venv/bin/python -m pytest -q -m e2e -p no:cacheprovider tests/e2e || status=1
fi
exit $status
