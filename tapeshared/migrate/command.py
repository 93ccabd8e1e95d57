"""`tapeshared import`: read the old file, look at the live devices, print or write."""

import os
import sys
from typing import List, Optional, TextIO

from tapeshared import config
from tapeshared.backends.iet.conf import BEGIN, END, render_block
from tapeshared.backends.iet.plan import effective
from tapeshared.core.desired import desired_state
from tapeshared.core.errors import ConfigError, TapesharedError
from tapeshared.core.model import Device
from tapeshared.migrate import files, ietd, targetcli, tgt
from tapeshared.migrate.model import OldSetup
from tapeshared.migrate.render import Existing, Imported, render


def _read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(1 << 22)
    except OSError as exc:
        raise TapesharedError("cannot read %s: %s" % (path, exc.strerror))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("not UTF-8 text (byte %d)" % exc.start, path=path,
                          line=data[:exc.start].count(b"\n") + 1)


def old_setup(kind: str, path: str, allow: Optional[str] = None) -> OldSetup:
    """The old configuration file parsed by its own tool's rules."""
    text = _read(path)
    if kind == "ietd":
        setup = ietd.parse(text, path)
        if allow:
            ietd.parse_allow(_read(allow), allow, setup)
        return setup
    if kind == "targetcli":
        return targetcli.parse(text, path)
    if text.lstrip().startswith("Target ") and ":" in text.split("\n", 1)[0]:
        return tgt.parse_tgtadm_show(text, path)
    return tgt.parse_conf(text, path)


def existing(config_path: str) -> Existing:
    """The exports already configured (none when there is no configuration yet)."""
    if not os.path.exists(config_path):
        return Existing()
    cfg = config.load(config_path)
    found = Existing(backend=cfg.globals.backend)
    for export in cfg.exports:
        found.names.add(export.name.lower())
        found.iqns[export.iqn] = export.name
        for lun in export.luns:
            found.devices[str(lun.match)] = export.name
    return found


def run(kind: str, path: str, config_path: str, write: bool, allow: Optional[str],
        devices: List[Device], out: TextIO = sys.stdout) -> int:
    """Print (or write) the import; 0 if everything was carried, 1 if something not."""
    setup = old_setup(kind, path, allow)
    real = {lun.path: os.path.realpath(lun.path) for t in setup.targets for lun in t.luns
            if lun.path}
    base = os.path.dirname(os.path.abspath(config_path))
    result = render(setup, devices, existing(config_path), os.path.join(base, "secrets"),
                    real)
    if write and result.text:
        dropin = os.path.join(base, "conf.d", "imported-%s.conf" % setup.source)
        for name in files.write_new(dropin, result.text, result.secrets):
            out.write("wrote %s\n" % name)
    elif result.text:
        out.write(result.text)
        for secret_path, _secret in result.secrets:
            out.write("# --write puts the secret into %s (mode 0600)\n" % secret_path)
    report(result, out)
    if kind == "ietd" and write and result.exports:
        for line in ietd_takeover(setup, path, config_path, devices):
            out.write("# %s\n" % line)
    return 0 if not result.notes and result.exports else 1


def ietd_takeover(setup: OldSetup, path: str, config_path: str,
                  devices: List[Device]) -> List[str]:
    """How to hand the stanzas to tapeshared: wrapped in its markers when ietd
    would read the very lines tapeshared renders (no restart), else removed."""
    cfg = config.load(config_path)
    block = render_block(desired_state(cfg, devices))
    taken = [t for t in setup.targets if any(t.iqn == e.iqn for e in cfg.exports)]
    if not taken:
        return []
    first, last = min(t.span[0] for t in taken), max(t.span[1] for t in taken)
    lines = _read(path).split("\n")[first - 1:last]
    if effective("\n".join(lines)) == effective(block):
        return ["or, to take ietd.conf over with no restart of ietd (it reads the same "
                "lines), keep %s:%d-%d and wrap them in tapeshared's markers:" % (
                    path, first, last),
                "  the line before: " + BEGIN, "  the line after:  " + END,
                "then `tapeshared plan` shows no restart"]
    return ["%s:%d-%d differ from what tapeshared renders (order, keys): the first "
            "apply writes its block and restarts ietd once" % (path, first, last)]


def report(result: Imported, out: TextIO) -> None:
    """What was not carried over, and what to take out of the old setup."""
    if not result.exports:
        out.write("# nothing to import\n")
    for note in result.notes:
        out.write("# not carried over: %s\n" % note)
    for note in result.advice:
        out.write("# note: %s\n" % note)
    if result.removal:
        out.write("# so that tapeshared can take these targets over, remove from the "
                  "old setup:\n")
        for line in result.removal:
            out.write("#   %s\n" % line)
