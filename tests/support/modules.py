"""The package's modules, found on disk (for the layering and import tests)."""

import os
from typing import Dict, List

import tapeshared

PACKAGE = os.path.dirname(os.path.abspath(tapeshared.__file__))


def modules() -> Dict[str, str]:
    """Module path relative to the package (core/model.py) -> dotted name."""
    found = {}
    for top, _dirs, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(top, name), PACKAGE).replace(os.sep, "/")
                dotted = "tapeshared." + rel[:-3].replace("/", ".")
                found[rel] = dotted[:-len(".__init__")] if rel.endswith("__init__.py") \
                    else dotted
    return found


def module_names() -> List[str]:
    """Every dotted module name but __main__ (which runs the CLI when imported)."""
    return sorted(name for name in modules().values() if not name.endswith("__main__"))
