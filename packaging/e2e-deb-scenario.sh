#!/bin/bash
# The .deb's life on a real systemd host, for the nested-VM tier (as root, in
# the guest, no network; python3-pyudev, -pyroute2, -tenacity, -systemd,
# nftables and the LIO modules already there):
#
#   packaging/e2e-deb-scenario.sh /path/to/tapeshared_VERSION_all.deb [SERIAL]
#
# install (neither enabled nor started) -> configure (LIO, nftables, and with
# SERIAL an export of that local tape) -> start (Type=notify: active only
# after READY=1, so the export is live when start returns) -> status ->
# reload (same process) -> reinstall as an upgrade (restarted, config kept)
# -> the SysV init script, service stopped: a direct call is redirected to
# systemctl, with SYSTEMCTL_SKIP_REDIRECT=1 it runs the daemon itself
# (start, status 0, reload, stop, status 3) -> remove (stopped, config kept,
# firewall table still in place: never wider) -> purge (/etc/tapeshared and
# /run/tapeshared gone). Exits non-zero at the first failed check, naming it.
#
# With E2E_COLD=1 the start is a cold boot: the LIO modules are not loaded and
# the tape is not there (deleted by the caller) when the daemon starts, and the
# config names a portal address (E2E_PORTAL, default 192.0.2.10) that no link
# has yet. The daemon must load the modules, export the tape once it appears
# (the scsi_debug add_host here) and listen on the portal once a dummy link gets
# the address, with `status` 0 at the end, nobody touching the daemon.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ ! -f "$1" ]; then
    echo "usage: $0 TAPESHARED.deb [SERIAL]" >&2
    exit 64
fi
deb=$(readlink -f "$1")
serial=${2:-}
iqn=iqn.2007-04.com.example:tape0
initiator=iqn.1994-05.com.example:tapeshared-e2e
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
# exported: LIO shows the tape as LUN 0 of the target, its backstore enabled
exported() {
    local lun=/sys/kernel/config/target/iscsi/$iqn/tpgt_1/lun/lun_0 store
    [ -d "$lun" ] || return 1
    store=$(find "$lun" -maxdepth 1 -type l -exec readlink -f {} \; | head -n1)
    [ -n "$store" ] && [ "$(cat "$store/enable" 2>/dev/null)" = 1 ]
}
sysv() {  # sysv ARGS...: the init script itself, not redirected to systemctl
    SYSTEMCTL_SKIP_REDIRECT=1 /etc/init.d/tapeshared "$@"
}
fw_closed() {  # our table rejects the portal port: nothing wider than configured
    nft list table inet tapeshared 2>/dev/null | grep -q 'tcp dport 3260 reject'
}

