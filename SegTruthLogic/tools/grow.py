"""Grow from seeds on MRML nodes: seeds from segments or labelmaps, the editable area, the result into segments.

The algorithm is :mod:`.grow_kernel` (numba, arrays only); this module is its glue to the scene. Every front
end grows through ``grow_inputs`` + ``GrowCut`` + ``write_grown``: the CLI (``segtruth grow``), recipe steps
(``grow``) and the web app's effect (which keeps the ``GrowCut`` between strokes for incremental previews),
so the same case gives the same voxels whichever runs it.

"Inside a segment" means what Slicer's Segment Editor means with editable area "inside segment X": growing
happens only in X's voxels, seeds outside X are ignored, the result is confined to X, and X is not a seed.
(Slicer's AbstractScriptedSegmentEditorAutoCompleteEffect passes the edit mask to the grow-cut filter, which
skips masked voxels, seeds included, and applies the preview through ``modifySegmentByLabelmap``, which
leaves voxels outside the editable area as they were.) Paint seeds inside X with overwrite "none" so X keeps
their voxels, as Slicer users do.

The Slicer module's panel uses Slicer's own "Grow from seeds" effect, not this module: inside Slicer the
Segment Editor already has the effect with its live preview, undo and masking widgets, and a person there
expects exactly Slicer's behaviour (vtkITKGrowCut, float costs). This module serves where that effect does
not exist: headless slicer-core (no ``vtkITKGrowCut``, no Qt effects), recipes, batch and the web app.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from slicer.util import arrayFromVolume

from ..core.errors import SegTruthError
from ..core.geometry import Grid
from ..core.progress import CancelToken, ProgressCallback
from ..scene.segments import find_segment, segment_ids, segment_mask, set_segment_mask
from ..scene.session import Session
from .grow_kernel import DEFAULT_MARGIN, MAX_LABEL, GrowCut, _as_seed_map, grow_labels
from .paint import sphere_mask, stroke_mask

__all__ = [
    "DEFAULT_MARGIN",
    "MAX_LABEL",
    "GrowCut",
    "GrowInputs",
    "grow_from_seeds",
    "grow_inputs",
    "grow_labels",
    "growcut_for",
    "paint_spheres",
    "paint_stroke",
    "seed_map",
    "seeds_from_labelmap",
    "seeds_from_segments",
    "write_grown",
]


# -- seeds on a volume's grid ----------------------------------------------------------------------------------
def seed_map(volume) -> np.ndarray:
    """An empty (k, j, i) uint16 seed map on the volume's grid, to paint strokes into."""
    return np.zeros(Grid.from_node(volume).shape_kji, dtype=np.uint16)


def seeds_from_labelmap(labelmap, volume) -> np.ndarray:
    """Seeds from a labelmap volume node (on the volume's grid) or a (k, j, i) array; values are kept."""
    grid = Grid.from_node(volume)
    if isinstance(labelmap, np.ndarray):
        if labelmap.shape != grid.shape_kji:
            raise SegTruthError(
                f"A seed map of shape {labelmap.shape} (k, j, i) does not fit {volume.GetName()!r} "
                f"({grid.describe()}, shape {grid.shape_kji})."
            )
        return _as_seed_map(labelmap, grid.shape_kji)
    other = Grid.from_node(labelmap)
    if not other.same_as(grid):
        raise SegTruthError(
            f"Seed labelmap {labelmap.GetName()!r} ({other.describe()}) is not on the grid of "
            f"{volume.GetName()!r} ({grid.describe()}); resample it onto the volume first."
        )
    return _as_seed_map(arrayFromVolume(labelmap).copy(), grid.shape_kji)


