"""SegTruth logic: ground-truth segmentation on Slicer's own classes, with no Qt.

Runs inside the Slicer application and headless on the ``slicer-core`` wheel. Importing the package loads
nothing of Slicer: ``segtruth --help`` answers at once; ``Session`` (and Slicer with it) loads on first use.
"""

from __future__ import annotations

from typing import Any

from .core.errors import Cancelled, SegTruthError

__all__ = ["Cancelled", "SegTruthError", "Session"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Session":  # Slicer's libraries take seconds to load: only when a session is asked for
        from .scene.session import Session

        return Session
    raise AttributeError(f"module 'SegTruthLogic' has no attribute {name!r}")
