# shellcheck shell=bash
# Variables set here are used by the scripts that source this file; helpers
# defined inside functions are called through wait_for.
# shellcheck disable=SC2034,SC2317
# Helpers for the tgt scenarios (and demo): source it after ../lib.sh.
#   . "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/../tgt-lib.sh"
# A scsi_debug tape exported by tgt (sg pass-through) and used over loopback
# iSCSI by the guest's own initiator. Every wait is bounded.

GUEST_IQN=iqn.1994-05.com.example:tapeshared-e2e
TGT_IQN=iqn.2007-04.com.example:tape0
PORTAL=127.0.0.1
TS_CONF=/tmp/tapeshared-e2e/tapeshared.conf
TS_LOG=/tmp/tapeshared-e2e/daemon.log
TS_PID=

# ts ARGS...: tapeshared from the read-only share.
ts() { PYTHONPATH=${TAPESHARED_SRC:-/mnt/src} python3 -m tapeshared "$@"; }

# now_ms: the wall clock in milliseconds (bash 5's EPOCHREALTIME: no fork).
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo "${t%???}"; }

# host_driver HCTL: the driver of the SCSI host (scsi_debug, iscsi_tcp, ...).
host_driver() { cat "/sys/class/scsi_host/host${1%%:*}/proc_name" 2>/dev/null; }

# tapes_on DRIVER [TYPE]: H:C:T:L of the devices of TYPE (1 tape, 8 changer)
# on hosts of DRIVER, one a line, sorted.
tapes_on() {
    local d
    for d in /sys/bus/scsi/devices/*:*:*:*; do
        [ -e "$d/type" ] || continue
        [ "$(cat "$d/type")" = "${2:-1}" ] || continue
        [ "$(host_driver "${d##*/}")" = "$1" ] && echo "${d##*/}"
    done | sort -V
}

# node_of HCTL CLASS: the device node of HCTL in CLASS (scsi_tape -> nstN only,
# scsi_generic -> sgN), e.g. /dev/nst1.
node_of() {
    local n
    for n in "/sys/bus/scsi/devices/$1/$2/"*; do
        n=${n##*/}
        case $2:$n in
            scsi_tape:nst*[0-9]) echo "/dev/$n"; return 0 ;;
            scsi_generic:sg*) echo "/dev/$n"; return 0 ;;
        esac
    done
    return 1
}

# tape_add [scsi_debug args...]: load scsi_debug with one emulated tape.
tape_add() {
    modprobe scsi_debug ptype=1 vpd_use_hostno=0 "$@"
    udevadm settle --timeout=30
}

# tgt_start: tgtd via its unit (disabled in the image), answering tgtadm.
tgt_start() {
    systemctl start tgt.service
    wait_for 20 tgtadm --lld iscsi --mode target --op show
}

# write_conf: $TS_CONF with backend tgt; extra lines on stdin (the exports).
write_conf() {
    mkdir -p "${TS_CONF%/*}"
    {
        printf '[global]\nbackend = tgt\nstate_dir = /run/tapeshared-e2e\n'
        printf 'resync_interval = 30\n\n'
        cat
    } > "$TS_CONF"
}

# write_tape_conf SERIAL: one tape, by serial, as LUN 1 of $TGT_IQN for the
# guest's own initiator.
write_tape_conf() {
    write_conf <<CONF
[export tape0]
serial = $1
lun = 1
initiators = $PORTAL
initiator_iqns = $GUEST_IQN
CONF
}

# stamp: prefix each line of stdin with the time in ms (now_ms), for logs that
# are compared with a scenario's own timestamps.
stamp() {
    local line t
    while IFS= read -r line; do
        t=${EPOCHREALTIME/[.,]/}
        printf '%s %s\n' "${t%???}" "$line"
    done
}