def _check_seed_map(seeds: np.ndarray, volume, label: int) -> None:
    grid = Grid.from_node(volume)
    if not isinstance(seeds, np.ndarray) or seeds.shape != grid.shape_kji:
        shape = getattr(seeds, "shape", None)
        raise SegTruthError(f"A seed map of shape {shape} does not fit {volume.GetName()!r} ({grid.describe()}).")
    if seeds.dtype.kind not in "uib":
        raise SegTruthError(f"A seed map holds integer labels (or booleans), not {seeds.dtype}.")
    top = 1 if seeds.dtype == bool else min(MAX_LABEL, int(np.iinfo(seeds.dtype).max))
    if not (1 <= label <= top) or int(label) != label:
        raise SegTruthError(f"Seed label {label!r} must be an integer from 1 to {top} for a {seeds.dtype} seed map.")


def paint_stroke(seeds: np.ndarray, volume, points_ras, radius_mm: float, label: int) -> np.ndarray:
    """Paint ``label`` into ``seeds`` along a polyline of RAS points (a brush stroke). Returns ``seeds``."""
    _check_seed_map(seeds, volume, label)
    seeds[stroke_mask(volume, points_ras, radius_mm)] = label
    return seeds


def paint_spheres(seeds: np.ndarray, volume, centers_ras, radius_mm: float, label: int) -> np.ndarray:
    """Paint a sphere of ``radius_mm`` around each RAS centre (a brush click per point). Returns ``seeds``."""
    _check_seed_map(seeds, volume, label)
    seeds[sphere_mask(volume, centers_ras, radius_mm)] = label
    return seeds


