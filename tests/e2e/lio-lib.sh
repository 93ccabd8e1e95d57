# shellcheck shell=bash
# Helpers for the LIO scenarios (scenarios/lio-*.sh), on top of lib.sh:
#   . "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/../lio-lib.sh"
# Every wait is bounded; the initiator logs in over loopback only.

GUEST_IQN=iqn.1994-05.com.example:tapeshared-e2e
TS_CONF=/etc/tapeshared/tapeshared.conf
TS_LOG=${TAPESHARED_RESULTS:-/tmp}/${TS_SCENARIO:-lio}-daemon.log
LIO=/sys/kernel/config/target
SDEBUG=/sys/bus/pseudo/drivers/scsi_debug
DAEMON_PID=""

ts() { PYTHONPATH=/mnt/src python3 -m tapeshared "$@"; }

now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }

# lio_modules: the target core, pscsi, the iSCSI fabric and configfs.
lio_modules() {
    modprobe -a target_core_mod target_core_pscsi iscsi_target_mod
    mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
    mkdir -p "$LIO/iscsi"
}

# add_tape: one scsi_debug tape whose serial/WWN survive renumbering.
add_tape() {
    scsi_debug_unload || { echo "scsi_debug is loaded and cannot be removed"; return 1; }
    modprobe scsi_debug ptype=1 vpd_use_hostno=0
    udevadm settle --timeout=30
}

# proc_name_of H:C:T:L: the SCSI host driver of a device (scsi_debug, iscsi_tcp).
proc_name_of() {
    cat "/sys/class/scsi_host/host${1%%:*}/proc_name" 2>/dev/null
}

# devices_of DRIVER [TYPE]: H:C:T:L of the devices on that driver's hosts.
devices_of() {
    local d h
    for d in /sys/bus/scsi/devices/*:*:*:*; do
        [ -e "$d/type" ] || continue
        h=${d##*/}
        [ "$(proc_name_of "$h")" = "$1" ] || continue
        [ -z "${2:-}" ] || [ "$(cat "$d/type")" = "$2" ] || continue
        echo "$h"
    done
}
local_tape() { devices_of scsi_debug 1 | sed -n 1p; }
remote_tape() { devices_of iscsi_tcp 1 | sed -n 1p; }
have_local_tape() { [ -n "$(local_tape)" ]; }
have_remote_tape() { [ -n "$(remote_tape)" ]; }

# node_of H:C:T:L CLASS: the device node in that class (scsi_tape: nstN first).
node_of() {
    local n
    case $2 in
        scsi_tape) n=$(cd "/sys/bus/scsi/devices/$1/scsi_tape" 2>/dev/null && compgen -G 'nst[0-9]*' | grep -v '[alm]$' | sed -n 1p) ;;
        *) n=$(ls "/sys/bus/scsi/devices/$1/$2" 2>/dev/null | head -n1) ;;
    esac
    [ -n "$n" ] && echo "/dev/$n"
}

# write_config FILE-CONTENT: /etc/tapeshared/tapeshared.conf (state in /run).
write_config() {
    mkdir -p /etc/tapeshared
    printf '%s\n' "$1" > "$TS_CONF"
}

# start_daemon: tapeshared run in the background, logging to $TS_LOG.
start_daemon() {
    echo "--- start $(date +%T.%N)" >> "$TS_LOG"
    PYTHONPATH=/mnt/src python3 -m tapeshared -c "$TS_CONF" "${TS_VERBOSE:--v}" run --log-target stderr \
        >> "$TS_LOG" 2>&1 &
    DAEMON_PID=$!
}

stop_daemon() {
    [ -n "$DAEMON_PID" ] || return 0
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -KILL "$DAEMON_PID"
        DAEMON_PID=""
        return 1
    fi
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=""
}

# shellcheck disable=SC2120  # scenarios pass a line count
daemon_log_tail() { tail -n "${1:-30}" "$TS_LOG" 2>/dev/null | indent; }

# backstore_for H:C:T:L: our enabled pscsi backstore bound to that address.
backstore_for() {
    local h c t l b
    IFS=: read -r h c t l <<< "$1"
    for b in "$LIO"/core/pscsi_*/tapeshared-*-h"${h}"c"${c}"t"${t}"l"${l}"; do
        [ -d "$b" ] && [ "$(cat "$b/enable" 2>/dev/null)" = 1 ] && { echo "$b"; return 0; }
    done
    return 1
}

