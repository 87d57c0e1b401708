"""Paint and erase: spheres of a radius in mm around RAS points, as Slicer's Paint/Erase with a sphere brush.

A voxel is inside the brush when its centre is within the radius of the point, measured in RAS through
the volume's IJK-to-RAS matrix, so oblique and anisotropic grids get a true sphere in space.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..core.errors import SegTruthError
from ..core.geometry import Grid
from ..core.labels import LabelTable
from ..scene.editing import DEFAULT_OPTIONS, EditOptions, apply_mask
from ..scene.segments import ensure_segment, find_segment
from ..scene.session import Session

Point = Sequence[float]


def ras_to_ijk(volume, ras: Point) -> np.ndarray:
    """Continuous (i, j, k) voxel coordinates of a RAS point on the volume's grid."""
    point = np.asarray(ras, dtype=float)
    if point.shape != (3,) or not np.all(np.isfinite(point)):
        raise SegTruthError(f"A RAS point needs three finite coordinates, not {ras!r}.")
    grid = Grid.from_node(volume)
    return (np.linalg.inv(grid.ijk_to_ras) @ np.append(point, 1.0))[:3]


def voxel_at(volume, ras: Point) -> tuple[int, int, int]:
    """The (k, j, i) index of the voxel containing a RAS point; an error when the point is outside the volume."""
    ijk = ras_to_ijk(volume, ras)
    grid = Grid.from_node(volume)
    index = np.floor(ijk + 0.5).astype(int)
    if np.any(index < 0) or np.any(index >= np.array(grid.size)):
        x, y, z = (float(v) for v in ras)
        raise SegTruthError(
            f"RAS point ({x:.4g}, {y:.4g}, {z:.4g}) is outside {volume.GetName()!r} ({grid.describe()})."
        )
    return int(index[2]), int(index[1]), int(index[0])


def sphere_mask(volume, points: Point | Sequence[Point], radius_mm: float) -> np.ndarray:
    """Boolean (k, j, i) mask of the voxels whose centre is within ``radius_mm`` of any of the RAS points."""
    if not math.isfinite(radius_mm) or radius_mm <= 0:
        raise SegTruthError(f"Brush radius must be a positive number of mm, not {radius_mm!r}.")
    centres = np.asarray(points, dtype=float)
    if centres.ndim == 1:
        centres = centres[None, :]
    if centres.ndim != 2 or centres.shape[1] != 3 or len(centres) == 0:
        raise SegTruthError(f"Paint needs a RAS point (x, y, z) or a list of them, not {points!r}.")
    grid = Grid.from_node(volume)
    for centre in centres:
        voxel_at(volume, centre)  # the brush centre must lie in the volume
    linear = grid.ijk_to_ras[:3, :3]
    # Half-widths of the sphere's bounding box in voxels: |row a of RAS-to-IJK| * radius.
    half = np.linalg.norm(np.linalg.inv(linear), axis=1) * radius_mm
    mask = np.zeros(grid.shape_kji, dtype=bool)
    size = np.array(grid.size)
    for centre in centres:
        ijk = ras_to_ijk(volume, centre)
        lo = np.maximum(np.ceil(ijk - half - 1e-9).astype(int), 0)
        hi = np.minimum(np.floor(ijk + half + 1e-9).astype(int), size - 1)
        if np.any(lo > hi):
            continue
        i, j, k = np.meshgrid(*(np.arange(lo[a], hi[a] + 1) for a in range(3)), indexing="ij")
        offsets = np.stack([i, j, k], axis=-1) - ijk
        inside = np.einsum("...a,...a->...", offsets @ linear.T, offsets @ linear.T) <= radius_mm**2 + 1e-9
        box = mask[lo[2] : hi[2] + 1, lo[1] : hi[1] + 1, lo[0] : hi[0] + 1]
        box |= inside.transpose(2, 1, 0)
    return mask


