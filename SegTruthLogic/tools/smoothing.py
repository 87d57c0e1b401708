"""Smoothing: median, opening, closing and Gaussian of one segment, and joint smoothing of several, as Slicer's
Smoothing effect does.

One segment goes through the effect's own VTK pipeline on its mask on the volume's grid:

- median: ``vtkImageMedian3D`` with a box kernel; opening / closing: ``vtkImageOpenClose3D`` (open value 1 /
  close value 1), whose structuring element is the ellipsoid inscribed in the box. The kernel size in mm
  becomes, per axis, the nearest odd number of voxels ``round((mm / spacing + 1) / 2) * 2 - 1`` (an even
  kernel would shift the shape), so 3 mm on 1 x 1 x 2.5 mm voxels is 3 x 3 x 1.
- Gaussian: the mask as 0 / 255 (uint8), ``vtkImageGaussianSmooth`` with sigma in voxels ``sigma_mm / spacing``
  and radius factor 4, then voxels >= 127 are inside.

Joint smoothing smooths several segments at once so that they neither overlap nor open gaps between them: the
union of the segments is smoothed as one Gaussian (inside where the smoothed union is >= 0.5), and each voxel of
the smoothed union goes to the segment whose own smoothed mask is largest there (ties to the earlier segment).
(Slicer's joint smoothing works on surfaces, with Taubin smoothing of a shared mesh; this voxel rule gives the
same promise, every voxel in exactly one segment or none, without a surface round trip.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import vtk

from ..core.errors import SegTruthError
from ..core.geometry import Grid
from ..core.progress import CancelToken, ProgressCallback, report
from ..scene.editing import DEFAULT_OPTIONS, EditOptions, apply_mask
from ..scene.segments import find_segment, image_array, oriented_image, segment_ids, segment_masks
from ..scene.session import Session

Method = Literal["median", "opening", "closing", "gaussian"]
METHODS = ("median", "opening", "closing", "gaussian")
RADIUS_FACTOR = 4.0  # the Gaussian kernel reaches 4 sigma, as in Slicer's effect


def kernel_voxels(volume, kernel_mm: float) -> tuple[int, int, int]:
    """The odd box kernel (i, j, k voxels) nearest ``kernel_mm`` on each axis of the volume's grid."""
    if not math.isfinite(kernel_mm) or kernel_mm <= 0:
        raise SegTruthError(f"Smoothing kernel size must be a positive number of mm, not {kernel_mm!r}.")
    spacing = Grid.of(volume).spacing
    return tuple(max(1, round((kernel_mm / s + 1) / 2) * 2 - 1) for s in spacing)  # type: ignore[return-value]


def smoothed_mask(
    mask: np.ndarray, volume, method: Method = "median", kernel_mm: float = 3.0, sigma_mm: float = 1.0
) -> np.ndarray:
    """The (k, j, i) mask smoothed by one of Slicer's single-segment methods (``volume``: the node or its Grid)."""
    if method not in METHODS:
        raise SegTruthError(f"Unknown smoothing method {method!r}; use one of {', '.join(METHODS)}.")
    image = oriented_image(np.asarray(mask, dtype=np.uint8), volume)
    if method == "gaussian":
        if not math.isfinite(sigma_mm) or sigma_mm <= 0:
            raise SegTruthError(f"Gaussian standard deviation must be a positive number of mm, not {sigma_mm!r}.")
        scaled = image_array(image)
        scaled *= 255
        smooth = vtk.vtkImageGaussianSmooth()
        smooth.SetInputData(image)
        smooth.SetStandardDeviations(*(float(sigma_mm / s) for s in Grid.of(volume).spacing))
        smooth.SetRadiusFactor(RADIUS_FACTOR)
        smooth.Update()
        return image_array(smooth.GetOutput()) >= 127
    size = kernel_voxels(volume, kernel_mm)
    if method == "median":
        smooth = vtk.vtkImageMedian3D()
    else:
        smooth = vtk.vtkImageOpenClose3D()
        smooth.SetOpenValue(1 if method == "opening" else 0)
        smooth.SetCloseValue(0 if method == "opening" else 1)
    smooth.SetInputData(image)
    smooth.SetKernelSize(*size)
    smooth.Update()
    return image_array(smooth.GetOutput()) != 0


