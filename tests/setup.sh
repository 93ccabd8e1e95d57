#!/bin/bash
# Install everything the test suite needs on a fresh Debian machine (run as root):
# Debian packages, a venv on the system python3 (for gi/umockdev) with the
# project and its test tools, and a Python 3.6 venv when a 3.6 interpreter exists.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(umockdev gir1.2-umockdev-1.0 python3-gi python3-venv python3-dev
          iptables nftables iproute2 shellcheck systemd kmod util-linux
          libsystemd-dev pkg-config gcc tgt)
for list in tests/e2e/host-packages.txt packaging/build-deps.txt; do
    if [ -f "$list" ]; then
        mapfile -t extra < <(sed 's/#.*//; s/[[:space:]]*$//; s/^[[:space:]]*//' "$list" | grep -v '^$')
        packages+=("${extra[@]}")
    fi
done
export DEBIAN_FRONTEND=noninteractive
apt_get() {  # wait for another apt to finish rather than fail on its lock
    local try
    for try in 1 2 3 4 5 6 7 8 9 10; do
        if apt-get -o DPkg::Lock::Timeout=120 "$@"; then return 0; fi
        echo "setup: apt-get $1 failed (try $try), retrying" >&2
        sleep 10
    done
    return 1
}
apt_get update -qq
apt_get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

# The main venv sees the system's gi (umockdev) and python3-systemd.
/usr/bin/python3 -m venv --system-site-packages .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]' ruff mypy
# the current pyroute2 (asyncio core) here, 0.7.x in the 3.6 venv: both are tested
.venv/bin/pip install -q --upgrade 'pyroute2>=0.9'

# The runtime floor: Python 3.6 (XCP-ng 8.x Dom0), installed the way an admin would.
py36=""
for candidate in "$HOME"/.pyenv/versions/3.6*/bin/python3.6 /usr/bin/python3.6 python3.6; do
    # a pyenv shim exists even when it cannot run: try it
    if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 6)' 2>/dev/null; then
        py36=$candidate; break
    fi
done
if [ -n "$py36" ]; then
    "$py36" -m venv .venv36
    .venv36/bin/pip install -q --upgrade 'pip<22'
    .venv36/bin/pip install -q . 'pytest<7.1' 'hypothesis<6.32'
    # a venv kept from an earlier run has the same version number: reinstall
    .venv36/bin/pip install -q --no-deps --force-reinstall .
else
    echo "setup: no Python 3.6 interpreter found; the 3.6 run will fail" >&2
fi
echo "setup: done"