# daemon_start: `tapeshared run` in the background, logging to $TS_LOG (each
# line stamped with now_ms); waits (bounded) until status says every export
# is live and verified. Call it directly, not in $(...) (nor through check):
# it sets TS_PID for daemon_stop.
daemon_start() {
    mkdir -p "${TS_LOG%/*}"
    # exec: TS_PID is the daemon itself, so daemon_stop stops it (a backgrounded
    # shell function would leave the daemon running, holding its state_dir lock)
    (PYTHONPATH=${TAPESHARED_SRC:-/mnt/src} exec python3 -m tapeshared -c "$TS_CONF" -vv \
        run --log-target stderr) > >(exec >> "$TS_LOG" 2>&1; stamp) 2>&1 &
    TS_PID=$!
    if ! wait_for 60 ts -c "$TS_CONF" status >/dev/null; then
        tail -n 30 "$TS_LOG" | indent
        ts -c "$TS_CONF" status | indent || true
        return 1
    fi
}

daemon_stop() {
    [ -n "$TS_PID" ] || return 0
    kill -TERM "$TS_PID" 2>/dev/null || true
    local _
    for _ in $(seq 1 100); do
        kill -0 "$TS_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$TS_PID" 2>/dev/null && kill -KILL "$TS_PID" 2>/dev/null
    TS_PID=
}

# lun_path IQN LUN: tgtd's backing store path of that LUN.
lun_path() {
    tgtadm --lld iscsi --mode target --op show | awk -v iqn="$1" -v lun="$2" '
        /^Target [0-9]+: / { on = ($3 == iqn) }
        on && $1 == "LUN:" { cur = $2 }
        on && /Backing store path:/ && cur == lun { print $4 }'
}

# tgtd_holds PATH: true if tgtd has PATH (or "PATH (deleted)") open.
tgtd_holds() {
    local fd pid
    pid=$(pgrep -xo tgtd) || return 1
    for fd in "/proc/$pid/fd/"*; do
        case $(readlink "$fd" 2>/dev/null) in "$1"|"$1 (deleted)") return 0 ;; esac
    done
    return 1
}

# login IQN: discovery and login over loopback; waits for the iSCSI tape.
login() {
    iscsiadm -m discovery -t sendtargets -p "$PORTAL" >/dev/null
    iscsiadm -m node -T "$1" -p "$PORTAL" --login >/dev/null
    wait_for 30 remote_nst >/dev/null
    udevadm settle --timeout=30
}

logout_all() { iscsiadm -m node --logoutall=all >/dev/null 2>&1 || true; }

# remote_nst [N]: /dev/nstX of the Nth (default 1st) tape on an iscsi_tcp host.
remote_nst() {
    local hctl
    hctl=$(tapes_on iscsi_tcp 1 | sed -n "${1:-1}p")
    [ -n "$hctl" ] && node_of "$hctl" scsi_tape
}

# renumber HCTL: the local tape leaves and comes back on a new scsi_debug host.
renumber() {
    echo 1 > "/sys/bus/scsi/devices/$1/delete"
    echo 1 > /sys/bus/pseudo/drivers/scsi_debug/add_host
}

# log_ms PATTERN [AFTER_MS]: the stamp of the first daemon log line matching
# PATTERN (grep -E) stamped at or after AFTER_MS; empty if none.
log_ms() {
    awk -v after="${2:-0}" -v pat="$1" '$1 >= after && $0 ~ pat { print $1; exit }' "$TS_LOG"
}

# dd_rate DIRECTION DEV COUNT: 256 KiB blocks, prints dd's MB/s figure.
dd_rate() {
    local out
    mt -f "$2" rewind
    if [ "$1" = write ]; then
        out=$(dd if=/dev/zero of="$2" bs=256k count="$3" 2>&1) || { echo "$out" >&2; return 1; }
    else
        out=$(dd if="$2" of=/dev/null bs=256k count="$3" 2>&1) || { echo "$out" >&2; return 1; }
    fi
    mt -f "$2" rewind
    echo "$out" | tail -n1 | sed -n 's/.*, \([0-9.,]* [kMG]*B\/s\)$/\1/p'
}

