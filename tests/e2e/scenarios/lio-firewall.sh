#!/bin/bash
# The firewall backends for real: two network namespaces joined to the guest
# by veth (documentation addresses), the LIO portal on the guest's side; only
# the configured initiator address reaches tcp 3260 (iptables, then nftables).
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
export TS_SCENARIO=lio-firewall
# shellcheck disable=SC1091
. "$(dirname "$0")/../lio-lib.sh"
IQN=iqn.2007-04.com.example:lio-firewall
PORTAL=192.0.2.1 ALLOWED=192.0.2.10 OTHER=198.51.100.20
cleanup() {
    lio_cleanup
    iptables -w -S INPUT 2>/dev/null | grep -- '-j TAPESHARED' | sed 's/^-A /-D /' \
        | while read -r rule; do eval "iptables -w $rule"; done
    iptables -w -F TAPESHARED 2>/dev/null && iptables -w -X TAPESHARED 2>/dev/null
    nft delete table inet tapeshared 2>/dev/null || true
    ip link del tsh-a 2>/dev/null || true
    ip link del tsh-b 2>/dev/null || true
    ip netns del tsa 2>/dev/null || true
    ip netns del tsb 2>/dev/null || true
}
trap cleanup EXIT

# tsa (allowed) 192.0.2.10 <-> guest 192.0.2.1; tsb (not allowed) 198.51.100.20 <-> 198.51.100.1
setup_netns() {
    ip netns add tsa
    ip netns add tsb
    ip link add tsh-a type veth peer name tsn-a netns tsa
    ip link add tsh-b type veth peer name tsn-b netns tsb
    ip addr add 192.0.2.1/24 dev tsh-a
    ip addr add 198.51.100.1/24 dev tsh-b
    ip link set tsh-a up
    ip link set tsh-b up
    ip -n tsa addr add "$ALLOWED/24" dev tsn-a
    ip -n tsb addr add "$OTHER/24" dev tsn-b
    for ns in tsa tsb; do
        ip -n "$ns" link set lo up
    done
    ip -n tsa link set tsn-a up
    ip -n tsb link set tsn-b up
    ip -n tsa route add default via 192.0.2.1
    ip -n tsb route add default via 198.51.100.1
}

# connect NS: "ok", "refused" or "timeout" for tcp $PORTAL:3260 (3 s bound).
connect() {
    ip netns exec "$1" python3 - "$PORTAL" <<'PYEOF'
import socket, sys
s = socket.socket()
s.settimeout(3)
try:
    s.connect((sys.argv[1], 3260))
    print("ok")
except ConnectionRefusedError:
    print("refused")
except OSError as exc:
    print("error %s" % exc)
finally:
    s.close()
PYEOF
}
expect_connect() {  # NS WANT DESC
    local got
    got=$(connect "$1")
    [ "$got" = "$2" ] || fail "$3: tcp $PORTAL:3260 from $1: $got, not $2"
    pass "$3: tcp $PORTAL:3260 from $1: $got"
}

check "network namespaces tsa ($ALLOWED) and tsb ($OTHER)" setup_netns
# No listener yet: a reachable portal answers with a reset (the guest has no ping).
reach() { [ "$(connect "$1")" = refused ]; }
wait_for 10 reach tsa || fail "tsa cannot reach $PORTAL: $(connect tsa)"
wait_for 10 reach tsb || fail "tsb cannot reach $PORTAL: $(connect tsb)"
pass "both namespaces reach $PORTAL (tcp reset: nothing listens yet)"

check "scsi_debug tape" add_tape
check "LIO modules and configfs" lio_modules
HCTL=$(local_tape)
SERIAL=$(serial_of "$HCTL")
fw_config() {
    write_config "[global]
backend = lio
portal = $PORTAL
firewall = $1

[export lio-firewall]
iqn = $IQN
serial = $SERIAL
initiators = $ALLOWED
initiator_iqns = $GUEST_IQN"
}

# Without a firewall both reach the portal: what follows is the firewall's doing.
fw_config none
start_daemon
wait_for 30 exported "$IQN" "$HCTL" || { daemon_log_tail; fail "export of $HCTL"; }
check "portal $PORTAL:3260 in configfs" test -d "$LIO/iscsi/$IQN/tpgt_1/np/$PORTAL:3260"
expect_connect tsa ok "firewall = none"
expect_connect tsb ok "firewall = none"

# iptables
fw_config iptables
kill -HUP "$DAEMON_PID"
has_chain() { iptables -w -S TAPESHARED 2>/dev/null | grep -q REJECT; }
wait_for 15 has_chain || { daemon_log_tail; fail "iptables chain TAPESHARED"; }
iptables -w -S TAPESHARED | indent
iptables -w -S INPUT | grep TAPESHARED | indent
expect_connect tsa ok "iptables"
expect_connect tsb refused "iptables"

iptables -w -F TAPESHARED
expect_connect tsb ok "after iptables -F TAPESHARED (drift)"
kill -HUP "$DAEMON_PID"
wait_for 15 has_chain || { daemon_log_tail; fail "drift not repaired"; }
expect_connect tsb refused "drift repaired by a pass"
expect_connect tsa ok "drift repaired by a pass"

# nftables: the iptables rules go first (the daemon does not switch backends).
check "daemon stops" stop_daemon
remove_iptables() {
    iptables -w -S INPUT | grep -- '-j TAPESHARED' | sed 's/^-A /-D /' | while read -r rule; do
        # shellcheck disable=SC2086
        eval iptables -w $rule
    done
    iptables -w -F TAPESHARED
    iptables -w -X TAPESHARED
}
check "iptables rules of ours removed" remove_iptables
expect_connect tsb ok "no firewall"
fw_config nftables
start_daemon
has_table() { nft list table inet tapeshared 2>/dev/null | grep -q reject; }
wait_for 30 has_table || { daemon_log_tail; fail "nft table inet tapeshared"; }
nft list table inet tapeshared | indent
expect_connect tsa ok "nftables"
expect_connect tsb refused "nftables"
check "export still on $HCTL" exported "$IQN" "$HCTL"
no_daemon_errors
