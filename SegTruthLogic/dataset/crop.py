"""Cropping an image and its mask together: to a voxel box, a RAS region, or the labels' extent plus a margin.

A crop copies a block of voxels; the cropped files' grid starts at the first kept voxel's position, so every
voxel stays where it was in space: the crop still overlays the uncropped image in Slicer, and the mask never
moves against its image. Boxes are voxel indices of the source file (what ``segtruth info`` describes), even
when Slicer shows the volume flipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.atomic import Outputs, full_suffix
from ..core.errors import SegTruthError
from ..core.formats import LABELMAP_SUFFIXES
from ..core.geometry import Grid
from ..core.labels import LabelTable
from ..scene.export import write_array
from ..scene.session import Session
from .cases import read_case
from .manifest import CaseEntry

IMAGE_OUTPUT_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


@dataclass(frozen=True)
class Box:
    """Voxel index ranges ``start <= index < stop`` along the source grid's i, j and k axes."""

    start: tuple[int, int, int]
    stop: tuple[int, int, int]

    @property
    def size(self) -> tuple[int, int, int]:
        return tuple(b - a for a, b in zip(self.start, self.stop))  # type: ignore[return-value]

    def describe(self) -> str:
        return ", ".join(f"{axis} {a}..{b - 1}" for axis, a, b in zip("ijk", self.start, self.stop))


def box_from_indices(grid: Grid, first: tuple[int, int, int], last: tuple[int, int, int]) -> Box:
    """A box from inclusive first and last voxel indices (i, j, k); they must lie in the grid."""
    for axis, a, b, size in zip("ijk", first, last, grid.size):
        if not 0 <= a <= b < size:
            raise SegTruthError(f"Crop range {axis} {a}..{b} is not within 0..{size - 1} of {grid.describe()}.")
    return Box(tuple(first), tuple(b + 1 for b in last))  # type: ignore[arg-type]


def box_from_roi(grid: Grid, ras_min: tuple[float, float, float], ras_max: tuple[float, float, float]) -> Box:
    """The voxels of the grid that the RAS box (mm) touches (for an oblique grid, the index box around it)."""
    low, high = np.minimum(ras_min, ras_max), np.maximum(ras_min, ras_max)
    corners = np.array(
        [[x, y, z, 1.0] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])]
    )
    index = (np.linalg.inv(grid.ijk_to_ras) @ corners.T)[:3]
    start = np.maximum(np.ceil(index.min(axis=1) - 0.5), 0).astype(int)
    stop = np.minimum(np.floor(index.max(axis=1) + 0.5) + 1, grid.size).astype(int)
    if (stop <= start).any():
        raise SegTruthError(
            f"The region R {low[0]:g}..{high[0]:g}, A {low[1]:g}..{high[1]:g}, S {low[2]:g}..{high[2]:g} mm does not "
            f"overlap the image ({grid.describe()})."
        )
    return Box(tuple(int(v) for v in start), tuple(int(v) for v in stop))  # type: ignore[arg-type]


def box_from_labels(labels: np.ndarray, grid: Grid, margin_mm: float = 0.0, values: list[int] | None = None) -> Box:
    """The extent of the labels (or of the given values) plus ``margin_mm`` on every side, within the grid."""
    if margin_mm < 0:
        raise SegTruthError(f"The crop margin {margin_mm:g} mm must not be negative.")
    mask = labels != 0 if values is None else np.isin(labels, values)
    if not mask.any():
        raise SegTruthError("There are no labelled voxels to crop to.")
    extent = []
    for numpy_axis in (2, 1, 0):  # i, j, k
        other = tuple(a for a in range(3) if a != numpy_axis)
        present = np.flatnonzero(mask.any(axis=other))
        extent.append((int(present[0]), int(present[-1])))
    pad = np.ceil(margin_mm / grid.spacing - 1e-9).astype(int)
    start = tuple(max(0, first - int(p)) for (first, _), p in zip(extent, pad))
    stop = tuple(min(size, last + 1 + int(p)) for (_, last), p, size in zip(extent, pad, grid.size))
    return Box(start, stop)  # type: ignore[arg-type]


def crop_array(array: np.ndarray, box: Box) -> np.ndarray:
    """The box's voxels of a (k, j, i) array."""
    (i0, j0, k0), (i1, j1, k1) = box.start, box.stop
    return np.ascontiguousarray(array[k0:k1, j0:j1, i0:i1])


def crop_grid(grid: Grid, box: Box) -> Grid:
    """The grid of the box's voxels: same spacing and axes, origin at the first kept voxel."""
    matrix = grid.ijk_to_ras.copy()
    matrix[:3, 3] = (grid.ijk_to_ras @ np.array([*box.start, 1.0]))[:3]
    return Grid(box.size, matrix)


def crop_case(
    session: Session,
    image: str | Path,
    segmentation: str | Path,
    image_out: str | Path,
    mask_out: str | Path,
    first_last: tuple[tuple[int, int, int], tuple[int, int, int]] | None = None,
    roi: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None,
    margin_mm: float | None = None,
    label: str | None = None,
    table: LabelTable | None = None,
    overwrite: bool = True,
    structures: Sequence[str] | None = None,
) -> Box:
    """Crop an image and its segmentation to one of: index box, RAS ROI, labels' extent + margin; both or neither."""
    if sum(x is not None for x in (first_last, roi, margin_mm)) != 1:
        raise SegTruthError("Give exactly one of a voxel box, a RAS region or a margin around the labels.")
    if label is not None and margin_mm is None:
        raise SegTruthError(f"A label ({label!r}) chooses the extent to crop to; give a margin with it (0 for none).")
    if full_suffix(image_out) not in IMAGE_OUTPUT_SUFFIXES:
        raise SegTruthError(f"{image_out}: the cropped image must be one of {', '.join(IMAGE_OUTPUT_SUFFIXES)}.")
    if full_suffix(mask_out) not in LABELMAP_SUFFIXES:
        raise SegTruthError(f"{mask_out}: the cropped mask must be a labelmap, one of {', '.join(LABELMAP_SUFFIXES)}.")
    with Outputs(overwrite, inputs=[image, segmentation]) as outputs:  # both checked before the case is read
        image_temp = outputs.file(image_out)
        mask_temp = outputs.file(mask_out)
        image = Path(image)
        # ``structures`` picks an RTSTRUCT/SEG's ROIs (``--structure``: ``--roi`` is the RAS box here).
        entry = CaseEntry(image.name, (image,), Path(segmentation), rois=tuple(structures) if structures else None)
        case = read_case(session, entry, table)
        assert case.labels is not None and case.table is not None
        if first_last is not None:
            box = box_from_indices(case.grid, *first_last)
        elif roi is not None:
            box = box_from_roi(case.grid, *roi)
        else:
            values = None
            if label is not None:
                found = case.table.by_name(label)
                if found is None:
                    names = ", ".join(repr(lb.name) for lb in case.table) or "none"
                    raise SegTruthError(f"{segmentation}: has no label named {label!r} (labels: {names}).")
                values = [found.value]
            try:
                box = box_from_labels(case.labels, case.grid, margin_mm or 0.0, values)
            except SegTruthError as error:
                raise SegTruthError(f"{segmentation}: {error}") from None
        grid = crop_grid(case.grid, box)
        write_array(crop_array(case.channels[0], box), grid, image_temp)
        write_array(crop_array(case.labels, box), grid, mask_temp)
    return box
