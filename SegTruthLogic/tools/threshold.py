"""Threshold: a fixed intensity range, or one computed by an automatic method (Otsu, Triangle, ...)."""

from __future__ import annotations

import numpy as np
import slicer
from slicer.util import arrayFromVolume

from ..core.errors import SegTruthError
from ..core.intensities import check_finite
from ..core.labels import LabelTable
from ..core.sources import SOURCE_FILE_ATTRIBUTE
from ..scene.editing import DEFAULT_OPTIONS, EditOptions, Mode, apply_mask
from ..scene.segments import ensure_segment
from ..scene.session import Session

# Methods of vtkITKImageThresholdCalculator, by the names Slicer's Threshold effect shows.
AUTO_METHODS = {
    "otsu": "SetMethodToOtsu",
    "triangle": "SetMethodToTriangle",
    "maximum_entropy": "SetMethodToMaximumEntropy",
    "huang": "SetMethodToHuang",
    "intermodes": "SetMethodToIntermodes",
    "isodata": "SetMethodToIsoData",
    "li": "SetMethodToLi",
    "moments": "SetMethodToMoments",
    "renyi_entropy": "SetMethodToRenyiEntropy",
    "shanbhag": "SetMethodToShanbhag",
    "yen": "SetMethodToYen",
    "kittler_illingworth": "SetMethodToKittlerIllingworth",
}


def auto_threshold(volume, method: str = "otsu", mode: str = "above") -> tuple[float, float]:
    """The intensity range an automatic method picks: from the threshold up (``above``) or down (``below``)."""
    key = method.lower().replace("-", "_").replace(" ", "_")
    if key not in AUTO_METHODS:
        raise SegTruthError(f"Unknown threshold method {method!r}; use one of {', '.join(AUTO_METHODS)}.")
    if mode not in ("above", "below"):
        raise SegTruthError(f"Threshold mode {mode!r} must be 'above' or 'below'.")
    calculator = slicer.vtkITKImageThresholdCalculator()
    calculator.SetInputData(volume.GetImageData())
    getattr(calculator, AUTO_METHODS[key])()
    calculator.Update()
    value = float(calculator.GetThreshold())
    low, high = volume.GetImageData().GetScalarRange()
    return (value, float(high)) if mode == "above" else (float(low), value)


def threshold(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    low: float | None = None,
    high: float | None = None,
    method: str | None = None,
    method_mode: str = "above",
    mode: Mode = "set",
    options: EditOptions = DEFAULT_OPTIONS,
    table: LabelTable | None = None,
) -> tuple[float, float]:
    """Voxels with ``low <= value <= high`` go into ``segment`` (created if absent); returns the range used.

    Give ``low``/``high`` (either may be open), or ``method`` for an automatic threshold.
    """
    values = arrayFromVolume(volume)
    # a volume built in memory (files are checked when they are read): Otsu on NaN would return -inf
    check_finite(values, volume.GetAttribute(SOURCE_FILE_ATTRIBUTE) or f"Volume {volume.GetName()!r}")
    if method is not None:
        if low is not None or high is not None:
            raise SegTruthError("Give either a threshold range or an automatic method, not both.")
        low, high = auto_threshold(volume, method, method_mode)
    if low is None and high is None:
        raise SegTruthError("Threshold needs a range (low, high) or an automatic method.")
    low = float(np.nanmin(values)) if low is None else float(low)
    high = float(np.nanmax(values)) if high is None else float(high)
    if low > high:
        raise SegTruthError(f"Threshold range {low}..{high} has its low end above its high end.")
    mask = (values >= low) & (values <= high)
    segment_id = ensure_segment(segmentation_node, segment, table)
    apply_mask(session, segmentation_node, segment_id, volume, mask, mode, options)
    return low, high
