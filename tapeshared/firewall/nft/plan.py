"""nftables rules (pure): our inet table rendered as `nft list` prints it, and parsed."""

import ipaddress
import re
from typing import List

from tapeshared.firewall.spec import (
    COMMENT,
    FAMILIES,
    FirewallSpec,
    family_portals,
    family_sources,
)

NFT_CHAIN = "input"
NFT_PRIORITY = -1  # before the usual filter chains (priority 0)
_PRIORITY_NAMES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0,
                   "security": 50, "srcnat": 100}


def nft_table_name(spec: FirewallSpec) -> str:
    """Our nft table (family inet) is named after our chain, in lower case."""
    return spec.chain.lower()


def nft_header() -> str:
    """Our base chain's declaration line, normalized as nft_lines returns it."""
    return "type filter hook input priority %d; policy accept;" % NFT_PRIORITY


def nft_rules(spec: FirewallSpec) -> List[str]:
    """Our nft rules in the canonical form `nft list` prints (nft 0.9-1.0)."""
    rules = []
    tail = 'tcp dport %d' % spec.port
    for family in FAMILIES:
        key = "ip" if family == 4 else "ip6"
        portals = family_portals(spec, family)
        for src in family_sources(spec, family):
            for dst in portals:
                dest = " %s daddr %s" % (key, dst) if dst else ""
                rules.append('%s saddr %s%s %s accept comment "%s"' % (
                    key, _nft_addr(src), dest, tail, COMMENT))
        if spec.reject_others:
            # `ip version 4` keeps the family visible in listings; a bare
            # `meta nfproto` before `reject` is elided when nft prints the rule.
            # any destination: see the policy in spec.py
            rules.append('%s version %d %s reject with tcp reset comment "%s"' % (
                key, family, tail, COMMENT))
    return rules


def _nft_addr(cidr: str) -> str:
    net = ipaddress.ip_network(cidr)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def nft_script(spec: FirewallSpec) -> str:
    """One `nft -f` transaction replacing our table (created first so delete works)."""
    table = nft_table_name(spec)
    body = ["\t\t" + nft_header()] + ["\t\t" + r for r in nft_rules(spec)]
    return "\n".join(["table inet %s {}" % table, "delete table inet %s" % table,
                      "table inet %s {" % table, "\tchain %s {" % NFT_CHAIN]
                     + body + ["\t}", "}", ""])


def nft_remove_script(spec: FirewallSpec) -> str:
    """One `nft -f` transaction deleting our table whether or not it exists."""
    table = nft_table_name(spec)
    return "table inet %s {}\ndelete table inet %s\n" % (table, table)


def _normalize_header(line: str) -> str:
    # nft 1.0 prints `priority filter - 1` where 0.9 printed `priority -1`.
    match = re.search(r"priority ([a-z]+)(?: ([+-]) (\d+))?", line)
    if match and match.group(1) in _PRIORITY_NAMES:
        delta = int(match.group(3) or 0) * (-1 if match.group(2) == "-" else 1)
        value = _PRIORITY_NAMES[match.group(1)] + delta
        line = line[:match.start()] + "priority %d" % value + line[match.end():]
    return " ".join(line.split())


def nft_lines(text: str) -> List[str]:
    """Flatten `nft list table` output into `chain NAME: line` strings, in order."""
    lines, block = [], None
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line or line.startswith("table "):
            continue
        if line == "}":
            block = None
        elif line.endswith("{"):
            block = line[:-1].strip()
        elif line.startswith("type ") and block:
            lines.append("%s: %s" % (block, _normalize_header(line)))
        else:
            lines.append("%s: %s" % (block or "table", line))
    return lines


def nft_desired_lines(spec: FirewallSpec) -> List[str]:
    """What nft_lines must return for our table when nothing drifted."""
    block = "chain %s" % NFT_CHAIN
    return ["%s: %s" % (block, line) for line in [nft_header()] + nft_rules(spec)]
