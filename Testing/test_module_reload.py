"""Reload in Slicer reads SegTruthLogic again: ``forget_package`` on a real package, and on SegTruthLogic itself.

Forgetting SegTruthLogic in the test process would split it in two (old classes held by the tests, new ones
imported later), so that case runs in a forked child.
"""

from __future__ import annotations

import importlib
import sys

from isolated import run_isolated

from SegTruthLogic.gui import forget_package


def write_package(root, version: int) -> None:
    (root / "reloadable" / "deep").mkdir(parents=True, exist_ok=True)
    (root / "reloadable" / "__init__.py").write_text("")
    (root / "reloadable" / "deep" / "__init__.py").write_text("")
    (root / "reloadable" / "deep" / "leaf.py").write_text(f"VERSION = {version}\n")
    (root / "reloadable" / "top.py").write_text("from .deep.leaf import VERSION\n")
    (root / "reloadable_other.py").write_text(f"VERSION = {version}\n")


def test_forgetting_a_package_makes_the_next_import_read_its_files(tmp_path, monkeypatch):
    write_package(tmp_path, 1)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("reloadable", "reloadable.deep", "reloadable.deep.leaf", "reloadable.top", "reloadable_other"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert importlib.import_module("reloadable.top").VERSION == 1
    other = importlib.import_module("reloadable_other")
    write_package(tmp_path, 2)
    importlib.invalidate_caches()
    forgotten = forget_package("reloadable")
    assert forgotten == ["reloadable.deep.leaf", "reloadable.deep", "reloadable.top", "reloadable"]  # deepest first
    assert sys.modules["reloadable_other"] is other  # a name that only starts the same is another package
    assert importlib.import_module("reloadable.top").VERSION == 2
    assert forget_package("not_imported_anywhere") == []
    forget_package("reloadable")


def segtruthlogic_modules() -> list[str]:
    return sorted(name for name in sys.modules if name.split(".")[0] == "SegTruthLogic")


def reimport_segtruthlogic() -> int:
    """In a child: forget SegTruthLogic, import it again; 0 when every class and module is a new one."""
    import SegTruthLogic.gui

    old_error, old_parameters, old_gui = (
        SegTruthLogic.SegTruthError,
        SegTruthLogic.gui.PanelParameters,
        SegTruthLogic.gui,
    )
    loaded = segtruthlogic_modules()
    forgotten = forget_package("SegTruthLogic")
    assert sorted(forgotten) == loaded and forgotten[-1] == "SegTruthLogic", forgotten
    assert "SegTruthLogic.gui.parameters" in forgotten and segtruthlogic_modules() == []
    import SegTruthLogic
    import SegTruthLogic.gui as gui

    fresh = gui is not old_gui and gui.PanelParameters is not old_parameters
    fresh = fresh and SegTruthLogic.SegTruthError is not old_error and gui.forget_package is not forget_package
    return 0 if fresh else 1


def test_forgetting_segtruthlogic_gives_fresh_modules_on_the_next_import():
    outcome = run_isolated(reimport_segtruthlogic, timeout=120)
    assert outcome.returncode == 0, outcome.describe()
