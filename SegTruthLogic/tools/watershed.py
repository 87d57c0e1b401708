"""Watershed: segments grown as basins of the image's gradient, as SegmentEditorExtraEffects' Watershed does.

The feature image is SimpleITK's ``GradientMagnitudeRecursiveGaussian`` of the source volume (sigma = the
object scale in mm, default 2, along the voxel spacing); ``MorphologicalWatershedFromMarkers`` (no watershed
line, face connectivity) floods it from the markers: label n for the n-th seed segment (default: the visible
segments with voxels; where they overlap the later one wins). Every voxel of the volume goes to one marker;
each seed segment is then set to its basin through the Segment Editor's masking, so voxels outside the
editable area keep their segments. Larger object scales smooth the gradient and follow only strong edges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
from slicer.util import arrayFromVolume

from ..core.errors import Cancelled, SegTruthError
from ..core.geometry import Grid
from ..core.progress import CancelToken, ProgressCallback, report
from ..scene.editing import DEFAULT_OPTIONS, EditOptions, apply_mask
from ..scene.segments import find_segment, segment_ids, segment_masks
from ..scene.session import Session

DEFAULT_OBJECT_SCALE_MM = 2.0


def _execute(
    process: sitk.ProcessObject,
    inputs: tuple,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
    span: tuple[float, float],
    message: str,
) -> sitk.Image:
    """Run a SimpleITK filter reporting its progress within ``span`` and aborting when ``cancel`` is set."""

    def on_progress() -> None:
        if cancel is not None and cancel.cancelled:
            process.Abort()
        report(progress, span[0] + (span[1] - span[0]) * process.GetProgress(), message)

    process.AddCommand(sitk.sitkProgressEvent, on_progress)
    try:
        result = process.Execute(*inputs)
    except RuntimeError:
        if cancel is not None and cancel.cancelled:
            raise Cancelled(message) from None
        raise
    finally:
        process.RemoveAllCommands()
    if cancel is not None:
        cancel.raise_if_cancelled(message)
    return result


def seed_labels(
    session: Session, segmentation_node, volume, segments: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Markers on the volume's grid (label n: ``ids[n - 1]``) from the seed segments (default: visible, non-empty)."""
    if segments is None:
        display = segmentation_node.GetDisplayNode()
        ids = [s for s in segment_ids(segmentation_node) if display is None or display.GetSegmentVisibility(s)]
    else:
        ids = [find_segment(segmentation_node, s) for s in segments]
    masks = segment_masks(session, segmentation_node, ids, volume)
    if segments is None:
        ids = [s for s in ids if masks[s].any()]
    if len(ids) > 65535:
        raise SegTruthError(f"Watershed takes at most 65535 seed segments, not {len(ids)}.")
    markers = np.zeros(Grid.from_node(volume).shape_kji, dtype=np.uint16)
    for n, segment_id in enumerate(ids, start=1):
        markers[masks[segment_id]] = n
    present = len(np.unique(markers)) - (1 if (markers == 0).any() else 0)
    if present < 2:
        raise SegTruthError(
            f"Watershed needs at least two non-empty seed segments in {segmentation_node.GetName()!r}; it has {present}."
        )
    return markers, ids


def watershed_labels(
    values: np.ndarray,
    markers: np.ndarray,
    spacing: Sequence[float],
    object_scale_mm: float = DEFAULT_OBJECT_SCALE_MM,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """(k, j, i) basin labels of the image ``values`` flooded from ``markers`` (both k, j, i; spacing i, j, k)."""
    if not math.isfinite(object_scale_mm) or object_scale_mm <= 0:
        raise SegTruthError(f"Watershed object scale must be a positive number of mm, not {object_scale_mm!r}.")
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(tuple(float(s) for s in spacing))
    gradient = sitk.GradientMagnitudeRecursiveGaussianImageFilter()
    gradient.SetSigma(float(object_scale_mm))
    feature = _execute(gradient, (image,), progress, cancel, (0.0, 0.4), "Watershed: gradient")
    labels = sitk.GetImageFromArray(markers)
    labels.CopyInformation(feature)
    flood = sitk.MorphologicalWatershedFromMarkersImageFilter()
    flood.SetMarkWatershedLine(False)
    flood.SetFullyConnected(False)
    basins = _execute(flood, (feature, labels), progress, cancel, (0.4, 1.0), "Watershed: flooding")
    return sitk.GetArrayFromImage(basins)


def watershed(
    session: Session,
    segmentation_node,
    volume,
    segments: Sequence[str] | None = None,
    object_scale_mm: float = DEFAULT_OBJECT_SCALE_MM,
    options: EditOptions = DEFAULT_OPTIONS,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[str]:
    """Replace each seed segment by its watershed basin; returns the seed segments' IDs. Nothing is written
    when cancelled."""
    markers, ids = seed_labels(session, segmentation_node, volume, segments)
    basins = watershed_labels(
        arrayFromVolume(volume), markers, Grid.from_node(volume).spacing, object_scale_mm, progress, cancel
    )
    write_labels(session, segmentation_node, volume, ids, basins, options)
    return ids


def write_labels(
    session: Session, segmentation_node, volume, ids: Sequence[str], labels: np.ndarray, options: EditOptions
) -> None:
    """Set segment ``ids[n - 1]`` to ``labels == n`` for each n, through the Segment Editor's masking."""
    for n, segment_id in enumerate(ids, start=1):
        apply_mask(session, segmentation_node, segment_id, volume, labels == n, "set", options)
