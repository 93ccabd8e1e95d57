"""Identity derivation from untrusted sysfs/udev strings: pure unit and property tests."""

import re
from typing import List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.udevbed import vpd80, vpd83

from tapeshared.core.identity import (
    describe_bad,
    display_text,
    identity_text,
    normalize_wwn,
    serial_from_vpd80,
    wwn_from_vpd83,
)

PRINTABLE = re.compile(r"\A[\x20-\x7e]*\Z")
FORBIDDEN_IN_IDENTITY = re.compile(r"[\s\x00-\x1f\x7f-\U0010ffff#,=]")
NAA5 = "5000e11156304001"
NAA6 = "600508b1001c4d2e3f4a5b6c7d8e9f00"
EUI = "0123456789abcdef"


def page83(*designators: bytes, page: int = 0x83, pdt: int = 1) -> bytes:
    body = b"".join(designators)
    return bytes([pdt, page, len(body) >> 8, len(body) & 0xFF]) + body


def desig(code_set: int, association: int, dtype: int, body: bytes) -> bytes:
    return bytes([code_set, (association << 4) | dtype, 0, len(body)]) + body


# display_text ---------------------------------------------------------------

def test_display_text_trims_padding_and_keeps_plain_text() -> None:
    assert display_text(b"HP      ") == ("HP", None)
    assert display_text("Ultrium 5-SCSI  ") == ("Ultrium 5-SCSI", None)
    assert display_text(b"\x00 IBM\t\x00") == ("IBM", None)
    assert display_text(None) == ("", None)
    assert display_text(b"") == ("", None)


@pytest.mark.parametrize("raw, shown", [
    (b"A\nB", "A\\x0aB"),
    (b"A\x1b[2JB", "A\\x1b[2JB"),
    (b"A\x7f", "A\\x7f"),
    (b"Caf\xe9", "Caf\\xe9"),
    ("Caf\u00e9", "Caf\\xe9"),
    (b"A\rB", "A\\x0dB"),
])
def test_display_text_escapes_control_and_non_ascii(raw: object, shown: str) -> None:
    text, problem = display_text(raw)  # type: ignore[arg-type]
    assert text == shown
    assert problem is not None and "non-printable character" in problem


def test_display_text_problem_names_the_offset() -> None:
    _text, problem = display_text(b"AB\nC")
    assert problem == "non-printable character 0x0a at offset 2"


@pytest.mark.parametrize("char", ["#", ",", "="])
def test_display_text_escapes_config_syntax_characters(char: str) -> None:
    # FACTS: '#' and ',' (and '=') in device strings would corrupt a rendered
    # config: they are escaped and reported like control characters.
    text, problem = display_text("HP" + char + "1")
    assert char not in text
    assert text == "HP\\x%02x1" % ord(char)
    assert problem is not None


def test_display_text_escape_cannot_be_forged() -> None:
    # A device naming itself "A\x01" must not display like one sending byte 0x01.
    forged = display_text("A\\x01")
    real = display_text("A\x01")
    assert forged[0] != real[0]
    assert forged[1] is not None


# identity_text --------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    (b"HU1234ABCD", "HU1234ABCD"),
    ("HU1234ABCD", "HU1234ABCD"),
    (b"  HU1234ABCD  ", "HU1234ABCD"),
    (b"HU1234ABCD\x00\x00", "HU1234ABCD"),
    (b"\tA.b_c:d+e/f-g", "A.b_c:d+e/f-g"),
    (b"X" * 128, "X" * 128),
])
def test_identity_text_accepts_conservative_serials(raw: object, expected: str) -> None:
    assert identity_text(raw) == (expected, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", [None, b"", b"   ", b"\x00\x00", ""])
def test_identity_text_empty_is_absent_not_a_problem(raw: object) -> None:
    assert identity_text(raw) == (None, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", [
    b"AB\nCD", b"AB\rCD", b"AB\x07CD", b"AB\x1bCD", b"AB\x7fCD", b"AB\xe9CD",
    "AB\u00e9CD", b"AB#CD", b"AB,CD", b"AB=CD", b"AB CD", b"AB\tCD", b"AB;CD",
    b"AB\"CD", b"AB'CD", b"AB\\CD", b"[AB]", b"X" * 129, b"AB\nCD\n",
])
def test_identity_text_rejects_hostile_serials(raw: object) -> None:
    value, problem = identity_text(raw)  # type: ignore[arg-type]
    assert value is None
    assert problem


def test_identity_text_problem_names_the_bad_characters() -> None:
    _value, problem = identity_text("A#B=C")
    assert problem is not None and "#" in problem and "=" in problem
    _value, problem = identity_text("A\nB")
    assert problem == "non-printable character 0x0a at offset 1"


