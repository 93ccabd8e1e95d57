"""The pure core imports with pyudev, pyroute2, systemd and tenacity unavailable."""

import ast
import os
import subprocess
import sys

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "tapeshared")
PURE = ("errors", "model", "identity", "config", "desired", "ietconf", "ietaccess",
        "ietproc", "plan", "fwrules", "lioplan", "tgtplan", "inifile", "configexport")
# Importing these must not pull a third-party library in at import time either.
LAZY = ("cli", "compose", "discovery", "addrwatch", "iet", "lio", "tgt", "reconcile",
        "retry", "daemon", "udevwatch", "sdnotify", "logsetup", "state", "status")

BLOCKER = """
import sys
class Block:
    def find_module(self, name, path=None):
        return self if name.split('.')[0] in ('pyudev', 'pyroute2', 'systemd',
                                             'tenacity', 'gi') else None
    def load_module(self, name):
        raise ImportError('blocked for this test: ' + name)
    def find_spec(self, name, path=None, target=None):
        if self.find_module(name):
            raise ImportError('blocked for this test: ' + name)
        return None
sys.meta_path.insert(0, Block())
import importlib
for name in sys.argv[1:]:
    importlib.import_module('tapeshared.' + name)
print('ok')
"""


def test_core_and_adapters_import_without_third_party_libraries():
    modules = [m for m in PURE + LAZY if os.path.exists(os.path.join(PACKAGE, m + ".py"))]
    out = subprocess.run([sys.executable, "-c", BLOCKER] + modules,
                         cwd=os.path.dirname(PACKAGE), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_pure_modules_import_only_the_stdlib_and_each_other():
    for name in PURE:
        path = os.path.join(PACKAGE, name + ".py")
        if not os.path.exists(path):
            continue
        tree = ast.parse(open(path).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                top = node.module.split(".")
                if top[0] == "tapeshared" and len(top) > 1:
                    assert top[1] in PURE, "%s imports adapter %s" % (name, node.module)
                else:
                    assert top[0] != "tapeshared" or node.module == "tapeshared"
                    assert top[0] not in ("pyudev", "pyroute2", "systemd", "tenacity")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] not in (
                        "pyudev", "pyroute2", "systemd", "tenacity", "subprocess"), name
