"""Every byte outside our block is kept: a property over arbitrary foreign files.

Bytes go through the same decode/encode as the IET backend (UTF-8 with
surrogateescape), so non-UTF-8 bytes, CRLF, form feeds, NULs, a missing final
line break and stray or complete tapeshared markers are all exercised.
"""

from hypothesis import example, given, settings
from hypothesis import strategies as st
from support import builders

from tapeshared.backends.iet import access, conf
from tapeshared.backends.iet.plan import encoded, text
from tapeshared.core.desired import desired_state
from tapeshared.core.errors import ManagedFileError
from tapeshared.core.model import DesiredState

STATE = desired_state(builders.config(builders.export(serial="HU1", initiators=(
    "192.0.2.10/32",))), [builders.tape("1:0:6:0", serial="HU1")])
NONE = DesiredState(targets=())
BLOCK = conf.render_block(STATE).encode()
FRAGMENTS = [b"\n", b"\r\n", b"\r", b" ", b"\t", b"\x0c", b"\x0b", b"\x85", b"\xe9", b"\xff",
             b"\x00", b"# a comment", b"MaxConnections 1", b"IncomingUser joe secret",
             b"Target iqn.2001-04.com.example:disk", b"\tLun 0 Path=/dev/x,Type=fileio",
             b"iqn.2001-04.com.example:disk 192.0.2.99", b"ALL ALL",
             conf.BEGIN.encode(), conf.END.encode(), conf.JOINED.encode(), BLOCK,
             b"\n" + conf.JOINED.encode() + BLOCK[len(conf.BEGIN):]]
FOREIGN = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=6)),
                   max_size=14).map(b"".join)


def merged(data, state):
    return encoded(conf.merge(text(data), state, "ietd.conf"))


def outside(data):
    before, _block, after = conf.split(text(data), "f")
    return encoded(conf.outside(before, after))


@settings(max_examples=600)
@given(FOREIGN)
@example(b"# site settings\r\nMaxConnections 1")  # no final line break, CRLF
@example(b"MaxConnections 1\n\n")
@example(b"")
def test_ietd_conf_keeps_every_foreign_byte(foreign):
    try:
        new = merged(foreign, STATE)
    except ManagedFileError:
        return  # refused: nothing is written (the CLI says why)
    kept = outside(foreign)
    if conf.BEGIN.encode() not in foreign and conf.END.encode() not in foreign:
        assert kept == foreign
        assert new.startswith(foreign)  # appended: not one byte before it changes
    assert outside(new) == kept
    assert conf.split(text(new), "f")[1] is not None
    assert merged(new, STATE) == new  # idempotent: a second apply writes nothing
    assert merged(new, NONE) == kept  # the block removed: the file as it was


@settings(max_examples=600)
@given(FOREIGN)
@example(b"iqn.2001-04.com.example:disk 192.0.2.99")  # IET ignores it; so do we
def test_access_files_keep_every_foreign_byte(foreign):
    lines = access.allow_lines(STATE)
    try:
        new = encoded(access.merge(text(foreign), lines, "initiators.allow"))
    except ManagedFileError:
        return
    kept = outside(foreign)
    if conf.BEGIN.encode() not in foreign and conf.END.encode() not in foreign:
        assert kept == foreign
    assert new.endswith(kept) and new.startswith(conf.BEGIN.encode() + b"\n")
    assert outside(new) == kept
    assert encoded(access.merge(text(new), lines, "f")) == new
    assert encoded(access.merge(text(new), [], "f")) == kept


def test_no_final_line_break_gains_exactly_one_owned_by_the_block():
    foreign = b"# site\nMaxConnections 1"
    new = merged(foreign, STATE)
    assert new == foreign + b"\n" + conf.JOINED.encode() + BLOCK[len(conf.BEGIN):]
    assert merged(new, NONE) == foreign


def test_an_admin_line_after_a_joined_block_stays_a_line_when_the_block_goes():
    new = merged(b"MaxConnections 1", STATE) + b"Target iqn.2001-04.com.example:disk\n"
    assert merged(new, NONE) == b"MaxConnections 1\nTarget iqn.2001-04.com.example:disk\n"


def test_secrets_are_found_only_on_effective_lines():
    assert conf.holds_secrets(b"Target x\n\tIncomingUser a s3cret\n")
    assert conf.holds_secrets(b"outgoinguser a b")
    assert not conf.holds_secrets(b"#\tIncomingUser joe secret\n")
    assert not conf.holds_secrets(b"Target x\n\tIncomingUser\n")


def test_only_a_line_feed_ends_a_line_as_ietd_reads_them():
    # "\x0c" or "\r" is no line break for ietd: the marker text there is not ours
    for brk in (b"\x0c", b"\r", b"\x1e"):
        foreign = b"MaxConnections 1" + brk + conf.BEGIN.encode() + b"\n"
        assert merged(foreign, STATE).startswith(foreign)
