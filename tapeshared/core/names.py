"""Names and addresses: one validation function per fact, shared by config and adapters."""

import ipaddress
import re
from typing import NamedTuple, Optional, Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

# RFC 3720 3.2.6.1 (iqn.) and 3.2.6.3.2 (eui.), RFC 3980 (naa., 16 or 32 hex
# digits); RFC 3721 says lower case is canonical, and iSCSI names are at most
# 223 bytes. The naming authority is a reversed DNS name: labels of letters,
# digits and inner hyphens, joined by single dots.
IQN_MAX = 223
_LABEL = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_IQN_BODY = r"iqn\.[0-9]{4}-(0[1-9]|1[0-2])\.%s(\.%s)*(:[a-z0-9.:-]+)?" % (_LABEL, _LABEL)
_IQN = re.compile(r"\A(%s|eui\.[0-9a-f]{16}|naa\.([0-9a-f]{16}|[0-9a-f]{32}))\Z" % _IQN_BODY)
_IQN_PREFIX = re.compile(r"\A%s\Z" % _IQN_BODY)
# iptables chains: 28 characters at most (XT_EXTENSION_MAXNAMELEN - 1), not
# starting with '-' (iptables would read an option), never a built-in chain
# or a target's name (iptables -N refuses both). Ours also names the nft
# table, which must be an identifier and not one of nft's keywords.
_CHAIN = re.compile(r"\A[A-Za-z0-9_.:+][A-Za-z0-9_.:+-]{0,27}\Z")
_NFT_TABLE = re.compile(r"\A[a-z_][a-z0-9_]*\Z")
_BUILTIN_CHAINS = frozenset(("INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"))
_TARGETS = frozenset((
    "ACCEPT", "DROP", "QUEUE", "RETURN", "AUDIT", "CHECKSUM", "CLASSIFY", "CLUSTERIP",
    "CONNMARK", "CONNSECMARK", "CT", "DNAT", "DNPT", "DSCP", "ECN", "HL", "HMARK",
    "IDLETIMER", "LED", "LOG", "MARK", "MASQUERADE", "NETMAP", "NFLOG", "NFQUEUE",
    "NOTRACK", "RATEEST", "REDIRECT", "REJECT", "SECMARK", "SET", "SNAT", "SNPT",
    "SYNPROXY", "TCPMSS", "TCPOPTSTRIP", "TEE", "TOS", "TPROXY", "TRACE", "TTL",
    "ULOG"))
# nft's scanner keywords outside any start condition (src/scanner.l): as a
# bare table name each is a syntax error in `nft -f` (the last few only on
# newer nft releases).
_NFT_KEYWORDS = frozenset("""
    eq ne le lt ge gt lshift rshift xor and or not vmap include define redefine
    undefine describe hook device devices table chain rule set element map flowtable
    handle ruleset socket tproxy accept drop continue jump goto return inet netdev add
    replace update create insert delete get list reset flush rename import export
    monitor destroy position index comment constant interval dynamic timeout elements
    expires policy size flow offload meter counter last log queue limit quota hour day
    reject snat dnat masquerade redirect random th bridge ether type typeof vlan arp
    ip ecn time icmp icmpv6 igmp ip6 priority ah esp comp flags udp udplite vxlan vni
    geneve gre gretap tcp dccp sctp rt rt0 rt2 srh hbh frag dst mh meta mark iif
    iifname iiftype oif oifname oiftype skuid skgid nftrace rtclassid ibriport ibrname
    obriport obrname pkttype cpu iifgroup oifgroup cgroup ct numgen jhash symhash dup
    fwd fib osf synproxy tunnel notrack all exists missing exthdr ipsec secmark xt
    """.split())
_IFNAMSIZ = 16
_IFNAME = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_.-]+)?\Z")
_ADDRESS_AND_PORT = re.compile(r"\A(\[(?P<v6>[^]]*)\]|(?P<v4>[0-9.]+)):[0-9]*\Z")


def iqn_problem(name: str, prefix: bool = False) -> Optional[str]:
    """Why name is not a canonical (lower case) iSCSI name, or None if it is one."""
    if len(name.encode("utf-8")) > IQN_MAX:
        return "not a valid iSCSI name: too long (%d bytes, at most %d)" % (
            len(name.encode("utf-8")), IQN_MAX)
    if name != name.lower():
        return "not a valid iSCSI name: not in lower case (RFC 3721 canonical form)"
    pattern = _IQN_PREFIX if prefix else _IQN
    if not pattern.match(name):
        if prefix:
            return ("not a valid iSCSI name prefix: expected iqn.YYYY-MM.reversed.domain"
                    "[:unique]")
        return ("not a valid iSCSI name: expected iqn.YYYY-MM.reversed.domain[:unique], "
                "eui. and 16 hex digits, or naa. and 16 or 32 hex digits")
    return None


def _iptables_chain_problem(name: str) -> Optional[str]:
    if not _CHAIN.match(name):
        return "not a valid chain name (1-28 letters, digits, _ . : + -, not " \
               "starting with -)"
    if name in _TARGETS:
        return "is the name of an iptables target"
    return None


def chain_problem(name: str) -> Optional[str]:
    """Why name cannot be our firewall chain (iptables) and nft table, or None."""
    problem = _iptables_chain_problem(name)
    if problem:
        return problem
    if name in _BUILTIN_CHAINS:
        return "is a built-in chain; ours must be a chain of its own"
    if not _NFT_TABLE.match(name.lower()):
        return "does not give a valid nft table name (a letter or _, then letters, " \
               "digits, _)"
    if name.lower() in _NFT_KEYWORDS:
        return "gives the nft table name %r, which is an nft keyword" % name.lower()
    return None