def stroke_mask(volume, points: Sequence[Point], radius_mm: float) -> np.ndarray:
    """Boolean (k, j, i) mask of the voxels whose centre is within ``radius_mm`` of a polyline of RAS points
    (a sphere swept along the line, as a brush stroke)."""
    if not math.isfinite(radius_mm) or radius_mm <= 0:
        raise SegTruthError(f"Brush radius must be a positive number of mm, not {radius_mm!r}.")
    line = np.asarray(points, dtype=float)
    if line.ndim == 1:
        line = line.reshape(1, -1)
    if line.ndim != 2 or line.shape[1] != 3 or len(line) == 0 or not np.isfinite(line).all():
        raise SegTruthError(f"A stroke is a list of finite RAS (x, y, z) points, not {points!r}.")
    grid = Grid.from_node(volume)
    ras_to_ijk_matrix = np.linalg.inv(grid.ijk_to_ras)
    mask = np.zeros(grid.shape_kji, dtype=bool)
    for start, end in list(zip(line[:-1], line[1:])) or [(line[0], line[0])]:
        low, high = np.minimum(start, end) - radius_mm, np.maximum(start, end) + radius_mm
        corners = np.array(
            [[x, y, z, 1.0] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])]
        )
        ijk = (ras_to_ijk_matrix @ corners.T)[:3]
        first = np.maximum(np.floor(ijk.min(axis=1)).astype(int), 0)
        last = np.minimum(np.ceil(ijk.max(axis=1)).astype(int), np.array(grid.size) - 1)
        if np.any(first > last):
            continue
        i, j, k = np.meshgrid(*(np.arange(a, b + 1) for a, b in zip(first, last)), indexing="ij")
        centres = (grid.ijk_to_ras[:3, :3] @ np.stack([i.ravel(), j.ravel(), k.ravel()]) + grid.ijk_to_ras[:3, 3:]).T
        direction = end - start
        length2 = float(direction @ direction)
        t = np.clip((centres - start) @ direction / length2, 0.0, 1.0) if length2 > 0 else np.zeros(len(centres))
        inside = np.sum((centres - start - t[:, None] * direction) ** 2, axis=1) <= radius_mm**2
        mask[k.ravel()[inside], j.ravel()[inside], i.ravel()[inside]] = True
    if not mask.any():
        raise SegTruthError(
            f"The stroke paints no voxel of {volume.GetName()!r}: its points are outside the volume or the "
            f"radius {radius_mm} mm is smaller than half a voxel."
        )
    return mask


def brush_mask(volume, ras: Point | Sequence[Point], radius_mm: float, stroke: bool = False) -> np.ndarray:
    """Spheres at the RAS point(s), or with ``stroke`` a sphere swept along them."""
    return stroke_mask(volume, ras, radius_mm) if stroke else sphere_mask(volume, ras, radius_mm)


def paint(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    ras: Point | Sequence[Point],
    radius_mm: float,
    options: EditOptions = DEFAULT_OPTIONS,
    table: LabelTable | None = None,
    stroke: bool = False,
) -> int:
    """Add spheres of ``radius_mm`` at the RAS point(s) to ``segment`` (created if absent); with ``stroke``,
    paint along the line through the points.

    Returns the number of voxels the brush covered (before masking).
    """
    mask = brush_mask(volume, ras, radius_mm, stroke)
    segment_id = ensure_segment(segmentation_node, segment, table)
    apply_mask(session, segmentation_node, segment_id, volume, mask, "add", options)
    return int(np.count_nonzero(mask))


def erase(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    ras: Point | Sequence[Point],
    radius_mm: float,
    options: EditOptions = DEFAULT_OPTIONS,
    stroke: bool = False,
) -> int:
    """Remove spheres of ``radius_mm`` at the RAS point(s) (or a stroke) from ``segment``; returns the brush's
    voxel count."""
    segment_id = find_segment(segmentation_node, segment)
    mask = brush_mask(volume, ras, radius_mm, stroke)
    apply_mask(session, segmentation_node, segment_id, volume, mask, "remove", options)
    return int(np.count_nonzero(mask))
