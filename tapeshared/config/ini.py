"""INI files with provenance: sections that remember which file and line each key came from."""

import glob
import os
import re
import shlex
import stat
from typing import Callable, Dict, List, Optional, Tuple

from tapeshared.core.errors import ConfigError

_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9.-]{0,62}\Z")
_BOM = b"\xef\xbb\xbf"
# Characters that would end a line for one reader and not for another (NUL, CR,
# the C1 controls, Unicode line separators), or that no option needs.
# Invisible or direction-changing characters (zero-width, bidi overrides, a
# BOM inside the text) would make what the admin reads differ from what we read.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e"
                      "\u2060-\u2069\ufeff]")
_KEY = re.compile(r"\A[a-z0-9_.]+\Z")
_INLINE_COMMENT = re.compile(r"\s[#;]")
_DELIMITER = re.compile(r"[=:]")
MAX_FILE = 1 << 20
PATH_MAX, NAME_MAX = 4096, 255  # linux/limits.h


class Section:
    """One section's raw values with the file and line each came from, for messages."""

    def __init__(self, name: str, origin: str = "", line: Optional[int] = None) -> None:
        self.name = name
        self.origin = origin
        self.values: Dict[str, Tuple[str, str]] = {}
        self.lines: Dict[str, int] = {}
        self.headers: Dict[str, int] = {}
        if origin and line is not None:
            self.headers[origin] = line

    def error(self, key: Optional[str], message: str) -> ConfigError:
        """A ConfigError at key's file:line, or at the section header for a
        missing key or the section as a whole."""
        if key in self.values:
            path: Optional[str] = self.values[key][1]
            line = self.lines.get(key)  # type: Optional[int]
        else:
            path = self.origin or None
            line = self.headers.get(self.origin)
        return ConfigError(message, path=path, section=self.name, key=key, line=line)

    def where(self, key: Optional[str] = None) -> str:
        """file:line of key (or of the header), to name a second place in a message."""
        error = self.error(key, "")
        if error.path is None:
            return "[%s]" % self.name
        return error.path if error.line is None else "%s:%d" % (error.path, error.line)

    def pop(self, key: str) -> Optional[str]:
        item = self.values.get(key)
        return None if item is None else item[0]


def _unsafe(info: os.stat_result) -> Optional[str]:
    # The files name commands tapeshared runs as root: like sudo and sshd's
    # StrictModes, refuse what someone else could have written.
    if info.st_mode & 0o022:
        return ("writable by group or others (mode %04o): anyone could change the "
                "commands tapeshared runs; chmod go-w" % (info.st_mode & 0o7777))
    if info.st_uid not in (0, os.geteuid()):
        return "owned by uid %d, not by root: chown root" % info.st_uid
    return None


def config_files(path: str) -> List[str]:
    """The main file and its conf.d/*.conf drop-ins, in the order they apply."""
    folder = os.path.join(os.path.dirname(os.path.abspath(path)), "conf.d")
    try:
        problem = _unsafe(os.stat(folder))
    except OSError:
        problem = None
    if problem:
        raise ConfigError(problem, path=folder)
    return [path] + sorted(glob.glob(os.path.join(folder, "*.conf")))