def smooth(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    method: Method = "median",
    kernel_mm: float = 3.0,
    sigma_mm: float = 1.0,
    options: EditOptions = DEFAULT_OPTIONS,
) -> int:
    """Smooth ``segment`` by ``method`` (kernel size or Gaussian sigma in mm); returns its voxel count before masking."""
    segment_id = find_segment(segmentation_node, segment)
    mask = segment_masks(session, segmentation_node, [segment_id], volume)[segment_id]
    result = smoothed_mask(mask, volume, method, kernel_mm, sigma_mm)
    apply_mask(session, segmentation_node, segment_id, volume, result, "set", options)
    return int(np.count_nonzero(result))


def _gaussian(array: np.ndarray, volume, sigma_mm: float) -> np.ndarray:
    image = oriented_image(np.asarray(array, dtype=np.float32), volume)
    smooth = vtk.vtkImageGaussianSmooth()
    smooth.SetInputData(image)
    smooth.SetStandardDeviations(*(float(sigma_mm / s) for s in Grid.of(volume).spacing))
    smooth.SetRadiusFactor(RADIUS_FACTOR)
    smooth.Update()
    return image_array(smooth.GetOutput()).copy()


def jointly_smoothed(
    masks: Sequence[np.ndarray],
    volume,
    sigma_mm: float = 1.0,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """(k, j, i) labels (n: the n-th mask, 0: none) of the masks smoothed together (see the module's rule).

    ``volume``: the volume node or its ``Grid``. Progress after each Gaussian; cancel checked between them.
    """
    if not math.isfinite(sigma_mm) or sigma_mm <= 0:
        raise SegTruthError(f"Joint smoothing's standard deviation must be a positive number of mm, not {sigma_mm!r}.")
    if not masks:
        raise SegTruthError("Joint smoothing needs at least one segment.")
    union = np.zeros(masks[0].shape, dtype=bool)
    for m in masks:
        union |= m
    steps = len(masks) + 1
    report(progress, 0.0, "Joint smoothing: the union")
    inside = _gaussian(union, volume, sigma_mm) >= 0.5
    best = np.zeros(union.shape, dtype=np.float32)
    labels = np.zeros(union.shape, dtype=np.uint16)
    for n, m in enumerate(masks, start=1):
        if cancel is not None:
            cancel.raise_if_cancelled("Joint smoothing")
        report(progress, n / steps, f"Joint smoothing: segment {n} of {len(masks)}")
        weight = _gaussian(m, volume, sigma_mm)
        wins = inside & (weight > best)
        labels[wins] = n
        best[wins] = weight[wins]
    report(progress, 1.0, "Joint smoothing done")
    return labels


def write_joint_labels(
    session: Session, segmentation_node, volume, ids: Sequence[str], labels: np.ndarray, options: EditOptions
) -> None:
    """Set each segment of ``ids`` to its label (n: the n-th) of ``jointly_smoothed``."""
    for n, segment_id in enumerate(ids, start=1):
        apply_mask(session, segmentation_node, segment_id, volume, labels == n, "set", options)


def joint_smooth(
    session: Session,
    segmentation_node,
    volume,
    segments: Sequence[str] | None = None,
    sigma_mm: float = 1.0,
    options: EditOptions = DEFAULT_OPTIONS,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[str]:
    """Smooth ``segments`` (default: the visible ones) together, with no gaps or overlaps; returns their IDs."""
    if segments is None:
        display = segmentation_node.GetDisplayNode()
        ids = [s for s in segment_ids(segmentation_node) if display is None or display.GetSegmentVisibility(s)]
    else:
        ids = [find_segment(segmentation_node, s) for s in segments]
    if not ids:
        raise SegTruthError(f"Joint smoothing found no (visible) segment in {segmentation_node.GetName()!r}.")
    masks = segment_masks(session, segmentation_node, ids, volume)
    labels = jointly_smoothed([masks[s] for s in ids], volume, sigma_mm, progress, cancel)
    write_joint_labels(session, segmentation_node, volume, ids, labels, options)
    return ids
