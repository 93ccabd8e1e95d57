"""The man pages render with groff and no warnings; the bash completion, run in
a real bash with COMP_WORDS set, completes the parser's commands and options and
the export names of the configuration it is pointed at."""

import argparse
import os
import shutil
import subprocess

import pytest
from support.paths import ROOT

from tapeshared import cli

MAN = os.path.join(ROOT, "packaging", "man")
COMPLETION = os.path.join(ROOT, "packaging", "completion", "tapeshared")


@pytest.mark.parametrize("page", ("tapeshared.8", "tapeshared.conf.5"))
def test_man_page_renders_without_warnings(page):
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff not installed")
    proc = subprocess.run([groff, "-man", "-Tutf8", "-ww", os.path.join(MAN, page)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    assert page.rsplit(".", 1)[0].upper() in proc.stdout  # the .TH header


def complete(words, setup=""):
    """COMPREPLY for the command line `words` (the last one is being completed)."""
    bash = shutil.which("bash")
    assert bash, "bash not found"
    script = ('source "$1"; shift; %s\nCOMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))\n'
              '_tapeshared; printf "%%s\\n" "${COMPREPLY[@]}"' % setup)
    proc = subprocess.run([bash, "--norc", "--noprofile", "-c", script, "bash", COMPLETION]
                          + list(words), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return sorted(line for line in proc.stdout.splitlines() if line)


def parser_parts():
    top = cli.parser()
    subs = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return top, dict(subs.choices)


def options(parser):
    return sorted(o for a in parser._actions for o in a.option_strings)


def test_completes_every_command_of_the_parser():
    _top, subs = parser_parts()
    assert complete(["tapeshared", ""]) == sorted(subs)
    assert complete(["tapeshared", "-c", "/nonexistent.conf", "-v", "ch"]) == ["check-config"]


def test_completes_each_commands_options():
    top, subs = parser_parts()
    assert complete(["tapeshared", "-"]) == options(top)
    for name, sub in subs.items():
        assert complete(["tapeshared", name, "-"]) == options(sub), name
    assert complete(["tapeshared", "run", "--log-target", ""]) == [
        "auto", "journal", "stderr", "syslog"]


def test_completes_export_names_from_the_config_and_conf_d(tmp_path):
    conf = tmp_path / "tapeshared.conf"
    conf.write_text("[global]\nbackend = lio\n[export tape0]\nserial = A\n"
                    "; [export commented]\n")
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "10-lib.conf").write_text("[export library-1]\nlun0 = serial:B\n")
    (tmp_path / "conf.d" / "notes.txt").write_text("[export not-read]\n")
    # Which commands take export names is one variable; none does in this version.
    setup = '_tapeshared_export_commands="status"'
    assert complete(["tapeshared", "-c", str(conf), "status", ""], setup) == [
        "library-1", "tape0"]
    assert complete(["tapeshared", "--config=%s" % conf, "status", "l"], setup) == [
        "library-1"]
    assert complete(["tapeshared", "-c", str(conf), "status", ""]) == []
