"""The toolkit's pure modules (charts, compare) for the UI, without the toolkit's heavy imports.

`catalog_toolkit/__init__.py` imports ibis, which the orchestrator's image does not install
(the kernel extra is the sandbox's). The UI needs only `charts` and `compare`, which import
the standard library and their siblings. When the whole package imports (development, tests,
a host with the kernel extra) it is used as is; when it cannot, the package object is made
without running its `__init__`, so its plain submodules still load, and nothing in this
process could have used the full package anyway.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

PACKAGE = "catalog_toolkit"


def module(name: str) -> ModuleType:
    """`catalog_toolkit.<name>`, e.g. module("charts")."""
    try:
        return importlib.import_module(f"{PACKAGE}.{name}")
    except ImportError:
        if PACKAGE in sys.modules:  # the package imported: the submodule itself is missing
            raise
        spec = importlib.util.find_spec(PACKAGE)
        if spec is None or spec.loader is None:
            raise
        sys.modules[PACKAGE] = importlib.util.module_from_spec(spec)  # its __init__ not run
        return importlib.import_module(f"{PACKAGE}.{name}")
