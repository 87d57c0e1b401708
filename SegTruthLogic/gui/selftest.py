"""The module's self-test inside Slicer: the Testing/ pytest suite, so Slicer's ctest runs what CI runs.

The test tools (pytest and the suite's readers) are installed for the test run only, never when the module
is used, and pytest runs in-process so the tests see the application's own Slicer classes.
"""

from __future__ import annotations

from pathlib import Path

from ..core import slicer_deps

# Everything the suite exercises: tools, recipes, inference, DICOM SEG, and the test tools themselves.
SUITE_FEATURES = ["tests", "inference", "recipes", "grow", "dicom_seg"]


def run_suite(testing: str | Path, extra: list[str] | None = None) -> int:
    """pytest's exit code for the suite in ``testing`` (0 when every test passed or was skipped)."""
    slicer_deps.install(slicer_deps.missing(SUITE_FEATURES), confirm=lambda text: True)
    import pytest

    arguments = [str(testing), "-q", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestUnknownMarkWarning"]
    return int(pytest.main(arguments + list(extra or [])))