ms() { date +%s%3N; }
until_ok() {  # until_ok SECONDS CMD...: CMD succeeds within SECONDS
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}
status_ok() { tapeshared status >/dev/null 2>&1; }
np_up() { [ -d "/sys/kernel/config/target/iscsi/$iqn/tpgt_1/np/$portal:3260" ]; }
cold_boot() {  # the daemon is up; nothing else is: modules, tape, portal address
    step "cold boot: the modules, then the tape, then the portal address"
    [ -d /sys/module/iscsi_target_mod ] || fail "the daemon did not load iscsi_target_mod"
    [ -d /sys/kernel/config/target/iscsi ] || fail "the daemon did not register the fabric"
    journalctl -u "$unit" --no-pager | grep -q 'LIO kernel parts: loaded module' ||
        fail "no INFO line saying the daemon loaded the LIO modules"
    ! exported || fail "exported before the tape exists"
    local t0 rc=0
    t0=$(ms)
    echo 1 > /sys/bus/pseudo/drivers/scsi_debug/add_host
    until_ok 30 exported || fail "the tape appeared but no export within 30 s"
    echo "e2e-deb: tape appeared -> exported in $(( $(ms) - t0 )) ms"
    tapeshared status >/dev/null 2>&1 || rc=$?
    [ "$rc" = 150 ] || fail "status exit $rc with the portal address missing, expected 150"
    tapeshared status | grep -q "portal $portal: no address" || fail "status does not name the missing portal address"
    t0=$(ms)
    if ! { ip link add tsportal0 type dummy && ip addr add "$portal/32" dev tsportal0 &&
           ip link set tsportal0 up; }; then fail "cannot add the dummy portal link"; fi
    until_ok 30 np_up || fail "the portal address came up but LIO does not listen on it within 30 s"
    until_ok 30 status_ok || fail "status not 0 30 s after the portal address came up: $(tapeshared status)"
    echo "e2e-deb: portal address up -> listening and status 0 in $(( $(ms) - t0 )) ms"
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
unitfile=$(systemctl show -p FragmentPath --value "$unit")
out=$(systemd-analyze verify "$unitfile" 2>&1) || fail "systemd-analyze verify $unitfile: $out"
[ -z "$out" ] || fail "systemd-analyze verify $unitfile warns: $out"
echo "e2e-deb: systemd-analyze verify $unitfile: clean"

cold=${E2E_COLD:-}
portal=${E2E_PORTAL:-192.0.2.10}
step "configure: LIO, nftables${serial:+, an export of serial $serial}${cold:+, portal $portal}"
# The shipped file has an (empty) [global] section: a second one would be a
# configuration error, so the admin's keys go under it.
grep -qx '\[global\]' "$conf" || fail "no [global] line in the shipped $conf"
sed -i 's/^\[global\]$/[global]\n# e2e-deb-scenario: the admin'"'"'s change\nbackend = lio\nfirewall = nftables/' "$conf"
[ -z "$cold" ] || sed -i "s/^firewall = nftables\$/&\nportal = $portal/" "$conf"
if [ -n "$serial" ]; then
    cat >> "$conf" <<EOF

[export tape0]
serial = $serial
initiators = 127.0.0.1
initiator_iqns = $initiator
EOF
fi
tapeshared check-config || fail "check-config"
sum=$(sha256sum < "$conf")

step "start"
systemctl start "$unit" || fail "systemctl start"
wait_state active
[ "$(prop Type)" = notify ] || fail "unit type $(prop Type), expected notify"
pid=$(prop MainPID)
[ "$pid" -gt 0 ] || fail "no main pid"
echo "e2e-deb: running as pid $pid: $(prop StatusText)"
if [ -n "$serial" ]; then
    # READY=1 comes after the first reconcile: the export is there already.
    if [ -n "$cold" ]; then cold_boot; fi
    exported || fail "active (READY=1) but $iqn has no enabled LUN 0 in configfs"
    echo "e2e-deb: READY, and LUN 0 of $iqn is exported"
fi

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

step "SysV init script (service stopped)"
systemctl stop "$unit" || fail "systemctl stop"
wait_state inactive
if [ -n "$serial" ]; then
    exported || fail "stop_action = keep, but the export went away on stop"
fi
# A direct call on a systemd host goes through systemctl (Debian's
# /lib/lsb/init-functions), so the unit is what runs.
/etc/init.d/tapeshared start || fail "/etc/init.d/tapeshared start (redirected) exit $?"
wait_state active
echo "e2e-deb: a direct call was redirected: $unit active, pid $(prop MainPID)"
/etc/init.d/tapeshared stop || fail "/etc/init.d/tapeshared stop (redirected) exit $?"
wait_state inactive
# SYSTEMCTL_SKIP_REDIRECT=1: the script itself, as on a host without systemd.
rc=0; sysv status >/dev/null || rc=$?
[ "$rc" = 3 ] || fail "init script status exit $rc before start, expected 3"
sysv start || fail "init script start exit $?"
[ -s /var/run/tapeshared.pid ] || fail "no /var/run/tapeshared.pid after start"
spid=$(cat /var/run/tapeshared.pid)
kill -0 "$spid" 2>/dev/null || fail "pid $spid from the pidfile is not running"
[ "$(prop ActiveState)" = inactive ] || fail "the SysV start went through systemd"
rc=0; sysv status || rc=$?
[ "$rc" = 0 ] || fail "init script status exit $rc while running, expected 0"
sysv reload || fail "init script reload exit $?"
sleep 1
kill -0 "$spid" 2>/dev/null || fail "reload killed pid $spid"
rc=0; sysv status >/dev/null || rc=$?
[ "$rc" = 0 ] || fail "init script status exit $rc after reload, expected 0"
sysv stop || fail "init script stop exit $?"
if kill -0 "$spid" 2>/dev/null; then fail "pid $spid still running after stop"; fi
[ ! -e /var/run/tapeshared.pid ] || fail "pidfile left after stop"
rc=0; sysv status >/dev/null || rc=$?
[ "$rc" = 3 ] || fail "init script status exit $rc after stop, expected 3"
sysv stop || fail "stopping a stopped service must succeed (LSB), exit $?"
echo "e2e-deb: SysV start (pid $spid), status 0, reload, stop, status 3"
systemctl start "$unit" || fail "systemctl start after the SysV part"
wait_state active

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
[ -z "$cold" ] || ip link del tsportal0
echo "e2e-deb: PASS"
