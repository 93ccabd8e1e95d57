#!/bin/bash
# The .deb's life on a real systemd host, for the nested-VM tier (as root, in
# the guest, no network; python3-pyudev, -pyroute2, -tenacity, -systemd,
# nftables and the LIO modules already there):
#
#   packaging/e2e-deb-scenario.sh /path/to/tapeshared_VERSION_all.deb
#
# install (neither enabled nor started) -> configure (LIO, no exports, nftables)
# -> start (Type=notify: active only after READY=1) -> status -> reload (same
# process) -> reinstall as an upgrade (restarted, config kept) -> remove
# (stopped, config kept, firewall table still in place: never wider) -> purge
# (/etc/tapeshared and /run/tapeshared gone). Exits non-zero at the first
# failed check, naming it.
set -eu

if [ $# -ne 1 ] || [ ! -f "$1" ]; then
    echo "usage: $0 TAPESHARED.deb" >&2
    exit 64
fi
deb=$(readlink -f "$1")
unit=tapeshared.service
conf=/etc/tapeshared/tapeshared.conf
export DEBIAN_FRONTEND=noninteractive

step() { echo "e2e-deb: --- $*"; }
fail() {
    echo "e2e-deb: FAIL: $*" >&2
    systemctl status --no-pager "$unit" >&2 || true
    journalctl -u "$unit" --no-pager -n 40 >&2 || true
    exit 1
}
prop() { systemctl show -p "$1" "$unit" | cut -d= -f2-; }
wait_state() {  # wait_state STATE: ActiveState reaches STATE within 60 s
    local _
    for _ in $(seq 1 120); do
        [ "$(prop ActiveState)" = "$1" ] && return 0
        [ "$(prop ActiveState)" = failed ] && fail "$unit failed (wanted $1)"
        sleep 0.5
    done
    fail "$unit is $(prop ActiveState) after 60 s, wanted $1"
}
pkg_state() { dpkg-query -W -f='${db:Status-Status}' tapeshared 2>/dev/null || echo not-installed; }
fw_closed() {  # our table rejects the portal port: nothing wider than configured
    nft list table inet tapeshared 2>/dev/null | grep -q 'tcp dport 3260 reject'
}

step "install $deb"
apt-get install -y --no-install-recommends "$deb" || fail "apt install"
[ "$(pkg_state)" = installed ] || fail "package state $(pkg_state)"
[ -x /usr/bin/tapeshared ] || fail "no /usr/bin/tapeshared"
[ -f "$conf" ] || fail "no $conf"
state=$(systemctl is-enabled "$unit" 2>/dev/null || true)
[ "$state" = disabled ] || fail "installed $state, expected disabled"
[ "$(prop ActiveState)" = inactive ] || fail "started on install"
tapeshared -c "$conf" check-config || fail "the shipped example config does not validate"

step "configure: LIO, no exports, nftables"
cat >> "$conf" <<'EOF'

# e2e-deb-scenario: the admin's change
[global]
backend = lio
firewall = nftables
EOF
tapeshared check-config || fail "check-config"
sum=$(sha256sum < "$conf")

step "start"
systemctl start "$unit" || fail "systemctl start"
wait_state active
[ "$(prop Type)" = notify ] || fail "unit type $(prop Type), expected notify"
pid=$(prop MainPID)
[ "$pid" -gt 0 ] || fail "no main pid"
echo "e2e-deb: running as pid $pid: $(prop StatusText)"

step "status"
tapeshared status || fail "tapeshared status exit $?"
fw_closed || fail "nftables table missing or not rejecting port 3260"

step "reload"
systemctl reload "$unit" || fail "systemctl reload"
wait_state active
[ "$(prop MainPID)" = "$pid" ] || fail "reload replaced the process"
tapeshared status || fail "status after reload exit $?"

step "upgrade: reinstall the same .deb with dpkg -i"
dpkg -i "$deb" || fail "dpkg -i"
wait_state active
[ "$(prop MainPID)" != "$pid" ] || fail "the running daemon was not restarted on upgrade"
[ "$(sha256sum < "$conf")" = "$sum" ] || fail "upgrade changed $conf"
for f in "$conf.dpkg-dist" "$conf.dpkg-new" "$conf.dpkg-old"; do
    [ ! -e "$f" ] || fail "$f left by the upgrade"
done
tapeshared status || fail "status after upgrade exit $?"

step "remove"
apt-get remove -y tapeshared || fail "apt-get remove"
[ "$(pkg_state)" = config-files ] || fail "package state $(pkg_state) after remove"
[ "$(prop ActiveState)" = inactive ] || fail "$unit still $(prop ActiveState) after remove"
[ ! -e /usr/bin/tapeshared ] || fail "/usr/bin/tapeshared left after remove"
[ -f "$conf" ] || fail "remove deleted $conf"
[ "$(sha256sum < "$conf")" = "$sum" ] || fail "remove changed $conf"
fw_closed || fail "remove opened the firewall (table gone or no longer rejecting)"

step "purge"
apt-get purge -y tapeshared || fail "apt-get purge"
[ "$(pkg_state)" = not-installed ] || fail "package state $(pkg_state) after purge"
[ ! -e /etc/tapeshared ] || fail "/etc/tapeshared left after purge: $(ls -A /etc/tapeshared)"
[ ! -e /run/tapeshared ] || fail "/run/tapeshared left after purge"
fw_closed || fail "purge opened the firewall (table gone or no longer rejecting)"

# The chain/table stays as configured after removal (it only rejects); the
# admin deletes it once nothing is exported. So does the scenario, to leave
# the guest as it found it.
nft delete table inet tapeshared
echo "e2e-deb: PASS"
