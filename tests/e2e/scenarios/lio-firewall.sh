#!/bin/bash
# The firewall backends for real: two network namespaces joined to the guest
# by veth (documentation addresses), the LIO portal on the guest's side; only
# the configured initiator addresses reach tcp 3260, and only on the portal:
# the guest's second address (198.51.100.1) and 127.0.0.1 have listeners on
# 3260 too and are refused to everyone, whatever an old ACCEPT rule in the
# parent says (iptables, then nftables). The guest logs in to its own portal
# from 192.0.2.1, a configured initiator address.
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
export TS_SCENARIO=lio-firewall
# shellcheck disable=SC1091
. "$(dirname "$0")/../lio-lib.sh"
IQN=iqn.2007-04.com.example:lio-firewall
PORTAL=192.0.2.1 ALLOWED=192.0.2.10 OTHER=198.51.100.20 SECOND=198.51.100.1
LISTENERS=
cleanup() {
    for pid in $LISTENERS; do kill "$pid" 2>/dev/null || true; done
    lio_cleanup
    iptables -w -D INPUT -p tcp -m tcp --dport 3260 -j ACCEPT 2>/dev/null || true
    iptables -w -D INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT 2>/dev/null || true
    nft delete table inet oldfw 2>/dev/null || true
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

# connect NS DST: "ok", "refused" or "error ..." for tcp DST:3260 (10 s bound);
# NS "-" is the guest itself (source: its own address on the route to DST).
connect() {
    local run=()
    [ "$1" = - ] || run=(ip netns exec "$1")
    "${run[@]}" python3 - "$2" <<'PYEOF'
import socket, sys
s = socket.socket()
s.settimeout(10)
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
expect_connect() {  # NS WANT DESC [DST]
    local got dst=${4:-$PORTAL}
    got=$(connect "$1" "$dst")
    if [ "$got" != "$2" ] && [ "${got#error}" != "$got" ]; then
        note "$3: tcp $dst:3260 from $1: $got; once more"  # a slow guest, or not
        got=$(connect "$1" "$dst")
    fi
    [ "$got" = "$2" ] || fail "$3: tcp $dst:3260 from $1: $got, not $2"
    pass "$3: tcp $dst:3260 from $1: $got"
}
# Only tsa, and the guest from its portal address, reach the portal; nobody
# reaches 3260 on the second address or on loopback.
expect_narrow() {  # DESC
    expect_connect tsa ok "$1"
    expect_connect tsb refused "$1"
    expect_connect tsb refused "$1" "$SECOND"
    expect_connect tsa refused "$1" "$SECOND"
    expect_connect - refused "$1" 127.0.0.1
    expect_connect - refused "$1" "$SECOND"
}
# listen ADDR: a plain listener on ADDR:3260 besides LIO's on the portal.
listen() {
    python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 3260))
s.listen(8)
while True:
    s.accept()[0].close()' "$1" &
    LISTENERS="$LISTENERS $!"
}
no_session() { [ -z "$(ls /sys/class/iscsi_session 2>/dev/null)" ]; }
login_from_portal() {  # DESC: the guest logs in to its portal, sees the tape, logs out
    check "$1: iscsiadm login to $PORTAL from $PORTAL" login "$IQN" "$PORTAL"
    wait_remote
    logout_all
    iscsiadm -m node -o delete >/dev/null 2>&1 || true
    wait_for 30 no_session || fail "$1: session left after logout"
    pass "$1: logged out"
}

check "network namespaces tsa ($ALLOWED) and tsb ($OTHER)" setup_netns
# No listener yet: a reachable portal answers with a reset (the guest has no ping).
reach() { [ "$(connect "$1" "$PORTAL")" = refused ]; }
wait_for 10 reach tsa || fail "tsa cannot reach $PORTAL: $(connect tsa "$PORTAL")"
wait_for 10 reach tsb || fail "tsb cannot reach $PORTAL: $(connect tsb "$PORTAL")"
pass "both namespaces reach $PORTAL (tcp reset: nothing listens yet)"
listen "$SECOND"
listen 127.0.0.1
# rc.local era: 3260 opened to everyone in the parent chain
iptables -w -A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
iptables -w -A INPUT -p tcp -m tcp --dport 3260 -j ACCEPT

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
initiators = $ALLOWED, $PORTAL
initiator_iqns = $GUEST_IQN"
}

# Without a firewall both reach the portal: what follows is the firewall's doing.
fw_config none
started=$(now_ns)
start_daemon
wait_for 90 exported "$IQN" "$HCTL" || { daemon_log_tail; find "$LIO/iscsi" -maxdepth 6 | indent; fail "export of $HCTL"; }
note "exported $(ms_since "$started") ms after the daemon's start"
check "portal $PORTAL:3260 in configfs" test -d "$LIO/iscsi/$IQN/tpgt_1/np/$PORTAL:3260"
expect_connect tsa ok "firewall = none"
expect_connect tsb ok "firewall = none"
expect_connect tsb ok "firewall = none" "$SECOND"
expect_connect - ok "firewall = none" 127.0.0.1

# iptables
fw_config iptables
kill -HUP "$DAEMON_PID"
has_chain() { iptables -w -S TAPESHARED 2>/dev/null | grep -q REJECT; }
wait_for 15 has_chain || { daemon_log_tail; fail "iptables chain TAPESHARED"; }
iptables -w -S TAPESHARED | indent
iptables -w -S INPUT | indent
first_rule() { iptables -w -S INPUT | grep -m1 '^-A'; }
case $(first_rule) in
    *"-j TAPESHARED") pass "jump first in INPUT, above the old ACCEPT and ESTABLISHED" ;;
    *) fail "first rule of INPUT is not our jump: $(first_rule)" ;;
esac
expect_narrow "iptables"
login_from_portal "iptables"

# a flush of every chain, then the old rule is back (a pass may already have
# run meanwhile, e.g. on the logout's uevents: only the end state is checked)
iptables -w -F
iptables -w -A INPUT -p tcp -m tcp --dport 3260 -j ACCEPT
kill -HUP "$DAEMON_PID"
wait_for 15 has_chain || { daemon_log_tail; fail "flush not repaired"; }
expect_narrow "flush repaired by a pass"

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
iptables -w -D INPUT -p tcp -m tcp --dport 3260 -j ACCEPT
expect_connect tsb ok "no firewall"
# an older nft table accepting 3260 for everyone
nft -f - <<'NFTEOF'
table inet oldfw {
    chain input {
        type filter hook input priority 0; policy accept;
        ct state established,related accept
        tcp dport 3260 accept
    }
}
NFTEOF
fw_config nftables
start_daemon
has_table() { nft list table inet tapeshared 2>/dev/null | grep -q reject; }
wait_for 30 has_table || { daemon_log_tail; fail "nft table inet tapeshared"; }
nft list table inet tapeshared | indent
expect_narrow "nftables"
login_from_portal "nftables"
check "export still on $HCTL" exported "$IQN" "$HCTL"
no_daemon_errors
