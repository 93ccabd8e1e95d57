"""Address watch adapter: netlink address/link events and portal resolution (pyroute2)."""

import errno
import ipaddress
import logging
import socket
import struct
from typing import Any, Dict, List, Optional, Tuple

from tapeshared.core.errors import TransientError
from tapeshared.core.names import parse_portal

log = logging.getLogger(__name__)

# Kernel ABI constants (linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h).
_NETLINK_ROUTE = 0
_RTMGRP_LINK = 0x1
_RTMGRP_IPV4_IFADDR = 0x10
_RTMGRP_IPV6_IFADDR = 0x100
_WATCH_GROUPS = _RTMGRP_LINK | _RTMGRP_IPV4_IFADDR | _RTMGRP_IPV6_IFADDR
_RTM_NEWLINK = 16
_RTM_DELLINK = 17
_RTM_NEWADDR = 20
_RTM_DELADDR = 21
_RELEVANT = frozenset((_RTM_NEWLINK, _RTM_DELLINK, _RTM_NEWADDR, _RTM_DELADDR))
_NLMSGHDR = struct.Struct("=IHHII")
_IFA_F_DADFAILED = 0x08
_IFA_F_TENTATIVE = 0x40

_RECV_SIZE = 65536
# Bounded work per drain() so an event storm cannot stall the daemon loop;
# whatever is left keeps the fd readable and is read on the next round.
_MAX_DATAGRAMS = 4096



def _relevant(data: bytes) -> bool:
    """Tell whether a netlink datagram holds an address or link message."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, msg_type, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if msg_type in _RELEVANT:
            return True
        if length < _NLMSGHDR.size:
            break
        offset += (length + 3) & ~3
    return False


class AddressWatch:
    """Netlink RTM_NEWADDR/RTM_DELADDR watch for the daemon's selector loop.

    The socket is a plain stdlib AF_NETLINK socket, not a pyroute2 object:
    pyroute2 0.9 reads it through an asyncio transport into a private queue
    (select() then misses queued events) and stays broken after one ENOBUFS.
    After drain() re-opened a broken socket, fileno() differs: re-register it.
    """

    def __init__(self, rcvbuf: int = 1 << 20) -> None:
        self._rcvbuf = rcvbuf
        self._closed = False
        self._sock: Optional[socket.socket] = self._open()

    def _open(self) -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_ROUTE)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)
            sock.bind((0, _WATCH_GROUPS))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        log.debug("netlink address watch open on fd %d", sock.fileno())
        return sock

    def _live(self) -> socket.socket:
        if self._closed:
            raise ValueError("AddressWatch is closed")
        if self._sock is None:  # an earlier re-open failed (the error was raised then)
            self._sock = self._open()
        return self._sock

    def fileno(self) -> int:
        """The fd to register for reading; it changes if drain() re-opened it."""
        return self._live().fileno()

    def drain(self) -> bool:
        """Read what is pending without blocking; True if the caller must re-read."""
        sock = self._live()
        changed = False
        for _ in range(_MAX_DATAGRAMS):
            try:
                data = sock.recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return changed
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    log.warning("netlink address watch overflowed (ENOBUFS): "
                                "events were lost, re-reading all addresses")
                    changed = True
                    continue
                log.warning("netlink address watch socket failed (%s): re-opening it", exc)
                self._reopen(exc)
                return True
            if _relevant(data):
                changed = True
        return changed

    def _reopen(self, error: OSError) -> None:
        old = self._live()
        self._sock = None
        if error.errno == errno.EBADF:
            # The fd is already gone; closing it again could close an
            # unrelated file that reused the number.
            old.detach()
        else:
            try:
                old.close()
            except OSError as exc:
                log.debug("closing the broken netlink socket: %s", exc)
        self._sock = self._open()

    def close(self) -> None:
        """Close the socket; safe to call twice."""
        self._closed = True
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "AddressWatch":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def _sort_key(address: str) -> Tuple[int, bytes]:
    ip = ipaddress.ip_address(address)
    return ip.version, ip.packed


def _dump() -> Tuple[Dict[int, str], List[Any]]:
    """Dump links and addresses with pyroute2 (imported here, not at import)."""
    from pyroute2 import IPRoute, NetlinkError
    try:
        with IPRoute() as ipr:
            links = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
            return links, list(ipr.get_addr())
    except (OSError, NetlinkError) as exc:
        raise TransientError("netlink address dump failed: %s" % exc) from exc


def addresses(interface: Optional[str] = None) -> List[Tuple[str, str]]:
    """Current (ifname, address) pairs, usable ones only, sorted by name, IPv4 first.

    Tentative and DAD-failed addresses and IPv6 link-local ones are left out.
    `interface` matches a link name or an IPv4 alias label ("eth0:1").
    """
    links, msgs = _dump()
    pairs = set()
    for msg in msgs:
        if msg["family"] not in (socket.AF_INET, socket.AF_INET6):
            continue
        flags = msg["flags"] | (msg.get_attr("IFA_FLAGS") or 0)
        if flags & (_IFA_F_TENTATIVE | _IFA_F_DADFAILED):
            continue
        # IFA_LOCAL is the local end on point-to-point links, IFA_ADDRESS the peer.
        text = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        if not text:
            continue
        ip = ipaddress.ip_address(text)
        if ip.version == 6 and ip.is_link_local:
            continue
        name = links.get(msg["index"])
        label = msg.get_attr("IFA_LABEL")
        if interface is not None and interface not in (name, label):
            continue
        if name or label:
            pairs.add((name or label, str(ip)))
    return sorted(pairs, key=lambda pair: (pair[0],) + _sort_key(pair[1]))


def _check_family(family: Optional[int]) -> None:
    if family not in (None, socket.AF_INET, socket.AF_INET6):
        raise ValueError("family must be None, AF_INET or AF_INET6, not %r" % (family,))


def resolve_portal(portal: str, family: Optional[int] = None) -> List[str]:
    """The portal's addresses now: the literal if it is assigned here, or the
    interface's addresses (sorted, IPv4 first); [] when there are none.

    Raises ValueError for a malformed portal, before any netlink traffic.
    """
    _check_family(family)
    if not isinstance(portal, str):
        raise ValueError("portal must be a string, not %r" % (portal,))
    parsed = parse_portal(portal)
    ip = parsed.address
    if ip is not None:
        ip_family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        if family is not None and family != ip_family:
            raise ValueError("portal %r is not of the configured address family" % portal)
        wanted = str(ip)
        return [wanted] if any(addr == wanted for _name, addr in addresses()) else []
    found = set()
    for _name, addr in addresses(portal):
        version = ipaddress.ip_address(addr).version
        if family is None or family == (socket.AF_INET if version == 4 else socket.AF_INET6):
            found.add(addr)
    return sorted(found, key=_sort_key)