def read_text(path: str) -> str:
    """A config file's text: UTF-8 without a BOM, no control characters, LF lines."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError("not a regular file", path=path)
        problem = _unsafe(info)
        if problem:
            raise ConfigError(problem, path=path)
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE + 1)
    except OSError as exc:
        raise ConfigError("cannot read: %s" % (exc.strerror or exc), path=path)
    if len(data) > MAX_FILE:
        raise ConfigError("larger than %d bytes: not a configuration file" % MAX_FILE,
                          path=path)
    if data.startswith(_BOM):
        raise ConfigError("starts with a byte order mark (UTF-8 BOM): save the file "
                          "without it", path=path, line=1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError("not UTF-8 text: byte 0x%02x at column %d"
                          % (data[exc.start], column), path=path, line=line)
    text = text.replace("\r\n", "\n")
    bad = _CONTROL.search(text.replace("\n", " "))
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise ConfigError("control character U+%04X at column %d" % (
            ord(bad.group()), column), path=path, line=line)
    return text


def _header(path: str, number: int, text: str) -> str:
    if not text.endswith("]"):
        raise ConfigError("section header %r does not end with ']'" % text,
                          path=path, line=number)
    name = text[1:-1]
    if name == "global":
        return name
    kind, sep, export = name.partition(" ")
    if kind == "export" and sep:
        if export != export.strip() or name != name.strip() or not export:
            raise ConfigError("section header %s: write [export NAME], one space "
                              "and no space inside the brackets" % text,
                              path=path, line=number)
        if not _NAME.match(export):
            raise ConfigError("export name %r: use letters, digits, '.', '-' (up to "
                              "63, starting with a letter or digit)" % export,
                              path=path, line=number)
        return name
    if name.strip() in ("global", "export") or name.strip().startswith("export "):
        raise ConfigError("section header %s: write [global] or [export NAME], one "
                          "space and no space inside the brackets" % text,
                          path=path, line=number)
    raise ConfigError("unknown section %s; expected [global] or [export NAME]" % text,
                      path=path, line=number)


def parse(path: str, text: str) -> List[Section]:
    """The sections of one file, in order; ConfigError at file:line on bad syntax.

    The grammar: `[global]` or `[export NAME]` headers; `key = value` (or
    `key: value`), keys case-insensitive; a deeper indented line continues the
    value above; `#` or `;` starts a comment at the start of a line or after
    whitespace. A key or a section given twice in one file is an error.
    """
    sections: List[Section] = []
    seen: Dict[str, int] = {}
    current: Optional[Section] = None
    key: Optional[str] = None
    key_indent = 0
    for number, raw in enumerate(text.split("\n"), 1):
        content = raw
        stripped = raw.lstrip()
        if stripped.startswith(("#", ";")):
            content = ""
        else:
            comment = _INLINE_COMMENT.search(raw)
            if comment:
                content = raw[:comment.start()]
        content = content.strip()
        if not content:
            continue
        indent = len(raw) - len(stripped)
        if current is not None and key is not None and indent > key_indent:
            value, origin = current.values[key]
            current.values[key] = ((value + "\n" + content).strip(), origin)
            continue
        key = None
        if content.startswith("["):
            name = _header(path, number, content)
            if name in seen:
                raise ConfigError("[%s] given twice in this file (first at line %d)"
                                  % (name, seen[name]), path=path, line=number,
                                  section=name)
            seen[name] = number
            current = Section(name, path, number)
            sections.append(current)
            continue
        delimiter = _DELIMITER.search(content)
        if delimiter is None:
            raise ConfigError("expected KEY = VALUE or a [section] header, got %r"
                              % content, path=path, line=number)
        name = content[:delimiter.start()].strip().lower()
        if not name:
            raise ConfigError("a value without a key: %r" % content, path=path,
                              line=number)
        if not _KEY.match(name):
            raise ConfigError("key %r: a key has letters, digits, '_' and '.' only"
                              % content[:delimiter.start()].strip(), path=path,
                              line=number, section=current.name if current else None)
        if current is None:
            raise ConfigError("%s = ... before any [section] header" % name,
                              path=path, line=number)
        if name in current.values:
            raise ConfigError("given twice in this section (first at line %d)"
                              % current.lines[name], path=path, line=number,
                              section=current.name, key=name)
        current.values[name] = (content[delimiter.end():].strip(), path)
        current.lines[name] = number
        key, key_indent = name, indent
    return sections


def read_sections(files: List[str]) -> Tuple[Section, Dict[str, Section]]:
    """[global] merged over all files (a later file's key wins), and the exports
    by section name (each defined in one file only)."""
    glob_section = Section("global")
    exports: Dict[str, Section] = {}
    for path in files:
        for section in parse(path, read_text(path)):
            if section.name == "global":
                glob_section.origin = glob_section.origin or path
                glob_section.headers.setdefault(path, section.headers[path])
                for key, value in section.values.items():
                    glob_section.values[key] = value
                    glob_section.lines[key] = section.lines[key]
                continue
            if section.name in exports:
                raise section.error(None, "export defined twice (also at %s)"
                                    % exports[section.name].where())
            exports[section.name] = section
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
    if not re.match(r"\A[+-]?([0-9]{1,18}(\.[0-9]{0,18})?|\.[0-9]{1,18})\Z"
                    if kind is float else r"\A[+-]?[0-9]{1,18}\Z", value):
        raise section.error(key, "expected a%s number, got %r"
                            % (" whole" if kind is int else "", value))
    number = kind(value)
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
    if len(value.encode("utf-8")) >= PATH_MAX or any(
            len(part.encode("utf-8")) > NAME_MAX for part in value.split("/")):
        raise section.error(key, "too long for a path (at most %d bytes, %d per name)"
                            % (PATH_MAX - 1, NAME_MAX))
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