# wait_tur SG SECONDS: retry TEST UNIT READY on SG every 20 ms until it
# succeeds; prints the number of failed attempts.
wait_tur() {
    local sg deadline=$(( $(date +%s) + $2 )) n=0
    sg=$1
    until sg_turs "$sg" >/dev/null 2>&1; do
        n=$((n + 1))
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.02
    done
    echo "$n"
}

# tgt_cleanup: for the EXIT trap (several scenarios may share one boot).
tgt_cleanup() {
    set +e
    logout_all
    daemon_stop
    systemctl stop tgt.service >/dev/null 2>&1
    modprobe -r scsi_debug >/dev/null 2>&1
    if [ -s "$TS_LOG" ] && [ -n "${TAPESHARED_RESULTS:-}" ]; then
        cp "$TS_LOG" "$TAPESHARED_RESULTS/${0##*/}.daemon.log" 2>/dev/null
    fi
    rm -rf /tmp/tapeshared-e2e /run/tapeshared-e2e
}

# renumber_measure HCTL RSG: renumber the local tape at HCTL (calling the
# function while_gone, if the caller defined one, while it is away), then TUR the
# initiator's RSG every 20 ms until GOOD (iscsiadm -m session --rescan after
# 30 s of failures, once). Sets R_NEW (new address), R_MS (outage: from writing
# add_host, its scan included, to the first GOOD TUR), R_SCAN_MS (the write), R_FAILS (failed TURs after
# the return), R_SEEN (their times and sense), R_RESCAN (yes/no), R_DAEMON
# (when the daemon deleted and re-added the LUN, from its log), R_TGTD (tgtd
# pid before -> after: a change means tgtd died and systemd restarted it).
renumber_measure() {
    local hctl=$1 rsg=$2 out deadline t_dev t_del t_new pid_before
    pid_before=$(pgrep -xo tgtd || true)
    # a blocked step shows on the console (what sleeps in D state, the kernel log)
    ( sleep 25; echo "renumber: still busy after 25 s; D-state tasks and dmesg:"
      ps -eo pid,stat,wchan:32,args | awk '$2 ~ /D/' | sed 's/^/    /'
      dmesg | tail -n 15 | sed 's/^/    /' ) &
    local watch=$!
    echo 1 > "/sys/bus/scsi/devices/$hctl/delete"
    _gone() { [ ! -e "/sys/bus/scsi/devices/$hctl" ]; }
    wait_for 10 _gone || { echo "renumber: $hctl still there" >&2; return 1; }
    if declare -F while_gone >/dev/null; then while_gone || return 1; fi
    _back() { [ -n "$(tapes_on scsi_debug 1)" ]; }
    # the return: from just before add_host is written (the write returns only
    # after the new host's scan, ~0.5-1.5 s under TCG, by when the daemon may
    # have re-added the LUN already): conservative, it counts the scan too
    t_dev=$(now_ms)
    echo 1 > /sys/bus/pseudo/drivers/scsi_debug/add_host
    R_SCAN_MS=$(( $(now_ms) - t_dev ))
    wait_for 10 _back || { echo "renumber: the tape did not come back" >&2; return 1; }
    R_NEW=$(tapes_on scsi_debug 1 | head -n1)
    kill "$watch" 2>/dev/null || true
    R_RESCAN=no R_FAILS=0 R_SEEN=
    deadline=$(( $(date +%s) + 30 ))
    until out=$(sg_turs -v "$rsg" 2>&1); do
        R_FAILS=$((R_FAILS + 1))
        R_SEEN="$R_SEEN
    +$(( $(now_ms) - t_dev )) ms: $(echo "$out" | grep -i -e 'sense key' -e 'additional sense' -e 'status' | sed 's/^ *//' | paste -sd';' -)"
        if [ "$(date +%s)" -ge "$deadline" ]; then
            if [ "$R_RESCAN" = yes ]; then
                echo "renumber: initiator TUR fails even after a session rescan: $out" >&2
                return 1
            fi
            R_RESCAN=yes
            iscsiadm -m session --rescan >/dev/null
            deadline=$(( $(date +%s) + 30 ))
        fi
        sleep 0.02
    done
    R_MS=$(( $(now_ms) - t_dev ))
    t_del=$(log_ms 'ran tgtadm.*logicalunit --op delete' "$t_dev")
    t_new=$(log_ms 'ran tgtadm.*logicalunit --op new.*rc=0' "$t_dev")
    if [ -n "$t_del" ]; then
        R_DAEMON="LUN deleted +$((t_del - t_dev)) ms"
    else
        R_DAEMON="LUN deleted while the tape was away"
    fi
    if [ -n "$t_new" ]; then
        R_DAEMON="$R_DAEMON, re-added +$((t_new - t_dev)) ms after the return (daemon log)"
    else
        R_DAEMON="$R_DAEMON, re-add not in the daemon log"
    fi
    R_TGTD="$pid_before -> $(pgrep -xo tgtd || echo none)"
}