def test_describe_bad() -> None:
    assert describe_bad("plain text #,=") is None
    assert describe_bad("a\x00") == "non-printable character 0x00 at offset 1"


# normalize_wwn --------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("0x5000E11156304001", NAA5),
    ("0X5000e11156304001", NAA5),
    ("naa.5000e11156304001", NAA5),
    ("NAA.5000E11156304001", NAA5),
    (b"naa.5000e11156304001\n", NAA5),
    ("eui.0123456789ABCDEF", EUI),
    ("5000e11156304001", NAA5),
    (" 0x" + NAA6 + " ", NAA6),
    ("naa." + NAA6.upper(), NAA6),
])
def test_normalize_wwn_accepts(raw: object, expected: str) -> None:
    assert normalize_wwn(raw) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", [
    None, "", "0x", "5000e1115630400", "5000e111563040012", "5000e11156304001" + "00",
    "5000e1115630400g", "t10.HP      Ultrium 5-SCSI  HU1234", "0x0x5000e11156304001",
    "naa.5000-e111-5630-4001", "iqn.2007-04.com.example:t", b"\xff" * 16,
])
def test_normalize_wwn_rejects(raw: object) -> None:
    assert normalize_wwn(raw) is None  # type: ignore[arg-type]


# serial_from_vpd80 ----------------------------------------------------------

def test_serial_from_vpd80() -> None:
    assert serial_from_vpd80(b"\x01\x80\x00\x0aHU1234ABCD") == b"HU1234ABCD"
    assert serial_from_vpd80(b"\x08\x80\x00\x04CH01") == b"CH01"  # changer pdt
    assert serial_from_vpd80(b"\x01\x80\x00\x02AB-trailing") == b"AB"  # length respected
    assert serial_from_vpd80(b"\x01\x80\x00\x00") == b""
    assert serial_from_vpd80(b"\x01\x80" + bytes([1, 0x2C]) + b"S" * 300) == b"S" * 300


@pytest.mark.parametrize("page", [
    None, b"", b"\x01", b"\x01\x80", b"\x01\x80\x00", b"\x01\x83\x00\x02AB",
])
def test_serial_from_vpd80_rejects_short_or_other_pages(page: object) -> None:
    assert serial_from_vpd80(page) is None  # type: ignore[arg-type]


def test_serial_from_vpd80_truncated_page_does_not_crash() -> None:
    # Length says 10, only 3 bytes follow (what a NUL-cut read can leave).
    assert serial_from_vpd80(b"\x01\x80\x00\x0aHU1") == b"HU1"


# wwn_from_vpd83 -------------------------------------------------------------

def test_wwn_from_vpd83_naa() -> None:
    assert wwn_from_vpd83(page83(desig(1, 0, 3, bytes.fromhex(NAA5)))) == NAA5
    assert wwn_from_vpd83(page83(desig(1, 0, 3, bytes.fromhex(NAA6)))) == NAA6


def test_wwn_from_vpd83_prefers_naa_over_eui64_in_any_order() -> None:
    eui = desig(1, 0, 2, bytes.fromhex(EUI))
    naa = desig(1, 0, 3, bytes.fromhex(NAA5))
    assert wwn_from_vpd83(page83(eui, naa)) == NAA5
    assert wwn_from_vpd83(page83(naa, eui)) == NAA5
    assert wwn_from_vpd83(page83(eui)) == EUI


@pytest.mark.parametrize("association", [1, 2, 3])
def test_wwn_from_vpd83_ignores_port_and_target_designators(association: int) -> None:
    port = desig(1, association, 3, bytes.fromhex("5000e11156304f01"))
    lun = desig(1, 0, 3, bytes.fromhex(NAA5))
    assert wwn_from_vpd83(page83(port, lun)) == NAA5
    assert wwn_from_vpd83(page83(port)) is None


def test_wwn_from_vpd83_ignores_ascii_and_other_types() -> None:
    t10 = desig(2, 0, 1, b"HP      Ultrium 5-SCSI  HU1234")
    ascii_naa = desig(2, 0, 3, b"5000e11156304001")
    relative_port = desig(1, 1, 4, b"\x00\x00\x00\x01")
    odd_length = desig(1, 0, 3, b"\x50" * 12)
    assert wwn_from_vpd83(page83(t10, ascii_naa, relative_port, odd_length)) is None
    assert wwn_from_vpd83(page83(t10, odd_length, desig(1, 0, 3, bytes.fromhex(NAA5)))) == NAA5