# mapped_to IQN MAPPED-LUN: the backstore name behind the guest ACL's mapped LUN.
mapped_to() {
    local tpg=$LIO/iscsi/$1/tpgt_1 link lun
    link=$(readlink "$tpg/acls/$GUEST_IQN/lun_$2/lun" 2>/dev/null) || return 1
    lun=$(basename "$link")
    link=$(find "$tpg/lun/$lun" -maxdepth 1 -type l | head -n1)
    [ -n "$link" ] && basename "$link"
}

# exported IQN H:C:T:L [MAPPED-LUN]: the target is enabled and the guest's
# mapped LUN reaches the backstore bound to that address.
exported() {
    local store
    [ "$(cat "$LIO/iscsi/$1/tpgt_1/enable" 2>/dev/null)" = 1 ] || return 1
    store=$(backstore_for "$2") || return 1
    [ "$(mapped_to "$1" "${3:-0}")" = "${store##*/}" ]
}

# configfs_snapshot: every object under our targets and backstores (for diffs).
configfs_snapshot() {
    find "$LIO/core" "$LIO/iscsi" -maxdepth 7 \( -type d -o -type l \) \
        \( -path '*tapeshared*' -o -path '*/acls/*' -o -path '*/lun/*' -o -path '*/np/*' \) \
        -printf '%p %l\n' 2>/dev/null | grep -v -e '/statistics' -e '/alua' -e '/pr$' \
        -e '/wwn$' -e '/attrib$' -e '/auth$' -e '/param$' -e '/fabric_statistics' | sort
}

# login IQN [PORTAL]: discovery and login over loopback; waits for the remote tape.
login() {
    local portal=${2:-127.0.0.1}
    iscsiadm -m discovery -t sendtargets -p "$portal" >/dev/null
    iscsiadm -m node -T "$1" -p "$portal" --login >/dev/null
}
logout_all() { iscsiadm -m node --logoutall=all >/dev/null 2>&1 || true; }

# inquiry NODE: "VENDOR|PRODUCT|TYPE" from a standard INQUIRY (sg_inq).
inquiry() {
    sg_inq "$1" 2>/dev/null | python3 -c '
import re, sys
text = sys.stdin.read()
def field(name):
    found = re.search(r"^\s*" + name + r":\s*(.*?)\s*$", text, re.M)
    return found.group(1) if found else "?"
pdt = re.search(r"Peripheral device type:\s*(.*?)\s*$", text, re.M)
print("%s|%s|%s" % (field("Vendor identification"), field("Product identification"),
                    pdt.group(1) if pdt else "?"))'
}

