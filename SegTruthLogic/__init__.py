"""SegTruth logic: ground-truth segmentation on Slicer's own classes, with no Qt.

Runs inside the Slicer application and headless on the ``slicer-core`` wheel.
"""

from .errors import Cancelled, SegTruthError
from .session import Session

__all__ = ["Cancelled", "SegTruthError", "Session"]
__version__ = "0.1.0"