def test_wwn_from_vpd83_first_lun_naa_wins() -> None:
    first = desig(1, 0, 3, bytes.fromhex(NAA5))
    second = desig(1, 0, 3, bytes.fromhex("5000e11156304002"))
    assert wwn_from_vpd83(page83(first, second)) == NAA5


@pytest.mark.parametrize("cut", range(0, 16))
def test_wwn_from_vpd83_truncated_pages_do_not_crash(cut: int) -> None:
    whole = page83(desig(1, 0, 3, bytes.fromhex(NAA5)))
    part = whole[:cut]
    result = wwn_from_vpd83(part)
    assert result is None or result == NAA5
    if cut < len(whole):
        assert result is None  # an incomplete designator is never used


def test_wwn_from_vpd83_page_length_bounds_the_designators() -> None:
    naa = desig(1, 0, 3, bytes.fromhex(NAA5))
    page = bytes([1, 0x83, 0, 0]) + naa  # declares an empty list: trailing bytes ignored
    assert wwn_from_vpd83(page) is None


@pytest.mark.parametrize("page", [None, b"", b"\x01\x83", b"\x01\x80\x00\x00"])
def test_wwn_from_vpd83_rejects_short_or_other_pages(page: object) -> None:
    assert wwn_from_vpd83(page) is None  # type: ignore[arg-type]


def test_testbed_pages_are_real_formats() -> None:
    # tests/udevbed.py builds the pages the umockdev tests use: check them here.
    assert serial_from_vpd80(vpd80("HU1234ABCD")) == b"HU1234ABCD"
    assert serial_from_vpd80(vpd80(b"CH01", pdt=8)) == b"CH01"
    page = vpd83(NAA5, b"HP      Ultrium 5-SCSI  HU1", port_wwn="5000e11156304f01")
    assert page[:2] == b"\x01\x83" and len(page) == 4 + ((page[2] << 8) | page[3])
    assert wwn_from_vpd83(page) == NAA5
    assert wwn_from_vpd83(vpd83(None, b"HP", port_wwn="5000e11156304f01")) is None


# properties -----------------------------------------------------------------

def safe_identity(value: object) -> bool:
    return isinstance(value, str) and bool(value) and not FORBIDDEN_IN_IDENTITY.search(value)


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=80), st.text(max_size=80)))
def test_identity_text_is_none_or_safe(raw: object) -> None:
    value, problem = identity_text(raw)  # type: ignore[arg-type]
    assert value is None or safe_identity(value), value
    if value is not None:
        assert problem is None
    assert problem is None or PRINTABLE.match(problem)


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=80), st.text(max_size=80)))
def test_display_text_is_printable_ascii(raw: object) -> None:
    text, problem = display_text(raw)  # type: ignore[arg-type]
    assert PRINTABLE.match(text), text
    assert problem is None or PRINTABLE.match(problem)


@given(st.binary(max_size=300))
def test_parsers_never_raise_on_arbitrary_bytes(raw: bytes) -> None:
    serial = serial_from_vpd80(raw)
    assert serial is None or isinstance(serial, bytes)
    for page in (raw, b"\x01\x80" + raw[2:], b"\x01\x83" + raw[2:]):
        serial_from_vpd80(page)
        wwn = wwn_from_vpd83(page)
        assert wwn is None or (len(wwn) in (16, 32) and re.match(r"\A[0-9a-f]+\Z", wwn))
    wwn = normalize_wwn(raw)
    assert wwn is None or (len(wwn) in (16, 32) and re.match(r"\A[0-9a-f]+\Z", wwn))
    identity_text(serial)
    display_text(raw)


designator = st.tuples(st.integers(0, 15), st.integers(0, 3), st.integers(0, 15),
                       st.binary(max_size=20))


@given(st.lists(designator, max_size=6))
def test_wwn_from_vpd83_finds_the_first_lun_naa(items: List[Tuple[int, int, int, bytes]]
                                                ) -> None:
    page = page83(*(desig(c, a, t, b) for c, a, t, b in items))
    lun_naa = [b.hex() for c, a, t, b in items
               if c == 1 and a == 0 and t == 3 and len(b) in (8, 16)]
    lun_eui = [b.hex() for c, a, t, b in items
               if c == 1 and a == 0 and t == 2 and len(b) in (8, 16)]
    expected = lun_naa[0] if lun_naa else (lun_eui[0] if lun_eui else None)
    assert wwn_from_vpd83(page) == expected


@given(st.binary(min_size=1, max_size=16))
def test_normalize_wwn_roundtrips_hex(raw: bytes) -> None:
    text = raw.hex()
    expected = text if len(text) in (16, 32) else None
    for form in (text, "0x" + text.upper(), "naa." + text, "eui." + text):
        assert normalize_wwn(form) == expected
