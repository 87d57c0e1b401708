"""Slicer's Reload for a module whose code lives in a package: forget the package so it is read again.

Slicer's own Reload re-runs only the module file; its ``from SegTruthLogic import ...`` would get the modules
already in ``sys.modules``, so edits to the package would not show until Slicer restarts.
"""

from __future__ import annotations

import sys


def forget_package(name: str) -> list[str]:
    """Remove package ``name`` and every submodule from ``sys.modules``, deepest first; returns their names.

    The next import reads each from its file again. Objects made by the old code (a running job, a widget
    being cleaned up) keep their old modules alive until they are gone.
    """
    prefix = name + "."
    found = [module for module in list(sys.modules) if module == name or module.startswith(prefix)]
    found.sort(key=lambda module: (-module.count("."), module))
    for module in found:
        del sys.modules[module]
    return found