def parent_chain_problem(name: str, chain: Optional[str] = None) -> Optional[str]:
    """Why name cannot be the iptables chain that jumps to ours (chain), or None."""
    problem = _iptables_chain_problem(name)
    if problem:
        return problem
    if chain is not None and name == chain:
        return "is our own chain too; the parent is the chain that jumps to it"
    return None


class Portal(NamedTuple):
    """A configured portal: a literal address, or an interface (or alias label)."""

    address: Optional[IPAddress]
    interface: Optional[str]


def host_address_problem(ip: IPAddress) -> Optional[str]:
    """Why ip cannot be a local portal or initiator host address, or None."""
    if ip.is_unspecified:
        return "is the unspecified address"
    if ip.is_multicast:
        return "is a multicast address"
    if ip.version == 4 and int(ip) == 0xFFFFFFFF:
        return "is the broadcast address"
    if ip.version == 6 and ip.is_link_local:
        return "is link-local (scoped addresses are not supported)"
    mapped = getattr(ip, "ipv4_mapped", None) if ip.version == 6 else None
    if mapped is not None:
        return "is an IPv4-mapped IPv6 address; write it as IPv4 (%s)" % mapped
    return None


def parse_portal(text: str) -> Portal:
    """The portal setting as an address or an interface name; ValueError says why not.

    Addresses follow host_address_problem; interface names (or NAME:LABEL for
    an alias label) follow the kernel's dev_valid_name, narrowed to letters,
    digits, '_', '.', '-' (1-15 bytes in all), and must not look like an
    address.
    """
    bracketed = text.startswith("[") and text.endswith("]")
    if _leading_zero(text):
        raise ValueError("%r: an IPv4 part with a leading zero is ambiguous (octal to "
                         "some tools); write it without" % text)
    try:
        ip = ipaddress.ip_address(text[1:-1] if bracketed else text)
    except ValueError:
        ip = None
    if ip is not None:
        if bracketed and ip.version != 6:
            raise ValueError("%r: only IPv6 addresses go in brackets" % text)
        problem = host_address_problem(ip)
        if problem:
            hint = " (leave portal unset for all addresses)" if ip.is_unspecified else ""
            raise ValueError("%r %s%s" % (text, problem, hint))
        return Portal(ip, None)
    if "%" in text:
        raise ValueError("%r: scoped addresses are not supported" % text)
    with_port = _ADDRESS_AND_PORT.match(text)
    if with_port and (with_port.group("v6") is not None or _looks_ipv4(text)):
        raise ValueError("%r: the portal is an address or an interface without a "
                         "port; set the port with port =" % text)
    if bracketed or ":" in text and _looks_ipv6(text):
        raise ValueError("%r: not an IPv6 address" % text)
    if _looks_ipv4(text):
        raise ValueError("%r: not an IP address (malformed) and not an interface name"
                         % text)
    if not text or len(text.encode("utf-8")) >= _IFNAMSIZ:
        raise ValueError("%r: not an address and not an interface name (1 to %d "
                         "characters)" % (text, _IFNAMSIZ - 1))
    if not _IFNAME.match(text) or text.partition(":")[0] in (".", ".."):
        raise ValueError("%r: not an address and not an interface name (NAME or "
                         "NAME:LABEL of letters, digits, _ . -)" % text)
    return Portal(None, text)


def _leading_zero(text: str) -> bool:
    """Whether a dotted quad in text has a part like 010 (decimal to Python 3.6,
    octal to inet_aton)."""
    quad = text.strip("[]").split("/")[0].split(":")[-1].split(".")
    return len(quad) == 4 and all(p.isdigit() for p in quad) and any(
        len(p) > 1 and p.startswith("0") for p in quad)


def _looks_ipv4(text: str) -> bool:
    head = text.partition(":")[0]
    return bool(head) and all(c.isdigit() or c == "." for c in head) and "." in head


def _looks_ipv6(text: str) -> bool:
    return "::" in text or (text.count(":") >= 2 and all(
        c in "0123456789abcdefABCDEF:." for c in text))


def network_problem(text: str) -> Optional[str]:
    """Why text is not an initiator address or network we can enforce, or None."""
    if "%" in text:
        return "scoped addresses are not supported"
    if text.startswith("["):
        return "write IPv6 addresses and networks without brackets here"
    if _leading_zero(text):
        return "an IPv4 part with a leading zero is ambiguous (octal to some tools); " \
               "write it without"
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return str(exc)
        return "has host bits set (the network is %s)" % loose
    if net.prefixlen == net.max_prefixlen:
        problem = host_address_problem(net.network_address)
        return None if problem is None else problem[len("is "):]
    mapped = getattr(net.network_address, "ipv4_mapped", None) if net.version == 6 \
        else None
    if mapped is not None and net.prefixlen >= 96:
        return "an IPv4-mapped IPv6 network; write it as IPv4 (%s/%d)" % (
            mapped, net.prefixlen - 96)
    if net.is_multicast:
        return "a multicast network"
    if net.version == 6 and net.is_link_local and net.prefixlen > 10:
        return "link-local (scoped addresses are not supported)"
    return None
