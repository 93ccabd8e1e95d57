"""The holder LUN (pure): a not-ready stand-in mapped while a dead backstore is replaced.

A tape back at the same H:C:T:L must lose its dead backstore before pscsi can
bind the new device (the deleted device, pinned by the old backstore, comes
first on the host's list). An ACL mapping cannot be re-pointed in place, and a
mapped LUN without a link is answered by LIO's virtual LUN 0, which acknowledges
TEST UNIT READY. So each such mapping is swapped to a holder first: a one-page
rd_mcp backstore of ours (`tapeshared-holder` in HBA rd_mcp_1000) whose default
ALUA target port group is Unavailable, so that every command but INQUIRY,
REPORT LUNS, REQUEST SENSE and READ/WRITE BUFFER gets NOT READY (04h/0Ch), and
swapped from it to the new backstore once that is bound. The holder exists only
for that pass: an idle host shows nothing of it, and any pass that finds it
(also after a kill) removes it once no target LUN links it.
"""

from typing import List

from tapeshared.backends.lio.state import HBA_BASE, PREFIX, Op

HBA = "rd_mcp_%d" % HBA_BASE
NAME = PREFIX + "holder"
PATH = "core/%s/%s" % (HBA, NAME)
ALUA_STATE = PATH + "/alua/default_tg_pt_gp/alua_access_state"
UNAVAILABLE = "3"  # ALUA_ACCESS_STATE_UNAVAILABLE
# how far it is built, as observed: each level is one more step done
LEVELS = ("", "hba", "store", "enabled", "ready")


def up(level: str) -> List[Op]:
    """The steps that bring the holder from `level` to ready (unavailable, no LUN yet:
    the state is set while no initiator can reach it, so no 2Ah unit attention)."""
    steps = [("mkdir", "core/" + HBA), ("mkdir", PATH),
             ("write", PATH + "/control", "rd_pages=1"),
             ("write", PATH + "/enable", "1"),
             ("write", ALUA_STATE, UNAVAILABLE)]  # type: List[Op]
    done = {"": 0, "hba": 1, "store": 2, "enabled": 4, "ready": 5}[level]
    return steps[done:]


def down(level: str, shared_hba: bool) -> List[Op]:
    """The steps that remove the holder (no target LUN may link it any more); its
    HBA stays when something not ours is in it."""
    steps = []  # type: List[Op]
    if level not in ("", "hba"):
        steps.append(("rmdir", PATH))
    if level and not shared_hba:
        steps.append(("rmdir", "core/" + HBA))
    return steps
