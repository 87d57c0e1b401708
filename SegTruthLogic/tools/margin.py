"""Margin: grow or shrink a segment by a distance in mm, as Slicer's Margin effect does.

``vtkITKImageMargin`` thresholds a signed Maurer distance map computed with the voxel spacing, so the
margin is a true distance on anisotropic grids: growing adds every voxel whose centre is within the
margin of a segment voxel's centre. Shrinking grows the background and inverts the result (as the
effect does, because the distance map is exact from the outside), removing every segment voxel within
the margin of a background voxel. Voxels beyond the volume's edge do not count as background.
"""

from __future__ import annotations

import math

import numpy as np
import slicer

from ..core.errors import SegTruthError
from ..scene.editing import DEFAULT_OPTIONS, EditOptions, apply_mask
from ..scene.segments import find_segment, image_array, oriented_image, segment_mask
from ..scene.session import Session


def grown_mask(mask: np.ndarray, volume, margin_mm: float) -> np.ndarray:
    """The (k, j, i) mask grown by ``margin_mm`` (shrunk when negative) on the volume's grid."""
    if not math.isfinite(margin_mm):
        raise SegTruthError(f"Margin must be a finite distance in mm, not {margin_mm!r}.")
    mask = np.asarray(mask, dtype=bool)
    if margin_mm == 0:
        return mask.copy()
    source = mask if margin_mm > 0 else ~mask
    margin = slicer.vtkITKImageMargin()
    margin.SetInputData(oriented_image(source.astype(np.uint8), volume))
    margin.SetBackgroundValue(0)
    margin.CalculateMarginInMMOn()
    margin.SetOuterMarginMM(abs(float(margin_mm)))
    margin.Update()
    grown = image_array(margin.GetOutput()) != 0
    return grown if margin_mm > 0 else ~grown


def margin(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    margin_mm: float,
    options: EditOptions = DEFAULT_OPTIONS,
) -> int:
    """Grow ``segment`` by ``margin_mm`` (shrink when negative); returns the new shape's voxel count before masking."""
    segment_id = find_segment(segmentation_node, segment)
    result = grown_mask(segment_mask(session, segmentation_node, segment_id, volume), volume, margin_mm)
    if margin_mm != 0:
        apply_mask(session, segmentation_node, segment_id, volume, result, "set", options)
    return int(np.count_nonzero(result))


def grow(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    margin_mm: float,
    options: EditOptions = DEFAULT_OPTIONS,
) -> int:
    """Grow ``segment`` by ``margin_mm`` (>= 0) in every direction."""
    _check_positive(margin_mm, "Grow")
    return margin(session, segmentation_node, volume, segment, margin_mm, options)


def shrink(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    margin_mm: float,
    options: EditOptions = DEFAULT_OPTIONS,
) -> int:
    """Shrink ``segment`` by ``margin_mm`` (>= 0) in every direction."""
    _check_positive(margin_mm, "Shrink")
    return margin(session, segmentation_node, volume, segment, -margin_mm, options)


def _check_positive(margin_mm: float, what: str) -> None:
    if not math.isfinite(margin_mm) or margin_mm < 0:
        raise SegTruthError(f"{what} margin must be a distance in mm >= 0, not {margin_mm!r}.")