# tgtd_restarted: true if R_TGTD shows another tgtd pid (print why, if known).
tgtd_restarted() {
    [ "${R_TGTD% -> *}" != "${R_TGTD#* -> }" ] || return 1
    journalctl -u tgt.service --no-pager -n 15 -o cat 2>/dev/null | indent
    dmesg | grep -i -e 'tgtd.*segfault' -e 'tgtd.*trap' | tail -n 3 | indent
    return 0
}

# host_position SG: the drive's position (READ POSITION, short form: the first
# block location, blocks and filemarks from BOT) through the host's SG; fails
# when the drive does not answer GOOD.
host_position() {
    local out=/tmp/tapeshared-e2e/position
    mkdir -p "${out%/*}"
    sg_raw -o "$out" -r 20 "$1" 34 00 00 00 00 00 00 00 00 00 >/dev/null 2>&1 || return 1
    od -A n -t u1 -j 4 -N 4 "$out" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }'
}

# sense_of SG: TEST UNIT READY on SG: "GOOD", or the sense it got (one line).
sense_of() {
    local out
    if out=$(sg_turs -v "$1" 2>&1); then
        echo GOOD
    else
        echo "$out" | grep -i -e 'sense key' -e 'additional sense' -e 'status' \
            | sed 's/^ *//' | paste -sd';' -
    fi
}

# st_position DEV: "file F block B" as the initiator's st counts (mt status).
st_position() {
    mt -f "$1" status 2>&1 | sed -n 's/^File number=\(-*[0-9]*\), block number=\(-*[0-9]*\).*/file \1 block \2/p'
}

# tape_writer DEV TAG BEFORE AFTER [FLAG]: open DEV for writing, write BEFORE
# 64 KiB blocks tagged (TAG, n), then (with FLAG) create FLAG.ready and wait
# until FLAG exists, write AFTER more blocks (each attempted, errors too), and
# close. One line per step: "open ok", "write 3 EIO", "close ok".
tape_writer() {
    python3 - "$@" <<'PY'
import errno, os, struct, sys, time
dev, tag, before, after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
flag = sys.argv[5] if len(sys.argv) > 5 else ""

def step(what, action):
    try:
        action()
    except OSError as exc:
        print(what, errno.errorcode.get(exc.errno, exc.errno), flush=True)
        return
    print(what, "ok", flush=True)

def block(n):
    return struct.pack(">HH", tag, n) + bytes(65532)

try:
    fd = os.open(dev, os.O_WRONLY)
except OSError as exc:
    print("open", errno.errorcode.get(exc.errno, exc.errno), flush=True)
    sys.exit(0)
print("open ok", flush=True)
for n in range(before):
    step("write %d" % n, lambda: os.write(fd, block(n)))
if flag:
    open(flag + ".ready", "w").close()
    deadline = time.monotonic() + 120
    while not os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.05)
