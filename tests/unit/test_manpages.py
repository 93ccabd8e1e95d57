"""The man pages tapeshared(8) and tapeshared.conf(5) name every command, option
and configuration key there is, so a new one cannot ship undocumented (that
they render: tests/packaging/test_docs.py)."""

import argparse
import dataclasses
import os
import re

from support.paths import ROOT

from tapeshared import cli
from tapeshared.config import exports
from tapeshared.core.model import GlobalConfig

MAN = os.path.join(ROOT, "packaging", "man")


def source_text(page):
    """The page's roff source as words: comments dropped, font escapes and
    escaped hyphens turned into plain text."""
    with open(os.path.join(MAN, page)) as f:
        lines = [line for line in f.read().splitlines() if not line.startswith('.\\"')]
    text = "\n".join(lines)
    text = re.sub(r"\\f[BIRP]", "", text).replace("\\-", "-")
    return re.sub(r"^\.[A-Z]{1,2}\b ?", "", text, flags=re.M)


def mentions(text, word):
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(word), text) is not None


def subcommands(parser):
    """{name: subparser} of the argparse parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def option_strings(parser):
    return [o for action in parser._actions for o in action.option_strings]


def test_every_command_and_option_is_in_tapeshared_8():
    text = source_text("tapeshared.8")
    top = cli.parser()
    missing = [o for o in option_strings(top) if not mentions(text, o)]
    commands = subcommands(top)
    assert commands, "the parser has no subcommands"
    for name, sub in sorted(commands.items()):
        if not re.search(r"(?m)^%s$" % re.escape(name), text):  # a .TP .B NAME
            missing.append("command " + name)
        missing += ["%s %s" % (name, o) for o in option_strings(sub) if not mentions(text, o)]
        for action in sub._actions:
            missing += ["%s %s choice %s" % (name, action.dest, c)
                        for c in action.choices or () if not mentions(text, c)]
    assert missing == []


def config_keys():
    """Every key the configuration parser accepts, by section."""
    global_keys = [f.name for f in dataclasses.fields(GlobalConfig)]
    export_keys = list(exports._EXPORT_KEYS) + list(exports._SESSION_INT) + list(
        exports._SESSION_BOOL) + list(exports._SESSION_DIGEST)
    return global_keys, export_keys


def test_every_config_key_is_in_tapeshared_conf_5():
    text = source_text("tapeshared.conf.5")
    global_keys, export_keys = config_keys()
    assert "state_dir" in global_keys and "initiators" in export_keys
    global_part, _sep, export_part = text.partition("[export NAME] KEYS")
    assert export_part, "no [export NAME] KEYS section"
    missing = [k for k in global_keys if not mentions(global_part, k)]
    missing += ["export " + k for k in export_keys if not mentions(export_part, k)]
    if not re.search(r"(?m)^lun N$", export_part):  # .BI lun N
        missing.append("export lunN")
    assert missing == []


def test_the_pages_name_each_other_and_the_version():
    from tapeshared import __version__
    for page, other in (("tapeshared.8", "tapeshared.conf (5)"),
                        ("tapeshared.conf.5", "tapeshared (8)")):
        text = source_text(page)
        assert other in text, page
        assert '"tapeshared %s"' % __version__ in text, page
