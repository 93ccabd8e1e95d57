"""Untrusted sysfs/udev strings made safe, and the stable identity of a device."""

import re
from typing import Optional, Tuple, Union

# A serial or WWN becomes part of names and comments we render: keep it to a
# conservative charset, so no device string can end a line or start a token.
IDENTITY_MAX = 128
_IDENTITY_OK = re.compile(r"\A[A-Za-z0-9._:+/-]{1,%d}\Z" % IDENTITY_MAX)
# Printable, but they would end or split a token where device text is rendered;
# the backslash is escaped so an escape sequence cannot be forged.
_DISPLAY_ESCAPED = frozenset("\\#,=")
_HEX = re.compile(r"\A[0-9a-f]+\Z")

Raw = Union[bytes, str, None]


def _decode(raw: Raw) -> Optional[str]:
    if raw is None:
        return None
    if isinstance(raw, bytes):
        return raw.decode("latin-1")
    return raw


def describe_bad(text: str) -> Optional[str]:
    """Say which character makes text unprintable, or None if it is fine."""
    for pos, char in enumerate(text):
        if not (0x20 <= ord(char) <= 0x7E):
            return "non-printable character 0x%02x at offset %d" % (ord(char), pos)
    return None


def display_text(raw: Raw) -> Tuple[str, Optional[str]]:
    """Vendor/model/rev for display: trimmed, unsafe bytes escaped as \\xNN."""
    text = _decode(raw)
    if text is None:
        return "", None
    text = text.strip(" \t\x00")
    problem = describe_bad(text)
    if problem is None:
        for pos, char in enumerate(text):
            if char in _DISPLAY_ESCAPED:
                problem = "character %r at offset %d" % (char, pos)
                break
    if problem is None:
        return text, None
    safe = "".join(c if 0x20 <= ord(c) <= 0x7E and c not in _DISPLAY_ESCAPED
                   else "\\x%02x" % ord(c) for c in text)
    return safe, problem


def identity_text(raw: Raw) -> Tuple[Optional[str], Optional[str]]:
    """A serial for use as an identity, or (None, why it was rejected)."""
    text = _decode(raw)
    if text is None:
        return None, None
    text = text.strip(" \t\x00")
    if not text:
        return None, None
    problem = describe_bad(text)
    if problem is not None:
        return None, problem
    if len(text) > IDENTITY_MAX:
        return None, "too long (%d characters, at most %d)" % (len(text), IDENTITY_MAX)
    if not _IDENTITY_OK.match(text):
        bad = sorted(set(c for c in text if not _IDENTITY_OK.match(c)))
        return None, "characters %r are not allowed in an identity" % "".join(bad)
    return text, None


def normalize_wwn(raw: Raw) -> Optional[str]:
    """'0x5000C5..', 'naa.5000c5..' or '5000c5..' -> '5000c5..'; None if not NAA/EUI hex."""
    text = _decode(raw)
    if text is None:
        return None
    text = text.strip(" \t\x00\n").lower()
    for prefix in ("0x", "naa.", "eui."):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    if len(text) in (16, 32) and _HEX.match(text):
        return text
    return None


def serial_from_vpd80(page: Optional[bytes]) -> Raw:
    """Unit serial number from a raw VPD page 0x80, or None."""
    if not page or len(page) < 4 or page[1] != 0x80:
        return None
    length = (page[2] << 8) | page[3]
    return page[4:4 + length]


def wwn_from_vpd83(page: Optional[bytes]) -> Optional[str]:
    """The logical unit's NAA (else EUI-64) designator from VPD page 0x83."""
    if not page or len(page) < 4 or page[1] != 0x83:
        return None
    end = min(len(page), 4 + ((page[2] << 8) | page[3]))
    pos = 4
    found = {}  # designator type -> hex
    while pos + 4 <= end:
        code_set = page[pos] & 0x0F
        association = (page[pos + 1] >> 4) & 0x03
        dtype = page[pos + 1] & 0x0F
        length = page[pos + 3]
        body = page[pos + 4:pos + 4 + length]
        pos += 4 + length
        if len(body) != length or association != 0 or code_set != 1:
            continue
        if dtype in (2, 3) and length in (8, 16) and dtype not in found:
            found[dtype] = body.hex()
    return found.get(3) or found.get(2)
