"""tgt operations (pure): the tgtadm argument lists the planner emits, read and shown."""

import re
from typing import List, Optional, Tuple

from tapeshared.core.model import Hctl, TargetState

Op = Tuple[str, ...]  # tgtadm arguments after `--lld iscsi`, or a RESET op
RESET = "reset"  # (RESET, --targetname, IQN, --lun, N, --hctl, H:C:T:L, --backing-store, P)


def is_address(entry: str) -> bool:
    """Whether an ACL entry is an address rule (else an initiator name rule)."""
    if entry == "ALL":
        return True
    return re.match(r"\A\[?[0-9A-Fa-f.:]+\]?(/[0-9]{1,3})?\Z", entry) is not None \
        and any(c in entry for c in ".:")


def acl_entries(target: TargetState) -> List[str]:
    """The ACL entries a target must have: addresses (a host without /32), names."""
    found = []
    for net in target.initiators:
        if net.endswith("/32") and ":" not in net or net.endswith("/128"):
            net = net.rsplit("/", 1)[0]
        found.append(net)
    return found + list(target.initiator_iqns)


def reset_op(iqn: str, lun: int, hctl: Hctl, path: str) -> Op:
    """The reset of the device at hctl (named by path) before it becomes LUN lun."""
    return (RESET, "--targetname", iqn, "--lun", str(lun), "--hctl", str(hctl),
            "--backing-store", path)


def op_value(op: Op, flag: str) -> str:
    """The argument after flag in op ("" when op has no such flag)."""
    return op[op.index(flag) + 1] if flag in op else ""


def needs_secret(op: Op) -> Optional[str]:
    """The user whose password must be added to this op (account creation), or None."""
    if op[:4] == ("--mode", "account", "--op", "new"):
        return op[op.index("--user") + 1]
    return None


def describe(op: Op, prefix: Tuple[str, ...] = ("tgtadm",)) -> str:
    """An operation as the command line a person reads; the password masked."""
    if op[0] == RESET:
        return "reset the logical unit %s (%s, no escalation) before exporting it as " \
            "LUN %s of %s" % (op_value(op, "--hctl"), op_value(op, "--backing-store"),
                              op_value(op, "--lun"), op_value(op, "--targetname"))
    extra = ("--password", "********") if needs_secret(op) else ()
    return " ".join(prefix + ("--lld", "iscsi") + op + extra)