# lio_py: helpers in Python, from this process (a shell loop of sg_turs costs
# 30-90 ms per process under TCG, more than what is measured):
#   tur SG                    exit 0 if TEST UNIT READY is GOOD (SG_IO, no retries)
#   tur-inq-watch SG STOP     TUR then INQUIRY on SG until STOP exists; prints
#                             the answers run-length encoded, with times
#   return-outage OLD SG      add a scsi_debug host, wait for a new local tape
#                             (not in OLD, comma-separated H:C:T:L), then TUR
#                             SG until GOOD; prints "NEW RETURN_S OUTAGE_S SENSE"
lio_py() {
    python3 - "$@" <<'PYEOF'
import ctypes, fcntl, os, struct, sys, time

SG_IO = 0x2285
DEVICES = "/sys/bus/scsi/devices"

def tur(node):
    """(ok, sense key/asc/ascq text) of one TEST UNIT READY, 2 s timeout."""
    cdb = ctypes.create_string_buffer(bytes(6), 6)
    sense = ctypes.create_string_buffer(32)
    hdr = struct.pack("iiBBHIPPPIIiPBBBBHHiII4x", ord("S"), -1, 6, 32, 0, 0, 0,
                      ctypes.addressof(cdb), ctypes.addressof(sense), 2000, 0, 0, 0,
                      0, 0, 0, 0, 0, 0, 0, 0, 0)
    buf = bytearray(hdr)
    fd = os.open(node, os.O_RDWR | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, SG_IO, buf)
    finally:
        os.close(fd)
    fields = struct.unpack("iiBBHIPPPIIiPBBBBHHiII4x", bytes(buf))
    status, sb_len, host, driver = fields[13], fields[16], fields[17], fields[18]
    if status == 0 and host == 0 and (driver & 0xf) == 0:
        return True, "GOOD"
    raw = sense.raw[:sb_len]
    if raw[:1] and raw[0] & 0x7f in (0x72, 0x73) and len(raw) >= 4:
        return False, "status 0x%x sense %x/%02x/%02x" % (status, raw[1] & 0xf, raw[2], raw[3])
    if len(raw) >= 14:
        return False, "status 0x%x sense %x/%02x/%02x" % (status, raw[2] & 0xf, raw[12], raw[13])
    return False, "status 0x%x host 0x%x driver 0x%x" % (status, host, driver)

def local_tapes():
    found = set()
    for name in os.listdir(DEVICES):
        try:
            with open("%s/%s/type" % (DEVICES, name)) as f:
                kind = f.read().strip()
            with open("/sys/class/scsi_host/host%s/proc_name" % name.split(":")[0]) as f:
                driver = f.read().strip()
        except OSError:
            continue
        if kind == "1" and driver == "scsi_debug":
            found.add(name)
    return found

def return_outage(old, node):
    old = set(filter(None, old.split(",")))
    with open("/sys/bus/pseudo/drivers/scsi_debug/add_host", "w") as f:
        f.write("1")
    begin = time.monotonic()
    while True:
        new = local_tapes() - old
        if new:
            back = time.monotonic()
            break
        if time.monotonic() - begin > 30:
            sys.exit("no new tape within 30 s")
        time.sleep(0.001)
    seen = ""
    while True:
        ok, text = tur(node)
        if ok:
            done = time.monotonic()
            break
        seen = seen or text
        if time.monotonic() - back > 60:
            sys.exit("initiator TUR not GOOD within 60 s (%s)" % text)
        time.sleep(0.002)
    print("%s %.3f %.3f %s" % (sorted(new)[0], back - begin, done - back,
                               (seen or "none").replace(" ", "_")))

def inquiry(node):
    """One standard INQUIRY: "INQ-<type>-<product>-tpgs<N>", or the error."""
    cdb = ctypes.create_string_buffer(bytes([0x12, 0, 0, 0, 36, 0]), 6)
    data = ctypes.create_string_buffer(36)
    sense = ctypes.create_string_buffer(32)
    hdr = struct.pack("iiBBHIPPPIIiPBBBBHHiII4x", ord("S"), -3, 6, 32, 0, 36,
                      ctypes.addressof(data), ctypes.addressof(cdb),
                      ctypes.addressof(sense), 2000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    buf = bytearray(hdr)
    fd = os.open(node, os.O_RDWR | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, SG_IO, buf)
    finally:
        os.close(fd)
    fields = struct.unpack("iiBBHIPPPIIiPBBBBHHiII4x", bytes(buf))
    if fields[13] or fields[17] or fields[18] & 0xf:
        return "INQ-status_0x%x_host_0x%x" % (fields[13], fields[17])
    raw = data.raw
    product = raw[16:32].decode("ascii", "replace").strip().replace(" ", "_")
    return "INQ-%d-%s-tpgs%d" % (raw[0] & 0x1f, product or "?", (raw[5] >> 4) & 3)

if sys.argv[1] == "tur-inq-watch":
    # TUR then INQUIRY on SG in a loop until STOP-FILE exists; prints the answers
    # ("TUR:..." "INQ:...") run-length encoded: "ANSWER COUNT FIRST_MS LAST_MS"
    # per run (ms from the start)
    node, stop = sys.argv[2], sys.argv[3]
    begin, runs = time.monotonic(), []
    while not os.path.exists(stop) and time.monotonic() - begin < 60:
        for text in ("TUR:" + tur(node)[1], "INQ:" + inquiry(node)):
            at = (time.monotonic() - begin) * 1000
            if runs and runs[-1][0] == text:
                runs[-1][1] += 1
                runs[-1][3] = at
            else:
                runs.append([text, 1, at, at])
        time.sleep(0.001)
    for text, count, first, last in runs:
        print("%s %d %.1f %.1f" % (text.replace(" ", "_"), count, first, last))
    sys.exit(0)

if sys.argv[1] == "tur":
    ok, text = tur(sys.argv[2])
    print(text)
    sys.exit(0 if ok else 1)
elif sys.argv[1] == "return-outage":
    return_outage(sys.argv[2], sys.argv[3])
PYEOF
}

# renumber H:C:T:L: delete the scsi_debug device and add a host (same identity).
renumber() {
    echo 1 > "/sys/bus/scsi/devices/$1/delete"
    echo 1 > "$SDEBUG/add_host"
}

# lio_teardown: remove every LIO target and pscsi backstore (scenarios own the
# guest's configfs), from the leaves up: configfs refuses a busy directory.
lio_teardown() {
    local t a m l
    for t in "$LIO"/iscsi/iqn.*/tpgt_1; do
        [ -d "$t" ] || continue
        echo 0 > "$t/enable" 2>/dev/null || true
        for a in "$t"/acls/*/; do
            for m in "$a"lun_*/; do
                [ -d "$m" ] || continue
                find "$m" -maxdepth 1 -type l -exec rm -f {} +
                rmdir "$m"
            done
            [ -d "$a" ] && rmdir "$a"
        done
        for l in "$t"/lun/lun_*/; do
            [ -d "$l" ] || continue
            find "$l" -maxdepth 1 -type l -exec rm -f {} +
            rmdir "$l"
        done
        for l in "$t"/np/*/; do [ -d "$l" ] && rmdir "$l"; done
        rmdir "$t" "${t%/tpgt_1}"
    done
    for l in "$LIO"/core/pscsi_*/*/; do [ -d "$l" ] && rmdir "$l"; done
    for l in "$LIO"/core/rd_mcp_1000/*/ "$LIO"/core/rd_mcp_1000/; do [ -d "$l" ] && rmdir "$l"; done
    for l in "$LIO"/core/pscsi_*/; do [ -d "$l" ] && rmdir "$l"; done
    ! compgen -G "$LIO/iscsi/iqn.*" >/dev/null && ! compgen -G "$LIO/core/pscsi_*" >/dev/null
}

# scsi_debug_unload: remove the module (and its devices); bounded retries.
scsi_debug_unload() {
    local d
    lsmod | grep -q '^scsi_debug ' || return 0
    # Drivers that hold their device (ch does) pin the module: delete the
    # devices first.
    for d in $(devices_of scsi_debug); do
        echo 1 > "/sys/bus/scsi/devices/$d/delete" 2>/dev/null || true
    done
    for _ in $(seq 20); do
        lsmod | grep -q '^scsi_debug ' || return 0
        udevadm settle --timeout=10 || true
        rmmod scsi_debug 2>/dev/null && return 0
        sleep 0.5
    done
    return 1
}

# lio_cleanup: leave the guest as the next scenario in the same boot expects it:
# no daemon, no session or node record, no LIO objects, no scsi_debug, no config.
lio_cleanup() {
    stop_daemon || note "cleanup: daemon did not stop on SIGTERM (killed)"
    logout_all
    iscsiadm -m node -o delete >/dev/null 2>&1 || true
    lio_teardown 2>/dev/null || note "cleanup: LIO objects left: $(ls -d "$LIO"/iscsi/iqn.* "$LIO"/core/pscsi_* 2>/dev/null | tr '\n' ' ')"
    scsi_debug_unload || note "cleanup: scsi_debug still loaded: $(lsmod | grep '^scsi_debug')"
    rm -rf /etc/tapeshared /run/tapeshared
}

# single_config IQN SERIAL [GLOBAL-LINES]: a config exporting one tape over loopback.
single_config() {
    write_config "[global]
backend = lio
portal = 127.0.0.1
${3:-}

[export ${1##*:}]
iqn = $1
serial = $2
initiators = 127.0.0.0/8
initiator_iqns = $GUEST_IQN"
}

# export_and_login IQN: a tape, its export by a running daemon, a loopback login.
# Sets HCTL SERIAL (local) and RHCTL RNST RSG (the initiator's view).
export_and_login() {
    check "scsi_debug tape" add_tape
    check "LIO modules and configfs" lio_modules
    HCTL=$(local_tape)
    [ -n "$HCTL" ] || fail "no local scsi_debug tape"
    SERIAL=$(serial_of "$HCTL")
    [ -n "$SERIAL" ] || fail "tapeshared scan --json gives no serial for $HCTL"
    pass "local tape $HCTL, serial $SERIAL"
    single_config "$1" "$SERIAL"
    start_daemon
    wait_for 30 exported "$1" "$HCTL" || { daemon_log_tail; fail "export of $HCTL"; }
    pass "daemon exported $HCTL as $1"
    check "iscsiadm discovery + login over loopback" login "$1"
    wait_remote
}

# wait_remote: the tape on the iscsi_tcp host with its nst and sg nodes.
wait_remote() {
    wait_for 30 have_remote_tape || fail "no tape on an iscsi_tcp host after login"
    udevadm settle --timeout=30
    RHCTL=$(remote_tape)
    RNST=$(node_of "$RHCTL" scsi_tape) || true
    RSG=$(node_of "$RHCTL" scsi_generic) || true
    [ -n "$RNST" ] && [ -n "$RSG" ] || fail "remote tape $RHCTL has no nst/sg node"
    pass "initiator sees the tape at $RHCTL ($(proc_name_of "$RHCTL")): $RNST $RSG"
}

# inquiry_is_tape NODE: INQUIRY through the export names the scsi_debug tape.
inquiry_is_tape() {
    local inq
    inq=$(inquiry "$1")
    case $inq in
        "Linux|scsi_debug|tape"*) pass "INQUIRY via $1: $inq" ;;
        *) fail "INQUIRY via $1 is not the scsi_debug tape (ACL mapping lost?): $inq" ;;
    esac
}

# no_daemon_errors: no traceback or ERROR line in the daemon log.
no_daemon_errors() {
    if grep -q -e Traceback -e ' ERROR' "$TS_LOG"; then
        grep -e Traceback -e ' ERROR' -A3 "$TS_LOG" | head -n 30 | indent
        fail "daemon log has errors"
    fi
    pass "daemon log: no errors"
}

# configfs_dump: "path<TAB>value" for what the LIO backend reads and writes (our
# backstores' info/udev_path/alias/enable/wwn/attrib, every target's tpgt_1
# enable/param/attrib/acls/lun/np), paths relative to $LIO; a link's value is
# "-> pointee", an unreadable file's "!errno name". For comparing kernels.
configfs_dump() {
    python3 - "$LIO" <<'PYEOF'
import errno, os, sys

root = sys.argv[1]
SKIP = ("statistics", "fabric_statistics", "alua", "pr")

def show(rel):
    path = os.path.join(root, rel)
    if os.path.islink(path):
        return "-> " + os.path.relpath(os.path.realpath(path), root)
    try:
        with open(path, "rb") as handle:
            return repr(handle.read().decode("utf-8", "replace"))
    except OSError as exc:
        return "!" + errno.errorcode.get(exc.errno, str(exc.errno))

def walk(rel, depth):
    path = os.path.join(root, rel)
    for name in sorted(os.listdir(path)):
        sub = os.path.join(rel, name)
        full = os.path.join(root, sub)
        if os.path.isdir(full) and not os.path.islink(full):
            print("%s/\t" % sub)
            if name not in SKIP and depth > 0:
                walk(sub, depth - 1)
        else:
            print("%s\t%s" % (sub, show(sub)))

for hba in sorted(os.listdir(os.path.join(root, "core"))):
    if not hba.startswith("pscsi_"):
        continue
    print("core/%s/\t" % hba)
    walk("core/" + hba, 2)
for iqn in sorted(os.listdir(os.path.join(root, "iscsi"))):
    if iqn.startswith("iqn.") and os.path.isdir(os.path.join(root, "iscsi", iqn, "tpgt_1")):
        walk("iscsi/%s/tpgt_1" % iqn, 4)
PYEOF
}

# --- the kill matrix (scenarios/lio-kill.sh drives killmatrix.py with these) --

# sysfs_serial H:C:T:L: the unit serial from VPD page 0x80 in sysfs (what
# tapeshared's scan reads there), without a Python start.
sysfs_serial() {
    tail -c +5 "/sys/bus/scsi/devices/$1/vpd_pg80" 2>/dev/null | tr -d '\0' | sed 's/[[:space:]]*$//'
}

# lio_kill_renumber: the single local tape moves to a new address.
lio_kill_renumber() {
    renumber "$(local_tape)"
    wait_for 30 have_local_tape || { echo "tape not back after renumbering"; return 1; }
    udevadm settle --timeout=30
}

# lio_kill_exported_single: $IQN's LUN 0 is the local tape.
lio_kill_exported_single() { exported "$IQN" "$(local_tape)"; }

# library_drives: the library's drives, by target id (the moved one last).
library_drives() { devices_of scsi_debug 1 | sort -t: -k3n; }

# lio_kill_library: a changer and two drives (as lio-library.sh builds them,
# ptype back to 1 afterwards so a rescanned drive is a drive again), exported
# by serial as LUNs 0..2 of $IQN; the single-tape objects go first.
lio_kill_library() {
    local changer d1 d2
    lio_teardown
    scsi_debug_unload || { echo "scsi_debug cannot be removed"; return 1; }
    modprobe scsi_debug ptype=1 vpd_use_hostno=0 num_tgts=3
    udevadm settle --timeout=30
    echo 1 > "/sys/bus/scsi/devices/$(library_drives | sed -n 1p)/delete"
    echo 8 > "$SDEBUG/ptype"
    echo 1 > "$SDEBUG/num_tgts"
    echo 1 > "$SDEBUG/add_host"
    udevadm settle --timeout=30
    echo 1 > "$SDEBUG/ptype"
    changer=$(devices_of scsi_debug 8 | sed -n 1p)
    d1=$(library_drives | sed -n 1p)
    d2=$(library_drives | sed -n 2p)
    [ -n "$changer" ] && [ -n "$d2" ] || { lsscsi -g; echo "no changer and two drives"; return 1; }
    write_config "[global]
backend = lio
portal = 127.0.0.1

[export ${IQN##*:}]
iqn = $IQN
lun0 = serial:$(sysfs_serial "$changer")
lun1 = serial:$(sysfs_serial "$d1")
lun2 = serial:$(sysfs_serial "$d2")
initiators = 127.0.0.0/8
initiator_iqns = $GUEST_IQN"
    echo "changer $changer, drives $d1 $d2"
}

# lio_kill_exported_library: LUNs 0, 1, 2 map the changer and the two drives.
lio_kill_exported_library() {
    exported "$IQN" "$(devices_of scsi_debug 8 | sed -n 1p)" 0 &&
        exported "$IQN" "$(library_drives | sed -n 1p)" 1 &&
        exported "$IQN" "$(library_drives | sed -n 2p)" 2
}

# library_repoint: the second drive is deleted and rescanned at its address:
# a new kernel object there (its LUN must be re-pointed).
library_repoint() {
    local d h c t l
    d=$(library_drives | sed -n 2p)
    [ -n "$d" ] || { echo "no second drive"; return 1; }
    IFS=: read -r h c t l <<< "$d"
    echo 1 > "/sys/bus/scsi/devices/$d/delete"
    echo 3 > "$SDEBUG/num_tgts"  # scsi_debug bounds a scan by the current num_tgts
    echo "$c $t $l" > "/sys/class/scsi_host/host$h/scan"
    wait_for 30 test -e "/sys/bus/scsi/devices/$d/type" || { echo "drive $d not back"; return 1; }
    udevadm settle --timeout=30
}

# _rebound: the export SAME_IQN points at HCTL again, through a new backstore
_rebound() {
    exported "$SAME_IQN" "$HCTL" && [ "$(cat "$(backstore_for "$HCTL")/alias")" != "$SAME_OLD_ALIAS" ]
}

# same_address_watch IQN LABEL: the exported tape (HCTL, RSG set) is deleted and
# rescanned at the same address while a TUR + INQUIRY loop runs on the
# initiator's sg node: the holder LUN seen (NOT READY 04h/0Ch), no GOOD while
# it stands in, the 29h the last error, the holder gone after; counts printed.
same_address_watch() {
    local iqn=$1 go=/tmp/same-address.go out=/tmp/same-address.out watch h c t l
    rm -f "$go"
    lio_py tur-inq-watch "$RSG" "$go" > "$out" &
    watch=$!
    sleep 0.3
    SAME_OLD_ALIAS=$(cat "$(backstore_for "$HCTL")/alias")
    IFS=: read -r h c t l <<< "$HCTL"
    echo 1 > "/sys/bus/scsi/devices/$HCTL/delete"
    sleep 0.5
    echo "$c $t $l" > "/sys/class/scsi_host/host$h/scan"
    SAME_IQN=$iqn
    wait_for 30 _rebound || { daemon_log_tail; fail "$2 re-point at the same address"; }
    sleep 0.5
    touch "$go"
    wait "$watch" || true
    indent < "$out"
    grep -q "write core/rd_mcp_1000/tapeshared-holder/alua/default_tg_pt_gp/alua_access_state = 3" \
        "$TS_LOG" || { daemon_log_tail; fail "$2 the holder was not made unavailable"; }
    pass "$2 the daemon made the holder LUN unavailable (daemon log)"
    [ ! -e "$LIO/core/rd_mcp_1000" ] || fail "$2 the holder is left behind: $(ls "$LIO/core/rd_mcp_1000")"
    pass "$2 the holder is gone after the rebind"
    python3 - "$out" <<'PYEOF' || fail "$2 see the answers above"
import collections, sys
runs = [line.split() for line in open(sys.argv[1])]
turs = [r for r in runs if r[0].startswith("TUR:")]
# TUR runs: GOOD (old), not ready (device gone), 04/0c (holder), 29h, GOOD (new)
told = [i for i, r in enumerate(turs) if "6/29/" in r[0]]
if not told:
    sys.exit("no 29h reached the initiator")
last_bad = max(i for i, r in enumerate(turs) if r[0] != "TUR:GOOD")
if told[-1] != last_bad:
    sys.exit("the last error before GOOD is %s, not the reset" % turs[last_bad][0])
gone = min(i for i, r in enumerate(turs) if r[0] != "TUR:GOOD")
start, end = float(turs[gone][2]), float(turs[told[0]][2])
seen = collections.Counter()
for r in runs:
    if start <= float(r[2]) and float(r[3]) < end:
        seen[r[0]] += int(r[1])
print("WINDOW: %.1f ms from the first failed TUR to the first 29h" % (end - start))
for answer, count in sorted(seen.items()):
    print("WINDOW: %5d x %s" % (count, answer))
good = seen["TUR:GOOD"]
holder = seen["TUR:status_0x2_sense_2/04/0c"]
print("HOLDER: %d TUR answered NOT READY 04h/0Ch by the holder, %d GOOD" % (holder, good))
if not holder:
    sys.exit("the holder answered no TUR: its window was not seen")
# From the holder's first answer to its last, every command meets the holder:
# no GOOD there. A mapping swap (unlink, link) still passes through "no
# mapping" (the unlink waits for the LUN's commands in flight, ms under a
# loaded TCG host), twice per ACL: a command landing there meets LIO's LUN 0
# placeholder (README, "Not yet done"). Those GOODs sit at the holder's edges
# and are counted, not allowed inside.
held = [i for i, r in enumerate(runs)
        if r[0] in ("TUR:status_0x2_sense_2/04/0c", "INQ:INQ-0-RAMDISK-MCP-tpgs3")]
inside = [r for r in runs[held[0]:held[-1] + 1] if r[0] == "TUR:GOOD"]
if inside:
    sys.exit("GOOD while the holder stood in: %s" % inside)
edges = [r for r in turs[gone:told[0]] if r[0] == "TUR:GOOD"]
if edges:
    print("NOTE: %d TUR met LIO's LUN 0 placeholder at the holder's edges (a swap's "
          "unlink and link); %d placeholder INQUIRY" % (
              sum(int(r[1]) for r in edges), seen["INQ:INQ-31-RAMDISK-MCP-tpgs0"]))
PYEOF
}