for n in range(before, before + after):
    step("write %d" % n, lambda: os.write(fd, block(n)))
step("close", lambda: os.close(fd))
PY
}

# tape_leave HCTL: the local tape at HCTL leaves (its scsi_device is deleted).
tape_leave() {
    echo 1 > "/sys/bus/scsi/devices/$1/delete"
    _left() { [ ! -e "/sys/bus/scsi/devices/$1" ]; }
    wait_for 10 _left "$1"
}

# tape_return: the tape comes back on a new scsi_debug host (a new device
# instance, a blank medium: scsi_debug keeps a tape's data per device);
# prints its address.
tape_return() {
    echo 1 > /sys/bus/pseudo/drivers/scsi_debug/add_host
    udevadm settle --timeout=30
    _returned() { [ -n "$(tapes_on scsi_debug 1)" ]; }
    wait_for 10 _returned && tapes_on scsi_debug 1 | head -n1
}

# reexported IQN LUN HCTL AFTER_MS: true once tgtd's LUN is the sg node of
# HCTL and the daemon logged, at or after AFTER_MS, the reset of HCTL before it
# (nothing is sent from the initiator meanwhile).
reexported() {
    local sg
    sg=$(node_of "$3" scsi_generic) || return 1
    [ "$(lun_path "$1" "$2")" = "$sg" ] && [ -n "$(log_ms "reset the logical unit $3 " "$4")" ]
}

# --- the kill matrix (scenarios/tgt-kill.sh drives killmatrix.py with these) --

# sysfs_serial HCTL: the unit serial from VPD page 0x80 in sysfs (what
# tapeshared's scan reads there), without a Python start.
sysfs_serial() {
    tail -c +5 "/sys/bus/scsi/devices/$1/vpd_pg80" 2>/dev/null | tr -d '\0' | sed 's/[[:space:]]*$//'
}

# by_serial SERIAL [TYPE]: the scsi_debug device (default a tape) with that serial.
by_serial() {
    local d
    for d in $(tapes_on scsi_debug "${2:-1}"); do
        [ "$(sysfs_serial "$d")" = "$1" ] && { echo "$d"; return 0; }
    done
    return 1
}

# scsi_debug_fresh: no scsi_debug device nor module left (a previous scenario's
# library included: ch holds its changer, which pins the module).
scsi_debug_fresh() {
    local d
    lsmod | grep -q '^scsi_debug ' || return 0
    for d in $(tapes_on scsi_debug 1) $(tapes_on scsi_debug 8) $(tapes_on scsi_debug 0); do
        echo 1 > "/sys/bus/scsi/devices/$d/delete" 2>/dev/null || true
    done
    for _ in $(seq 20); do
        udevadm settle --timeout=10 || true
        modprobe -r scsi_debug 2>/dev/null && return 0
        sleep 0.5
    done
    return 1
}

