"""tgt's targets.conf and `tgtadm --op show`, parsed (pure) for the import."""

import re
from typing import List, Optional

from tapeshared.backends.tgt.show import parse_show
from tapeshared.core.names import iqn_problem
from tapeshared.migrate.model import OldLun, OldSetup, OldTarget, error, masked, shown

_OPEN = re.compile(r"\A<\s*(target|backing-store|direct-store)\s+(\S+?)\s*>\Z", re.I)
_CLOSE = re.compile(r"\A<\s*/\s*(target|backing-store|direct-store)\s*>\Z", re.I)
_PRINTABLE = re.compile(r"\A[\x20-\x7e\t]*\Z")
_IGNORED = ("vendor_id", "product_id", "product_rev", "scsi_sn", "scsi_id", "write-cache",
            "allow-in-use", "controller_tid", "lld", "mode_page", "readonly")


class _Store:
    def __init__(self, path: str, where: str, kind: str) -> None:
        self.path, self.where, self.kind = path, where, kind
        self.lun: Optional[int] = None
        self.bstype = ""


def _finish(target: OldTarget, stores: List[_Store], bstype: str) -> None:
    used = set(s.lun for s in stores if s.lun is not None)
    following = 1
    for store in stores:
        if store.lun is None:  # tgt-admin numbers the rest from 1, in file order
            while following in used:
                following += 1
            store.lun = following
            used.add(following)
        kind = store.bstype or bstype or ("sg" if store.kind == "direct-store" else "rdwr")
        target.luns.append(OldLun(store.lun, store.where, path=store.path,
                                  passthrough=kind == "sg",
                                  what="bs-type %s" % kind))


def parse_conf(text: str, path: str) -> OldSetup:
    """<target> blocks: backing/direct stores, lun, bs-type, initiator lists, CHAP."""
    setup = OldSetup("tgt")
    target: Optional[OldTarget] = None
    stores: List[_Store] = []
    store: Optional[_Store] = None
    bstype = ""
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        where = "%s:%d" % (path, number)
        if not _PRINTABLE.match(line):
            raise error(path, number, "a control or non-ASCII character")
        if not line or line.startswith("#"):
            continue
        opened, closed = _OPEN.match(line), _CLOSE.match(line)
        words = line.split()
        if opened and opened.group(1).lower() == "target":
            if target is not None:
                raise error(path, number, "<target> inside <target %s>" % target.iqn)
            iqn = opened.group(2).lower()
            if iqn_problem(iqn):
                raise error(path, number, "target %s: %s" % (shown(iqn), iqn_problem(iqn)))
            target, stores, bstype = OldTarget(iqn, where), [], ""
        elif line.startswith("<") and not (opened or closed):
            raise error(path, number, "%s is not a tgt block tag" % shown(line))
        elif target is None:
            if words[0].lower() in ("default-driver", "ignore-errors", "include"):
                if words[0].lower() == "include":
                    setup.notes.append("%s: %s: import that file too" % (where, shown(line)))
                continue
            if closed or opened:
                raise error(path, number, "%s outside a <target> block" % shown(line))
            setup.notes.append("%s: %s (outside a target) is not carried over" % (
                where, shown(line)))
            continue
        elif opened:
            store = _Store(opened.group(2), where, opened.group(1).lower())
            stores.append(store)
        elif closed and closed.group(1).lower() == "target":
            if store is not None:
                raise error(path, number, "</target> before </%s>" % store.kind)
            target.removal.append("%s: %s" % (where, masked(line)))
            _finish(target, stores, bstype)
            setup.targets.append(target)
            target = None
            continue
        elif closed:
            store = None
        elif words[0].lower() in ("backing-store", "direct-store") and len(words) == 2:
            stores.append(_Store(words[1], where, words[0].lower()))
        elif words[0].lower() == "lun" and len(words) == 2 and words[1].isdigit():
            (store or (stores[-1] if stores else _Store("", where, ""))).lun = int(words[1])
        elif words[0].lower() == "bs-type" and len(words) == 2:
            if store is not None:
                store.bstype = words[1].lower()
            else:
                bstype = words[1].lower()
        elif words[0].lower() == "initiator-address":
            target.initiators += [w for w in re.split(r"[\s,]+", line.split(None, 1)[1]) if w]
        elif words[0].lower() == "initiator-name":
            target.initiator_iqns += [w.lower() for w in words[1:]]
        elif words[0].lower() in ("incominguser", "outgoinguser") and len(words) == 3:
            if words[0].lower() == "incominguser":
                target.incoming.append((words[1], words[2]))
            else:
                target.outgoing = (words[1], words[2])
        elif words[0].lower() not in ("device-type",) + _IGNORED:
            setup.notes.append("%s: %s is not carried over" % (where, shown(line)))
        target.removal.append("%s: %s" % (where, masked(line)))
    if target is not None:
        raise error(path, None, "<target %s> is never closed" % target.iqn)
    return setup


def parse_tgtadm_show(text: str, path: str) -> OldSetup:
    """`tgtadm --lld iscsi --mode target --op show`: the running targets."""
    setup = OldSetup("tgt")
    for tid, shown_target in sorted(parse_show(text).items()):
        where = "%s: Target %d" % (path, tid)
        iqn = shown_target.iqn.lower()
        if iqn_problem(iqn):
            raise error(path, None, "%s: %s" % (where, iqn_problem(iqn)))
        target = OldTarget(iqn, where)
        for number, lun in sorted(shown_target.luns.items()):
            if number == 0 and lun.kind == "controller":
                continue
            target.luns.append(OldLun(number, "%s LUN %d" % (where, number),
                                      path=lun.path or None,
                                      passthrough=lun.bstype == "sg",
                                      what="backing store type %s" % (lun.bstype or "none")))
        for item in shown_target.acl:
            (target.initiator_iqns if item.lower().startswith(("iqn.", "eui.", "naa."))
             else target.initiators).append(item)
        if shown_target.incoming or shown_target.outgoing:
            setup.notes.append("%s: CHAP accounts %s: tgtadm does not show secrets; "
                               "add incoming_user/outgoing_user with secret files by hand"
                               % (where, ", ".join(shown_target.incoming
                                                   + shown_target.outgoing)))
        target.removal.append("tgtadm --lld iscsi --mode target --op delete --tid %d" % tid)
        setup.targets.append(target)
    return setup
