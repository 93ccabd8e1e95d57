"""targetcli's saveconfig.json, parsed (pure) for the import: pscsi backstores,
iSCSI targets, their LUNs, ACLs and CHAP."""

import json
from typing import Any, Dict, List

from tapeshared.core.model import Hctl
from tapeshared.core.names import iqn_problem
from tapeshared.migrate.model import OldLun, OldSetup, OldTarget, error, shown

MAX_FILE = 1 << 22


def _load(text: str, path: str) -> Dict[str, Any]:
    if len(text) > MAX_FILE:
        raise error(path, None, "larger than %d bytes: not a saveconfig.json" % MAX_FILE)
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise error(path, getattr(exc, "lineno", None), "not JSON: %s" % getattr(
            exc, "msg", exc))
    if not isinstance(doc, dict):
        raise error(path, 1, "expected a JSON object (targetcli's saveconfig.json)")
    return doc


def _list(node: Any, key: str, path: str, where: str) -> List[Dict[str, Any]]:
    value = node.get(key, []) if isinstance(node, dict) else []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise error(path, None, "%s.%s: expected a list of objects" % (where, key))
    return value


def _string(node: Dict[str, Any], key: str) -> str:
    value = node.get(key)
    return value if isinstance(value, str) else ""


def _backstores(doc: Dict[str, Any], path: str, setup: OldSetup) -> Dict[str, OldLun]:
    """'/backstores/PLUGIN/NAME' -> where its device is (LUN number filled later)."""
    found = {}
    for index, obj in enumerate(_list(doc, "storage_objects", path, "")):
        plugin, name = _string(obj, "plugin"), _string(obj, "name")
        where = "%s: storage_objects[%d] (%s %s)" % (path, index, plugin, shown(name))
        key = "/backstores/%s/%s" % (plugin, name)
        dev = _string(obj, "dev") or _string(obj, "udev_path")
        if plugin != "pscsi":
            found[key] = OldLun(-1, where, path=dev or None, passthrough=False,
                                what="a %s backstore" % (plugin or "unknown"))
            continue
        try:
            found[key] = OldLun(-1, where, hctl=Hctl.parse(dev))
        except ValueError:
            if not dev.startswith("/dev/"):
                raise error(path, None, "%s: dev %s is neither H:C:T:L nor a /dev path"
                            % (where, shown(dev)))
            found[key] = OldLun(-1, where, path=dev)
    return found


def _acls(target: OldTarget, tpg: Dict[str, Any], path: str, where: str,
          setup: OldSetup) -> None:
    for acl in _list(tpg, "node_acls", path, where):
        name = _string(acl, "node_wwn").lower()
        if iqn_problem(name):
            setup.notes.append("%s: ACL %s is not an IQN: not carried over" % (
                where, shown(name)))
            continue
        target.initiator_iqns.append(name)
        user, secret = _string(acl, "chap_userid"), _string(acl, "chap_password")
        if user and secret and (user, secret) not in target.incoming:
            target.incoming.append((user, secret))
        user, secret = _string(acl, "chap_mutual_userid"), _string(acl, "chap_mutual_password")
        if user and secret:
            if target.outgoing not in (None, (user, secret)):
                setup.notes.append("%s: ACL %s has its own mutual CHAP user; tapeshared "
                                   "has one per export: not carried over" % (where, name))
            else:
                target.outgoing = (user, secret)


def parse(text: str, path: str) -> OldSetup:
    """Targets of the iscsi fabric with their pscsi LUNs, ACLs and CHAP."""
    doc = _load(text, path)
    setup = OldSetup("targetcli")
    stores = _backstores(doc, path, setup)
    for index, node in enumerate(_list(doc, "targets", path, "")):
        iqn = _string(node, "wwn").lower()
        where = "%s: targets[%d] (%s)" % (path, index, shown(iqn))
        if _string(node, "fabric") != "iscsi":
            setup.notes.append("%s: fabric %s is not iSCSI: left alone" % (
                where, shown(_string(node, "fabric"))))
            continue
        if iqn_problem(iqn):
            raise error(path, None, "%s: %s" % (where, iqn_problem(iqn)))
        target = OldTarget(iqn, where)
        tpgs = _list(node, "tpgs", path, where)
        if len(tpgs) > 1:
            setup.notes.append("%s: %d TPGs; only the first is carried over" % (
                where, len(tpgs)))
        for tpg in tpgs[:1]:
            for lun in _list(tpg, "luns", path, where):
                number = lun.get("index")
                store = stores.get(_string(lun, "storage_object"))
                if not isinstance(number, int) or store is None:
                    setup.notes.append("%s: LUN %s names no known backstore: not "
                                       "carried over" % (where, shown(str(number))))
                    continue
                target.luns.append(OldLun(number, store.where, store.hctl, store.path,
                                          store.passthrough, store.what))
            _acls(target, tpg, path, where, setup)
        target.removal.append("targetcli /iscsi delete %s" % iqn)
        for old in target.luns:
            if old.passthrough:
                name = old.where.split(" ")[-1].rstrip(")")
                target.removal.append("targetcli /backstores/pscsi delete %s" % name.strip("'"))
        setup.targets.append(target)
    if setup.targets:
        setup.advice.append("LIO has no initiator address filter: the import allows ALL "
                           "addresses; narrow `initiators =` (tapeshared's firewall)")
    return setup
