"""Names and addresses: one validation function per fact, shared by config and adapters."""

import ipaddress
import re
from typing import NamedTuple, Optional, Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

# RFC 3720 3.2.6.1 (iqn.) and 3.2.6.3.2 (eui.); RFC 3721 says lower case is
# canonical, and iSCSI names are at most 223 bytes.
IQN_MAX = 223
_IQN = re.compile(r"\A(iqn\.[0-9]{4}-(0[1-9]|1[0-2])\.[a-z0-9]([a-z0-9.-]*[a-z0-9])?"
                  r"(:[a-z0-9.:-]+)?|eui\.[0-9a-f]{16})\Z")
_IQN_PREFIX = re.compile(r"\Aiqn\.[0-9]{4}-(0[1-9]|1[0-2])\.[a-z0-9]([a-z0-9.-]*[a-z0-9])?"
                         r"(:[a-z0-9.:-]+)?\Z")
# iptables chains: 28 characters at most (XT_EXTENSION_MAXNAMELEN - 1 minus room
# for the target's own suffixes); ours also names the nft table, which must be
# an identifier.
_CHAIN = re.compile(r"\A[A-Za-z0-9_.:+-]{1,28}\Z")
_NFT_TABLE = re.compile(r"\A[a-z_][a-z0-9_]*\Z")
_IFNAMSIZ = 16


def iqn_problem(name: str, prefix: bool = False) -> Optional[str]:
    """Why name is not a canonical (lower case) iSCSI name, or None if it is one."""
    if len(name.encode("utf-8")) > IQN_MAX:
        return "not a valid iSCSI name: longer than %d bytes" % IQN_MAX
    if name != name.lower():
        return "not a valid iSCSI name: not in lower case (RFC 3721 canonical form)"
    pattern = _IQN_PREFIX if prefix else _IQN
    if not pattern.match(name):
        return ("not a valid iSCSI name: expected iqn.YYYY-MM.reversed.domain[:unique] "
                "(or eui. and 16 hex digits)")
    return None


def chain_problem(name: str) -> Optional[str]:
    """Why name cannot be our firewall chain (iptables) and nft table, or None."""
    if not _CHAIN.match(name):
        return "not a valid chain name (1-28 letters, digits, _ . : + -)"
    if not _NFT_TABLE.match(name.lower()):
        return "does not give a valid nft table name (a letter or _, then letters, " \
               "digits, _)"
    return None


def parent_chain_problem(name: str) -> Optional[str]:
    """Why name cannot be the iptables chain that jumps to ours, or None."""
    return None if _CHAIN.match(name) else \
        "not a valid chain name (1-28 letters, digits, _ . : + -)"


class Portal(NamedTuple):
    """A configured portal: a literal address, or an interface (or alias label)."""

    address: Optional[IPAddress]
    interface: Optional[str]


def host_address_problem(ip: IPAddress) -> Optional[str]:
    """Why ip cannot be a local portal or initiator host address, or None."""
    if ip.is_unspecified:
        return "is the unspecified address (leave portal unset for all addresses)"
    if ip.is_multicast:
        return "is a multicast address"
    if ip.version == 6 and ip.is_link_local:
        return "is link-local (scoped addresses are not supported)"
    if ip.version == 6 and getattr(ip, "ipv4_mapped", None) is not None:
        return "is an IPv4-mapped IPv6 address; write it as IPv4"
    return None


def parse_portal(text: str) -> Portal:
    """The portal setting as an address or an interface name; ValueError says why not.

    Addresses follow host_address_problem; interface names follow the kernel's
    rules (dev_valid_name: 1-15 bytes, no '/', ':' only before an alias label,
    no whitespace) and must not look like a malformed IPv4 address.
    """
    bracketed = text.startswith("[") and text.endswith("]")
    try:
        ip = ipaddress.ip_address(text[1:-1] if bracketed else text)
    except ValueError:
        if bracketed or "%" in text:
            raise ValueError("%r: not an IPv6 address (scoped addresses are not "
                             "supported)" % text)
        ip = None
    if ip is not None:
        if bracketed and ip.version != 6:
            raise ValueError("%r: only IPv6 addresses go in brackets" % text)
        problem = host_address_problem(ip)
        if problem:
            raise ValueError("%r %s" % (text, problem))
        return Portal(ip, None)
    name, sep, label = text.partition(":")
    if not text or len(text.encode("utf-8")) >= _IFNAMSIZ:
        raise ValueError("%r: not an address and not an interface name (1 to %d "
                         "characters)" % (text, _IFNAMSIZ - 1))
    if name in ("", ".", "..") or ":" in label or (sep and not label):
        raise ValueError("%r: not an address and not an interface name "
                         "(NAME or NAME:LABEL)" % text)
    if any(c in "/[]%" or c.isspace() or not c.isprintable() or ord(c) > 0x7E
           for c in text):
        raise ValueError("%r: not an address and not an interface name" % text)
    if all(c.isdigit() or c == "." for c in text):
        raise ValueError("%r: not an IP address (malformed) and not an interface name"
                         % text)
    return Portal(None, text)


def network_problem(text: str) -> Optional[str]:
    """Why text is not an initiator network we can enforce, or None."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        return str(exc)
    if "%" in text:
        return "scoped addresses are not supported"
    if net.version == 6 and getattr(net.network_address, "ipv4_mapped", None) is not None \
            and net.prefixlen >= 96:
        return "an IPv4-mapped IPv6 network; write it as IPv4"
    if net.is_multicast:
        return "a multicast network"
    if net.version == 6 and net.is_link_local and net.prefixlen > 10:
        return "link-local (scoped addresses are not supported)"
    return None
