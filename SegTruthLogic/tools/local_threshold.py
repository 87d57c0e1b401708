"""Local threshold: a click keeps only the part of a threshold range connected to it, as
SegmentEditorExtraEffects' Local threshold does.

The range: given (``low``, ``high``), or picked around the click as the lowest and highest value within
``brush_mm`` of it (the histogram brush of the effect, with its default minimum / maximum). Then, with the
minimum diameter m in mm (an odd box kernel per axis, as Smoothing rounds kernels):

1. the voxels in range are eroded by the m kernel, and the face-connected islands of at least 125 voxels
   (5 x 5 x 5) kept: structures thinner than m and small specks drop out;
2. each click snaps to the nearest eroded-island voxel within half the kernel (no island near it: nothing);
3. ``masking`` (default): the other islands, dilated by twice the kernel, are cut away from the voxels in
   range, and the region face-connected to the clicks is kept; it is the clicked structure, cut off from
   its neighbours where only bridges thinner than m joined them;
   ``watershed``: the clicked island, the other islands and the voxels out of range are markers of a
   watershed on the gradient magnitude (sigma = the feature size in mm), and the clicked island's basin is kept;
   ``growcut``: the same markers are the seeds of SegTruth's grow from seeds (whole image), and the clicked
   island's region is kept;
4. the result is added to the segment through the Segment Editor's masking, its intensity range narrowed
   to the threshold range.

(The effect's GrowCut runs Slicer's grow-cut filter; here it is SegTruth's own grow from seeds, the one the
``grow`` tool uses.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import numpy as np
import slicer
import vtk
from slicer.util import arrayFromVolume

from ..core.errors import SegTruthError
from ..core.geometry import Grid
from ..core.labels import LabelTable
from ..core.progress import CancelToken, ProgressCallback, report
from ..scene.editing import DEFAULT_OPTIONS, EditOptions, apply_mask
from ..scene.segments import ensure_segment, image_array, oriented_image
from ..scene.session import Session
from .flood_fill import connected_in_range
from .grow import grow_labels
from .paint import Point, sphere_mask, voxel_at
from .smoothing import kernel_voxels
from .watershed import watershed_labels

Algorithm = Literal["masking", "watershed", "growcut"]
ALGORITHMS = ("masking", "watershed", "growcut")
MIN_ISLAND_VOXELS = 125


def local_range(volume, ras: Point, brush_mm: float) -> tuple[float, float]:
    """The lowest and highest value within ``brush_mm`` of the RAS point."""
    values = arrayFromVolume(volume)[sphere_mask(volume, ras, brush_mm)]
    return float(values.min()), float(values.max())


def _dilate_erode(mask: np.ndarray, grid: Grid, size: Sequence[int], dilate: bool) -> np.ndarray:
    morph = vtk.vtkImageDilateErode3D()
    morph.SetInputData(oriented_image(mask.astype(np.uint8), grid))
    morph.SetDilateValue(1 if dilate else 0)
    morph.SetErodeValue(0 if dilate else 1)
    morph.SetKernelSize(*(int(s) for s in size))
    morph.Update()
    return image_array(morph.GetOutput()) != 0


def _islands(mask: np.ndarray, grid: Grid) -> np.ndarray:
    math_filter = slicer.vtkITKIslandMath()
    math_filter.SetInputData(oriented_image(mask.astype(np.uint32), grid))
    math_filter.SetFullyConnected(False)
    math_filter.SetMinimumSize(MIN_ISLAND_VOXELS)
    math_filter.Update()
    return image_array(math_filter.GetOutput()) != 0


def _snap(islands: np.ndarray, index: tuple[int, int, int], size: Sequence[int]) -> tuple[int, int, int] | None:
    """The island voxel nearest ``index`` (k, j, i) in the box of half the kernel around it (ties: first found)."""
    half = [int(math.ceil(s - 1) / 2) for s in size]  # i, j, k
    lo = [max(index[a] - half[2 - a], 0) for a in range(3)]
    hi = [min(index[a] + half[2 - a], islands.shape[a] - 1) for a in range(3)]
    box = islands[lo[0] : hi[0] + 1, lo[1] : hi[1] + 1, lo[2] : hi[2] + 1]
    found = np.argwhere(box)
    if not len(found):
        return None
    found += np.array(lo)
    distance = np.sum((found - np.array(index)) ** 2, axis=1)
    return tuple(int(v) for v in found[int(np.argmin(distance))])  # type: ignore[return-value]


def local_threshold_mask(
    volume,
    points: Sequence[Point],
    low: float,
    high: float,
    minimum_diameter_mm: float = 3.0,
    feature_size_mm: float = 3.0,
    algorithm: Algorithm = "masking",
) -> np.ndarray:
    """The (k, j, i) region the clicks pick out of the range [low, high] (see the module's rule)."""
    clicks = [voxel_at(volume, p) for p in points]
    return local_threshold_region(
        arrayFromVolume(volume),
        Grid.from_node(volume),
        clicks,
        low,
        high,
        minimum_diameter_mm,
        feature_size_mm,
        algorithm,
    )


def local_threshold_region(
    values: np.ndarray,
    grid: Grid,
    clicks: Sequence[tuple[int, int, int]],
    low: float,
    high: float,
    minimum_diameter_mm: float = 3.0,
    feature_size_mm: float = 3.0,
    algorithm: Algorithm = "masking",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """``local_threshold_mask`` on the image's values and grid, the clicks as (k, j, i) voxels: touches no MRML
    node, so a worker thread can run it (progress after each stage, cancel checked between them)."""
    if algorithm not in ALGORITHMS:
        raise SegTruthError(f"Unknown local threshold algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}.")
    if low > high:
        raise SegTruthError(f"Threshold range {low}..{high} has its low end above its high end.")

    def stage(fraction: float, message: str) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled("Local threshold")
        report(progress, fraction, f"Local threshold: {message}")

    size = kernel_voxels(grid, minimum_diameter_mm)
    stage(0.0, "the range, eroded")
    in_range = (values >= low) & (values <= high)
    eroded = _dilate_erode(in_range, grid, size, dilate=False)
    stage(0.3, "its islands")
    islands = _islands(eroded, grid)
    seeds = [s for s in (_snap(islands, click, size) for click in clicks) if s is not None]
    if not seeds:
        report(progress, 1.0, "Local threshold: no island at the clicks")
        return np.zeros(in_range.shape, dtype=bool)
    spacing = grid.spacing
    selected = connected_in_range(islands.astype(np.uint8), spacing, seeds, 1, 1)
    stage(0.5, f"refined by {algorithm}")
    if algorithm == "masking":
        others = _dilate_erode(islands & ~selected, grid, [2 * s - 1 for s in size], dilate=True)
        region = connected_in_range((in_range & ~others).astype(np.uint8), spacing, seeds, 1, 1)
    else:
        markers = np.where(islands, 1, 0).astype(np.uint16)
        markers[selected] = 2
        markers[~in_range] = 3
        if algorithm == "growcut":
            region = grow_labels(values, markers, spacing, margin=None) == 2
        else:
            region = watershed_labels(values, markers, spacing, feature_size_mm, cancel=cancel) == 2
    report(progress, 1.0, "Local threshold done")
    return region


def clicks_and_range(
    volume, points: Point | Sequence[Point], low: float | None, high: float | None, brush_mm: float = 5.0
) -> tuple[list[tuple[int, int, int]], float, float]:
    """The clicks' (k, j, i) voxels and the range: given, or the values within ``brush_mm`` of the first click."""
    clicks = np.asarray(points, dtype=float)
    clicks = clicks[None, :] if clicks.ndim == 1 else clicks
    if clicks.ndim != 2 or clicks.shape[1] != 3 or not len(clicks):
        raise SegTruthError(f"Local threshold needs a RAS point (x, y, z) or a list of them, not {points!r}.")
    if (low is None) != (high is None):
        raise SegTruthError("Give both ends of the local threshold range, or neither (picked around the click).")
    if low is None or high is None:
        low, high = local_range(volume, clicks[0], brush_mm)
    return [voxel_at(volume, p) for p in clicks], float(low), float(high)


def add_region(
    session: Session,
    segmentation_node,
    volume,
    segment_id: str,
    region: np.ndarray,
    low: float,
    high: float,
    options: EditOptions = DEFAULT_OPTIONS,
) -> None:
    """Add ``region`` to the segment through the masking settings, their intensity range narrowed to low..high."""
    in_range = (low, high)
    if options.intensity_range is not None:
        in_range = (max(low, options.intensity_range[0]), min(high, options.intensity_range[1]))
    if in_range[0] <= in_range[1]:
        apply_mask(
            session, segmentation_node, segment_id, volume, region, "add", replace(options, intensity_range=in_range)
        )


def local_threshold(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    points: Point | Sequence[Point],
    low: float | None = None,
    high: float | None = None,
    minimum_diameter_mm: float = 3.0,
    feature_size_mm: float = 3.0,
    algorithm: Algorithm = "masking",
    brush_mm: float = 5.0,
    options: EditOptions = DEFAULT_OPTIONS,
    table: LabelTable | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[float, float]:
    """Add the region the clicks (RAS points) pick out of a threshold range to ``segment``; returns the range.

    Without ``low``/``high`` the range is the values within ``brush_mm`` of the first click.
    """
    voxels, low, high = clicks_and_range(volume, points, low, high, brush_mm)
    values, grid = arrayFromVolume(volume), Grid.from_node(volume)
    region = local_threshold_region(
        values, grid, voxels, low, high, minimum_diameter_mm, feature_size_mm, algorithm, progress, cancel
    )
    add_region(
        session,
        segmentation_node,
        volume,
        ensure_segment(segmentation_node, segment, table),
        region,
        low,
        high,
        options,
    )
    return low, high
