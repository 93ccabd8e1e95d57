"""The package's layers, as a rule on directories: who may import whom.

- pure: every module in core/ and config/, every module in backends/ and
  firewall/ except the adapters (named backend.py), and ports.py and
  reconcile.py. Pure modules import only the standard library and pure modules.
- adapters: each third-party library (and subprocess) has exactly one importer.
- no layer imports a layer above it, and the import graph has no cycles.
"""

import ast
import os
from typing import Dict, Set

import pytest
from support.modules import PACKAGE, modules

THIRD_PARTY = {"pyudev": "host/udev.py", "pyroute2": "host/addrwatch.py",
               "systemd": "daemon/logsetup.py", "tenacity": "host/retry.py",
               "subprocess": "host/runner.py"}
# what pure code must not touch: the outside world's libraries and channels
NOT_PURE = set(THIRD_PARTY) | {"socket", "select", "selectors", "fcntl", "signal", "gi"}
# what each layer may import from the package (by module path prefix)
ALLOWED = {
    "core/": ("core/",),
    "config/": ("core/", "config/"),
    "backends/": ("core/", "backends/"),
    "firewall/": ("core/", "firewall/"),
    "host/": ("core/", "host/"),
    "daemon/": ("core/", "daemon/", "host/", "ports.py", "reconcile.py",
                "backends/common.py", "firewall/spec.py"),
    "ports.py": ("core/", "backends/common.py", "firewall/spec.py"),
    "migrate/": ("core/", "config/", "backends/", "migrate/", "host/"),
    "reconcile.py": ("core/", "backends/common.py", "firewall/spec.py", "ports.py"),
}
ADAPTER_EXTRA = ("host/",)  # what a backends/ or firewall/ backend.py may also import

MODULES = modules()
BY_NAME = {dotted: rel for rel, dotted in MODULES.items()}


def is_pure(rel: str) -> bool:
    if rel.startswith(("core/", "config/")) or rel in ("ports.py", "reconcile.py"):
        return True
    if rel.startswith("migrate/"):  # the parsers and renderer; files/command touch the host
        return rel not in ("migrate/files.py", "migrate/command.py")
    return rel.startswith(("backends/", "firewall/")) and not rel.endswith("/backend.py")


def imports(rel: str) -> Set[str]:
    """Every module name rel imports (`from pkg import mod` counts mod)."""
    with open(os.path.join(PACKAGE, rel)) as handle:
        tree = ast.parse(handle.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            for alias in node.names:
                if node.module + "." + alias.name in BY_NAME:
                    names.add(node.module + "." + alias.name)
    return names


def internal(rel: str) -> Set[str]:
    """The package modules rel imports (package __init__ files left out)."""
    return set(BY_NAME[n] for n in imports(rel) if n in BY_NAME and BY_NAME[n] != rel
               and not BY_NAME[n].endswith("__init__.py"))


def test_the_tree_has_the_documented_layers():
    tops = set(rel.split("/")[0] for rel in MODULES)
    assert {"core", "config", "backends", "firewall", "host", "daemon"} <= tops
    for backend in ("iet", "lio", "tgt"):
        assert "backends/%s/backend.py" % backend in MODULES
        assert "backends/%s/plan.py" % backend in MODULES
    for wall in ("iptables", "nft"):
        assert "firewall/%s/backend.py" % wall in MODULES
        assert "firewall/%s/plan.py" % wall in MODULES


@pytest.mark.parametrize("rel", sorted(r for r in MODULES if is_pure(r)))
def test_pure_modules_import_only_the_stdlib_and_pure_modules(rel):
    for name in imports(rel):
        top = name.split(".")[0]
        if top == "tapeshared":
            target = BY_NAME.get(name)
            assert target is None or target.endswith("__init__.py") or is_pure(target), \
                "%s (pure) imports the adapter %s" % (rel, name)
        else:
            assert top not in NOT_PURE, "%s (pure) imports %s" % (rel, name)


@pytest.mark.parametrize("library, owner", sorted(THIRD_PARTY.items()))
def test_each_library_has_one_importer(library, owner):
    importers = sorted(rel for rel in MODULES
                       if any(n.split(".")[0] == library for n in imports(rel)))
    assert importers == [owner]


@pytest.mark.parametrize("rel", sorted(MODULES))
def test_no_layer_imports_a_layer_above_it(rel):
    layer = next((prefix for prefix in ALLOWED if rel.startswith(prefix)), None)
    if layer is None:
        return  # the top: cli, app, status, __main__
    allowed = ALLOWED[layer]
    if layer in ("backends/", "firewall/") and rel.endswith("/backend.py"):
        allowed = allowed + ADAPTER_EXTRA
    for target in internal(rel):
        assert target.startswith(allowed), "%s imports %s (allowed: %s)" % (
            rel, target, ", ".join(allowed))


def test_the_import_graph_has_no_cycles():
    graph = {rel: internal(rel) for rel in MODULES}
    state: Dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: %s" % " -> ".join(path + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


@pytest.mark.parametrize("rel", sorted(MODULES))
def test_modules_stay_readable(rel):
    with open(os.path.join(PACKAGE, rel)) as handle:
        text = handle.read()
    assert text.startswith('"""'), "%s has no docstring saying what it is for" % rel
    assert text.count("\n") <= 330, "%s has %d lines: split it" % (rel, text.count("\n"))
