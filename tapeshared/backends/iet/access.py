"""IET initiators.allow / initiators.deny: our lines first, the rest kept as is."""

import ipaddress
import re
from typing import List, Optional

from tapeshared.backends.iet.conf import BEGIN, END, outside, split
from tapeshared.core.errors import ManagedFileError
from tapeshared.core.model import DesiredState

_SECRET_LINE = re.compile(r"\A(\s*(?:incominguser|outgoinguser)\s+\S+\s+)\S+(.*)\Z",
                          re.IGNORECASE)


def iet_address(network: str) -> str:
    """One allowed network in IET's notation (/32 never matches there: bare host)."""
    if network == "ALL":
        return "ALL"
    net = ipaddress.ip_network(network)
    host = net.prefixlen == net.max_prefixlen
    if net.version == 4:
        return str(net.network_address) if host else str(net)
    return ("[%s]" % net.network_address if host
            else "[%s]/%d" % (net.network_address, net.prefixlen))


def allow_lines(state: DesiredState) -> List[str]:
    """`<iqn> addr, addr` for each managed target."""
    return ["%s %s" % (t.iqn, ", ".join(iet_address(n) for n in t.initiators))
            for t in sorted(state.targets, key=lambda t: t.iqn)]


def deny_lines(state: DesiredState) -> List[str]:
    """`<iqn> ALL`, so only the allow list reaches each managed target."""
    return ["%s ALL" % t.iqn for t in sorted(state.targets, key=lambda t: t.iqn)]


def merge(text: Optional[str], lines: List[str], path: str) -> str:
    """Put our block first (IET reads only the first line per target).

    Every byte outside the block is kept, a last line without a line break too
    (IET ignores it today; adding one would change what the admin's line does).
    With no line of ours the block goes and the file is as it was.
    """
    before, _block, after = split(text or "", path)
    managed = set(line.split()[0] for line in lines)
    rest = outside(before, after)
    for number, line in enumerate(rest.split("\n"), 1):
        words = line.split()
        if words and not words[0].startswith("#") and words[0].lower() in managed:
            raise ManagedFileError(
                "%s: line %d names %s, which tapeshared manages; remove that line, "
                "nothing was written" % (path, number, words[0]))
    if not lines:
        return rest
    return "\n".join([BEGIN] + lines + [END]) + "\n" + rest


def mask_secrets(text: str) -> str:
    """ietd.conf text with CHAP secrets replaced, for diffs a person reads."""
    return "".join(_SECRET_LINE.sub(r"\1********\2", line.rstrip("\n")) +
                   ("\n" if line.endswith("\n") else "")
                   for line in text.splitlines(True))