# tgt_objects: every target's objects, one a line (sessions left out): the
# target, each LUN with its SCSI ID and its backing store named by the serial
# of the device behind it and whether tgtd holds that node open now ("live"),
# open on a node deleted since ("deleted") or not at all ("closed"); accounts;
# ACL entries.
tgt_objects() {
    local pid fds kind lun path rest node dev held
    pid=$(pgrep -xo tgtd) || { echo "no tgtd"; return 1; }
    # what tgtd's fds point at, in one process (a readlink per fd costs 30-90 ms in TCG)
    fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null)
    tgtadm --lld iscsi --mode target --op show | awk '
        /^Target [0-9]+: / { print "target", $2, $3; sect = ""; next }
        /^ *[A-Za-z_ ]+ information:$/ { sect = $1; next }
        sect == "LUN" && $1 == "LUN:" { lun = $2 }
        sect == "LUN" && /SCSI ID:/ { sub(/^ *SCSI ID: */, ""); id[lun] = $0 }
        sect == "LUN" && /Backing store path:/ { print "lun", lun, $4, id[lun] }
        sect == "Account" && NF { print "account", $1, $2 }
        sect == "ACL" && NF { print "acl", $1 }' |
    while read -r kind lun path rest; do
        if [ "$kind" != lun ] || [ "${path#/dev/sg}" = "$path" ]; then
            echo "$kind $lun $path $rest"
            continue
        fi
        node=${path#/dev/}
        dev=$(readlink -f "/sys/class/scsi_generic/$node/device" 2>/dev/null) || dev=
        held=closed
        if grep -qxF -- "$path" <<<"$fds"; then held=live
        elif grep -qxF -- "$path (deleted)" <<<"$fds"; then held=deleted
        fi
        if [ -n "$dev" ]; then
            echo "lun $lun serial:$(sysfs_serial "${dev##*/}") $held id $rest"
        else
            echo "lun $lun gone:$path $held id $rest"
        fi
    done
}

# tgt_teardown: every target deleted, the daemon's state gone (a first export).
tgt_teardown() {
    local tid
    for tid in $(tgtadm --lld iscsi --mode target --op show | sed -n 's/^Target \([0-9]*\): .*/\1/p'); do
        tgtadm --lld iscsi --mode target --op delete --force --tid "$tid"
    done
    rm -rf /run/tapeshared-e2e
}

# tgt_login_refused: a login to $TGT_IQN (its node record made by hand: tgt's
# discovery lists no target the initiator may not reach) does not get in.
tgt_login_refused() {
    iscsiadm -m node -o new -T "$TGT_IQN" -p "$PORTAL" >/dev/null 2>&1 || true
    # one try, a short timeout: a refusal must not cost iscsid's retries
    iscsiadm -m node -T "$TGT_IQN" -p "$PORTAL" -o update \
        -n node.session.initial_login_retry_max -v 1 >/dev/null 2>&1 || true
    iscsiadm -m node -T "$TGT_IQN" -p "$PORTAL" -o update \
        -n node.conn[0].timeo.login_timeout -v 5 >/dev/null 2>&1 || true
    if iscsiadm -m node -T "$TGT_IQN" -p "$PORTAL" --login >/dev/null 2>&1; then
        logout_all
        return 1
    fi
    iscsiadm -m node -o delete -T "$TGT_IQN" >/dev/null 2>&1 || true
}

# tgt_kill_after: after a first export killed before step $KM_K: no login
# gets in before the plan's first ACL bind (of $KM_DRY, the dry run's step
# log), which comes after the LUN: from then on a login sees the drive.
tgt_kill_after() {
    local first_bind
    [ "$KM_CASE" = "first export" ] || return 0
    first_bind=$(grep -n -- "--op bind --tid [0-9]* --initiator" "$KM_DRY" | head -n1 | cut -d: -f1)
    [ -n "$first_bind" ] || { echo "no ACL bind in the dry run"; return 1; }
    if [ "$KM_K" -le "$first_bind" ]; then
        tgt_login_refused || { echo "a login got in before the first ACL bind (step $first_bind)"; return 1; }
        echo "login refused (first ACL bind: step $first_bind)"
    else
        login "$TGT_IQN" || { echo "no login after the first ACL bind (step $first_bind)"; return 1; }
        logout_all
        iscsiadm -m node -o delete >/dev/null 2>&1 || true
        echo "login sees the drive (first ACL bind: step $first_bind)"
    fi
}

# tgt_kill_exported_single: LUN 1 of $TGT_IQN is the sg node of the tape
# with serial $KILL_SERIAL.
tgt_kill_exported_single() {
    local hctl
    hctl=$(by_serial "$KILL_SERIAL") || { echo "no tape with serial $KILL_SERIAL"; return 1; }
    [ "$(lun_path "$TGT_IQN" 1)" = "$(node_of "$hctl" scsi_generic)" ]
}

# tgt_kill_renumber: the tape with serial $KILL_SERIAL leaves and comes back
# on a new scsi_debug host.
tgt_kill_renumber() {
    local old
    old=$(by_serial "$KILL_SERIAL") || { echo "no tape with serial $KILL_SERIAL"; return 1; }
    tape_leave "$old" || { echo "$old did not leave"; return 1; }
    tape_return >/dev/null || { echo "the tape did not come back"; return 1; }
    by_serial "$KILL_SERIAL" >/dev/null
}

# tgt_library_drives: the library's drives by target id (the moved one last).
tgt_library_drives() { tapes_on scsi_debug 1 | sort -t: -k3n; }

# tgt_kill_library: a changer and two drives (as tgt-library.sh and
# tgt-reset.sh build them, ptype back to 1 afterwards), exported by serial as
# LUNs 1..3 of $TGT_IQN; the single tape's target goes first.
tgt_kill_library() {
    local sdebug=/sys/bus/pseudo/drivers/scsi_debug changer d1 d2
    tgt_teardown
    scsi_debug_fresh || { echo "scsi_debug cannot be removed"; return 1; }
    tape_add num_tgts=3
    echo 1 > "/sys/bus/scsi/devices/$(tgt_library_drives | head -n1)/delete"
    echo 8 > "$sdebug/ptype"
    echo 1 > "$sdebug/num_tgts"
    echo 1 > "$sdebug/add_host"
    udevadm settle --timeout=30
    echo 1 > "$sdebug/ptype"
    changer=$(tapes_on scsi_debug 8 | head -n1)
    d1=$(tgt_library_drives | sed -n 1p)
    d2=$(tgt_library_drives | sed -n 2p)
    [ -n "$changer" ] && [ -n "$d2" ] || { lsscsi -g; echo "no changer and two drives"; return 1; }
    write_conf <<CONF
[export library0]
iqn = $TGT_IQN
lun1 = serial:$(sysfs_serial "$changer")
lun2 = serial:$(sysfs_serial "$d1")
lun3 = serial:$(sysfs_serial "$d2")
initiators = $PORTAL
initiator_iqns = $GUEST_IQN
CONF
    echo "changer $changer, drives $d1 $d2"
}

# tgt_kill_exported_library: LUNs 1, 2, 3 are the changer's and the drives' sg nodes.
tgt_kill_exported_library() {
    [ "$(lun_path "$TGT_IQN" 1)" = "$(node_of "$(tapes_on scsi_debug 8 | head -n1)" scsi_generic)" ] &&
        [ "$(lun_path "$TGT_IQN" 2)" = "$(node_of "$(tgt_library_drives | sed -n 1p)" scsi_generic)" ] &&
        [ "$(lun_path "$TGT_IQN" 3)" = "$(node_of "$(tgt_library_drives | sed -n 2p)" scsi_generic)" ]
}

# tgt_kill_repoint: the second drive is deleted and rescanned at its address:
# a new kernel object there (its LUN must be re-pointed).
tgt_kill_repoint() {
    local d h rest
    d=$(tgt_library_drives | sed -n 2p)
    [ -n "$d" ] || { echo "no second drive"; return 1; }
    h=${d%%:*}
    rest=${d#*:}
    tape_leave "$d" || { echo "$d did not leave"; return 1; }
    echo 3 > /sys/bus/pseudo/drivers/scsi_debug/num_tgts  # scsi_debug bounds a scan by it
    echo "${rest//:/ }" > "/sys/class/scsi_host/host$h/scan"
    wait_for 30 test -e "/sys/bus/scsi/devices/$d/type" || { echo "drive $d not back"; return 1; }
    udevadm settle --timeout=30
}