def seeds_from_segments(
    session: Session, segmentation_node, volume, segments: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """The segments (names or IDs; all by default) as one seed map on the volume's grid.

    Segment n of the list gets label n (1, 2, ...), so ties go to the earlier segment; where segments
    overlap the later one wins. Returns the seed map and the segment IDs.
    """
    ids = (
        [find_segment(segmentation_node, s) for s in segments]
        if segments is not None
        else segment_ids(segmentation_node)
    )
    if len(ids) > MAX_LABEL:
        raise SegTruthError(f"Grow from seeds takes at most {MAX_LABEL} segments, not {len(ids)}.")
    seeds = seed_map(volume)
    for label, segment_id in enumerate(ids, start=1):
        seeds[segment_mask(session, segmentation_node, segment_id, volume)] = label
    present = int(np.count_nonzero(np.bincount(seeds.ravel(), minlength=len(ids) + 1)[1:]))
    if present < 2:
        names = [segmentation_node.GetSegmentation().GetSegment(i).GetName() for i in ids]
        raise SegTruthError(
            f"Grow from seeds needs at least two non-empty segments as seeds; {segmentation_node.GetName()!r} "
            f"has {present} among {names}."
        )
    return seeds, ids


@dataclass
class GrowInputs:
    """One grow's inputs on the volume's grid: label n of ``seeds`` is segment ``ids[n - 1]``; ``allowed`` is
    the editable area (None: everywhere)."""

    values: np.ndarray
    spacing: tuple[float, float, float]
    seeds: np.ndarray
    ids: list[str]
    allowed: np.ndarray | None


def grow_inputs(
    session: Session,
    segmentation_node,
    volume,
    segments: Sequence[str] | None = None,
    mask: np.ndarray | None = None,
    *,
    intensity_range: tuple[float, float] | None = None,
    inside_segment: str | None = None,
) -> GrowInputs:
    """The seeds and the editable area of a grow, the one place every front end prepares them.

    segments: the seed segments (names or IDs; default: every segment but ``inside_segment``). mask: (k, j, i)
    voxels where growing is allowed. intensity_range: only where the volume is within [low, high].
    inside_segment: only inside that segment (Slicer's meaning: seeds outside it are ignored). The three
    restrictions combine (all must hold).
    """
    grid = Grid.from_node(volume)
    values = arrayFromVolume(volume)
    inside_id = find_segment(segmentation_node, inside_segment) if inside_segment is not None else None
    if segments is None and inside_id is not None:
        segments = [sid for sid in segment_ids(segmentation_node) if sid != inside_id]
    seeds, ids = seeds_from_segments(session, segmentation_node, volume, segments)
    if inside_id is not None and inside_id in ids:
        raise SegTruthError(
            f"Segment {inside_segment!r} is the area to grow inside, so it cannot also be a seed; "
            "leave it out of the seed segments."
        )
    allowed = None
    if mask is not None:
        allowed = np.asarray(mask, dtype=bool)
        if allowed.shape != grid.shape_kji:
            raise SegTruthError(
                f"A mask of shape {allowed.shape} does not fit {volume.GetName()!r} ({grid.describe()})."
            )
    if inside_id is not None:
        inside = segment_mask(session, segmentation_node, inside_id, volume)
        allowed = inside if allowed is None else allowed & inside
    if intensity_range is not None:
        low, high = (float(v) for v in intensity_range)
        if low > high:
            raise SegTruthError(f"Editable intensity range {intensity_range} has its low end above its high end.")
        in_range = (values >= low) & (values <= high)
        allowed = in_range if allowed is None else allowed & in_range
    return GrowInputs(values, grid.spacing, seeds, ids, allowed)


def _reusable(cut: GrowCut | None, values: np.ndarray, spacing, mask, settings: dict) -> bool:
    """Whether an earlier GrowCut was made on this very image with the same mask and settings."""
    if cut is None or cut.shape != values.shape or not np.may_share_memory(cut.intensity, values):
        return False
    if not np.allclose(cut.spacing, spacing) or any(getattr(cut, k) != v for k, v in settings.items()):
        return False
    if (cut.mask is None) != (mask is None):
        return False
    return mask is None or np.array_equal(cut.mask, mask)


def growcut_for(
    inputs: GrowInputs,
    growcut: GrowCut | None = None,
    *,
    connectivity: int = 26,
    distance_penalty: float = 0.0,
    margin: float | None = DEFAULT_MARGIN,
) -> GrowCut:
    """``growcut`` when it was made on the same image, area and settings (it then updates incrementally), else a new one."""
    settings = {"connectivity": connectivity, "distance_penalty": float(distance_penalty), "margin": margin}
    if _reusable(growcut, inputs.values, inputs.spacing, inputs.allowed, settings):
        return growcut  # type: ignore[return-value]
    return GrowCut(inputs.values, inputs.spacing, inputs.allowed, **settings)  # type: ignore[arg-type]


def write_grown(session: Session, segmentation_node, volume, ids: Sequence[str], growcut: GrowCut) -> None:
    """Replace the segments by the grown labels (label n: ``ids[n - 1]``) where the grow decided; elsewhere
    (outside the computed region or the editable area) they keep their voxels."""
    region, labels = growcut.region, growcut.labels
    for label, segment_id in enumerate(ids, start=1):
        old = segment_mask(session, segmentation_node, segment_id, volume)
        set_segment_mask(session, segmentation_node, segment_id, np.where(region, labels == label, old), volume)


def grow_from_seeds(
    session: Session,
    segmentation_node,
    volume,
    segments: Sequence[str] | None = None,
    mask: np.ndarray | None = None,
    *,
    intensity_range: tuple[float, float] | None = None,
    inside_segment: str | None = None,
    connectivity: int = 26,
    distance_penalty: float = 0.0,
    margin: float | None = DEFAULT_MARGIN,
    growcut: GrowCut | None = None,
    preview: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> GrowCut:
    """Grow the segments over the volume and replace them by the result, as Slicer's effect does on Apply.

    segments, mask, intensity_range, inside_segment: see ``grow_inputs``; voxels outside the editable area
    keep their segments. ``preview`` computes without writing (``growcut.labels`` holds label n for the n-th
    segment). Pass the GrowCut of an earlier preview (same volume, area and settings) as ``growcut`` after
    painting more seeds and only the voxels they win are recomputed. Nothing is written when cancelled.
    """
    inputs = grow_inputs(
        session,
        segmentation_node,
        volume,
        segments,
        mask,
        intensity_range=intensity_range,
        inside_segment=inside_segment,
    )
    cut = growcut_for(inputs, growcut, connectivity=connectivity, distance_penalty=distance_penalty, margin=margin)
    cut.update(inputs.seeds, progress, cancel)
    if not preview:
        write_grown(session, segmentation_node, volume, inputs.ids, cut)
    return cut
