"""INI files with provenance: sections that remember which file and line each key came from."""

import configparser
import glob
import os
import re
import shlex
from typing import Callable, Dict, List, Optional, Tuple

from tapeshared.core.errors import ConfigError

_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9.-]{0,62}\Z")


class Section:
    """One section's raw values with the file each came from, for error messages."""

    def __init__(self, name: str, origin: str = "") -> None:
        self.name = name
        self.origin = origin
        self.values: Dict[str, Tuple[str, str]] = {}

    def error(self, key: Optional[str], message: str) -> ConfigError:
        path = self.values[key][1] if key in self.values else (self.origin or None)
        return ConfigError(message, path=path, section=self.name, key=key,
                           line=line_of(path, self.name, key) if path and key else None)

    def pop(self, key: str) -> Optional[str]:
        item = self.values.get(key)
        return None if item is None else item[0]


def line_of(path: str, section: str, key: str) -> Optional[int]:
    """The line of key inside [section] in path, for error messages."""
    current = None
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                text = line.strip()
                if text.startswith("[") and text.endswith("]"):
                    current = text[1:-1].strip()
                elif current == section and re.match(r"%s\s*[=:]" % re.escape(key),
                                                    text, re.IGNORECASE):
                    return number
    except OSError:
        return None
    return None


def config_files(path: str) -> List[str]:
    """The main file and its conf.d/*.conf drop-ins, in the order they apply."""
    dropins = os.path.join(os.path.dirname(os.path.abspath(path)), "conf.d", "*.conf")
    return [path] + sorted(glob.glob(dropins))


def read_sections(files: List[str]) -> Tuple[Section, Dict[str, Section]]:
    glob_section = Section("global")
    exports: Dict[str, Section] = {}
    for path in files:
        parser = configparser.ConfigParser(interpolation=None, strict=True,
                                           inline_comment_prefixes=(" #", " ;"),
                                           default_section="\x00none")
        try:
            with open(path, encoding="utf-8") as handle:
                parser.read_file(handle, source=path)
        except OSError as exc:
            raise ConfigError("cannot read: %s" % exc.strerror, path=path)
        except UnicodeDecodeError as exc:
            raise ConfigError("not UTF-8 text: %s" % exc, path=path)
        except configparser.Error as exc:
            line = getattr(exc, "lineno", None)
            raise ConfigError(exc.message.splitlines()[0] if hasattr(exc, "message")
                              else str(exc), path=path, line=line)
        for name in parser.sections():
            if name == "global":
                section = glob_section
                section.origin = section.origin or path
            elif name.startswith("export "):
                export = name[len("export "):].strip()
                if not _NAME.match(export):
                    raise ConfigError("export name %r: use letters, digits, '.', '-' "
                                      "(up to 63)" % export, path=path, section=name)
                if name in exports:
                    raise ConfigError("export defined twice (also in %s)"
                                      % exports[name].origin, path=path, section=name)
                section = exports[name] = Section(name, path)
            else:
                raise ConfigError("unknown section; expected [global] or "
                                  "[export NAME]", path=path, section=name)
            for key, value in parser.items(name):
                section.values[key] = (value.strip(), path)
    return glob_section, exports


def boolean(section: Section, key: str, default: bool) -> bool:
    value = section.pop(key)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("1", "yes", "true", "on"):
        return True
    if lowered in ("0", "no", "false", "off"):
        return False
    raise section.error(key, "expected yes or no, got %r" % value)


def number(section: Section, key: str, default: float, kind: Callable = float,
            low: float = 0, high: float = float("inf")) -> float:
    value = section.pop(key)
    if value is None:
        return default
    try:
        number = kind(value)
    except ValueError:
        raise section.error(key, "expected a number, got %r" % value)
    if not low <= number <= high:
        raise section.error(key, "%s is out of range %s..%s" % (value, low, high))
    return float(number)


def choice(section: Section, key: str, default: str, choices: Tuple[str, ...]) -> str:
    value = section.pop(key)
    if value is None:
        return default
    if value.lower() not in choices:
        raise section.error(key, "expected one of %s, got %r" % (" | ".join(choices), value))
    return value.lower()


def path_value(section: Section, key: str, default: str) -> str:
    value = section.pop(key)
    if value is None:
        return default
    if not os.path.isabs(value) or "\n" in value:
        raise section.error(key, "expected an absolute path, got %r" % value)
    return value


def command(section: Section, key: str, default: Tuple[str, ...]) -> Tuple[str, ...]:
    value = section.pop(key)
    if value is None:
        return default
    try:
        argv = tuple(shlex.split(value))
    except ValueError as exc:
        raise section.error(key, str(exc))
    if not argv:
        raise section.error(key, "empty command")
    return argv
