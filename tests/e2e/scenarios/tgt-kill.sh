#!/bin/bash
# tgt: `tapeshared apply` killed (SIGKILL, the daemon's own step hook) right
# before each of its steps, for a first export and a renumbering. After each
# kill an initiator tries to log in (it must be refused until the plan's first
# ACL bind, which comes after the LUN: then it must see the drive); then one
# apply (the first pass)
# and one more (the resync) must leave exactly the objects an apply that was
# never killed leaves (`tgtadm --op show --mode target`).
set -eu
# shellcheck disable=SC1091
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/../tgt-lib.sh"
trap tgt_cleanup EXIT
STEPS=/tmp/tapeshared-e2e/steps.log
t_start=$(now_ms)

tape_add
t0=$(now_ms)
hctl=$(tapes_on scsi_debug 1 | head -n1)
serial=$(serial_of "$hctl")
[ -n "$serial" ] || fail "no serial for local tape $hctl"
tgt_start
write_tape_conf "$serial"
note "setup (scan, tgtd) $(( $(now_ms) - t0 )) ms"

# apply_at K: one `tapeshared apply` killed right before step K (K=0: no kill);
# its steps go to $STEPS.
apply_at() {
    rm -f "$STEPS"
    if [ "$1" = 0 ]; then
        TAPESHARED_STEP_LOG=$STEPS ts -c "$TS_CONF" apply >/dev/null 2>&1
    else
        TAPESHARED_STEP_LOG=$STEPS TAPESHARED_KILL_AT_STEP=$1 ts -c "$TS_CONF" apply \
            >/dev/null 2>&1 && return 1
        tail -n1 "$STEPS" | grep -q "KILL$"
    fi
}

# login_refused: a login to $TGT_IQN (its node record made by hand: tgt's
# discovery lists no target the initiator may not reach) does not get in.
login_refused() {
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

# objects_now: our target's objects, one a line (sessions left out).
objects_now() {
    tgtadm --lld iscsi --mode target --op show | awk '
        /^Target [0-9]+: / { print "target", $2, $3; sect = ""; next }
        /^ *[A-Za-z_ ]+ information:$/ { sect = $1; next }
        sect == "LUN" && $1 == "LUN:" { lun = $2 }
        sect == "LUN" && /SCSI ID:/ { sub(/^ *SCSI ID: */, ""); id[lun] = $0 }
        sect == "LUN" && /Backing store path:/ { print "lun", lun, id[lun], $4 }
        sect == "Account" && NF { print "account", $1, $2 }
        sect == "ACL" && NF { print "acl", $1 }'
}

# expected SG: what an apply that was never killed leaves for LUN 1 on SG.
expected() { printf '%s\n' "$EXPECTED" | sed "s#@SG@#$1#"; }

# converged K WHAT SG: the first pass and a resync leave exactly the expected set.
converged() {
    local got
    apply_at 0 || { tail -n 20 "$TS_LOG" 2>/dev/null | indent; fail "$2: pass after a kill at step $1"; }
    got=$(objects_now)
    [ "$got" = "$(expected "$3")" ] || { diff <(expected "$3") <(echo "$got") | indent; fail "$2: after a kill at step $1 and one pass"; }
    apply_at 0 || fail "$2: resync after a kill at step $1"
    [ "$(cat "$STEPS" 2>/dev/null)" = "" ] || { indent < "$STEPS"; fail "$2: the resync after a kill at step $1 changed tgtd"; }
    [ "$(objects_now)" = "$(expected "$3")" ] || fail "$2: after the resync (kill at step $1)"
}

# --- a first export, killed at every step ------------------------------------
apply_at 0 || fail "a clean first export"
sg=$(node_of "$hctl" scsi_generic)
EXPECTED=$(objects_now | sed "s#$sg\$#@SG@#")
n_first=$(wc -l < "$STEPS")
first_bind=$(grep -n -- "--op bind --tid [0-9]* --initiator" "$STEPS" | head -n1 | cut -d: -f1)
printf '%s\n' "$EXPECTED" | indent
pass "clean first export: $n_first steps: $(cut -f2 "$STEPS" | sed 's/ --lld iscsi//; s/ --tid [0-9]*//' | paste -sd';' -)"
reset_first() {
    tgtadm --lld iscsi --mode target --op delete --force --tid 1000
    rm -rf /run/tapeshared-e2e
}
# CI kills around the first ACL bind (the step that opens the target) and at
# the end; TGT_KILL_ALL=1 kills before every step (about 35 s each in TCG).
if [ "${TGT_KILL_ALL:-0}" = 1 ]; then
    ks=$(seq 1 "$n_first")
else
    ks=$(printf '%s\n' "$first_bind" "$((first_bind + 1))" "$n_first" | awk -v n="$n_first" '$1 >= 1 && $1 <= n' | sort -un)
fi
for k in $ks; do
    t0=$(now_ms)
    reset_first
    apply_at "$k" || fail "first export: the apply was not killed at step $k"
    label=$(tail -n1 "$STEPS" | cut -f2)
    t1=$(now_ms)
    if [ "$k" -le "$first_bind" ]; then
        login_refused || fail "first export killed before step $k ($label): a login got in"
    else  # an ACL entry lets this initiator in: the LUN is there already
        login "$TGT_IQN" || fail "first export killed before step $k ($label): no login"
        logout_all
    fi
    t2=$(now_ms)
    converged "$k" "first export" "$sg"
    note "first export, kill at $k: killed apply $((t1 - t0)) ms, login refused $((t2 - t1)) ms, pass and resync $(( $(now_ms) - t2 )) ms"
done
pass "first export killed before steps $(echo $ks) of its $n_first: no login got in before step $first_bind (the first ACL bind); one pass and a resync left exactly the expected objects"

# --- a renumbering, killed at every step --------------------------------------
# renumber: the tape leaves and returns on a new host; sets OLD, NEW, SG.
renumber_tape() {
    OLD=$(tapes_on scsi_debug 1 | head -n1)
    tape_leave "$OLD" || fail "renumbering: $OLD did not leave"
    NEW=$(tape_return) || fail "renumbering: the tape did not come back"
    SG=$(node_of "$NEW" scsi_generic)
}
renumber_tape
apply_at 0 || fail "a clean renumbering"
n_renum=$(wc -l < "$STEPS")
[ "$(objects_now)" = "$(expected "$SG")" ] || fail "clean renumbering: objects differ"
pass "clean renumbering ($OLD -> $NEW): $n_renum steps: $(cut -f2 "$STEPS" | sed 's/ --lld iscsi//; s/ --tid [0-9]*//' | paste -sd';' -)"
if [ "${TGT_KILL_ALL:-0}" = 1 ]; then ks=$(seq 1 "$n_renum"); else ks="$((n_renum / 2)) $n_renum"; fi
for k in $ks; do
    renumber_tape
    apply_at "$k" || fail "renumbering: the apply was not killed at step $k"
    converged "$k" "renumbering ($OLD -> $NEW)" "$SG"
done
pass "renumbering killed before steps $(echo $ks) of its $n_renum: one pass and a resync left exactly the expected objects"
echo "RESULT tgt kill: $n_first + $n_renum steps, killed at the chosen points in $(( ($(now_ms) - t_start) / 1000 )) s"
