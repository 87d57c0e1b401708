"""The wheel ships every SegTruthLogic package and the Resources (a non-editable install must work too)."""

from __future__ import annotations

from pathlib import Path

import pytest

# Packaging is checked where the wheel is built (Python >= 3.11), not inside an older Slicer.
tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parent.parent


def test_every_logic_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "SegTruthLogic").rglob("__init__.py")}
    assert found - listed == set()
    assert "SegTruthLogic.Resources" in listed
