"""Scissors: erase or fill inside or outside a polygon drawn in a view, on one slice, a slab or the whole volume,
as Slicer's Scissors effect does.

The polygon is a list of RAS points on a view plane (at least three, not on one line). The plane is the one
through their mean with the polygon's normal (Newell's method), or the view's ``normal`` when given. A voxel
is inside the polygon when its centre, projected along the normal onto the plane, falls inside it (even-odd
rule; on an edge counts as the side the crossing test gives). Its reach along the normal:

- ``all``: through the whole volume;
- ``slice``: the voxel layer the plane cuts: centres with -t/2 <= distance < t/2, t the thickness of one voxel
  layer along the normal (the spacing, for a view along an image axis);
- ``slab``: centres within ``slab_mm / 2`` of the plane on both sides (``slab_side="both"``, Slicer's
  symmetric slice cut), or from the plane to ``slab_mm`` along the normal (``"positive"``) or against it
  (``"negative"``), the plane's own layer included.

Operations: ``erase_inside`` / ``erase_outside`` remove the chosen voxels from the segment, ``fill_inside`` /
``fill_outside`` add them; "outside" is the rest of the reach (on one slice: the rest of that slice).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numba
import numpy as np

from ..core.errors import SegTruthError
from ..core.geometry import Grid
from ..core.labels import LabelTable
from ..scene.editing import DEFAULT_OPTIONS, EditOptions, apply_mask
from ..scene.segments import ensure_segment
from ..scene.session import Session
from .paint import Point

Operation = Literal["erase_inside", "erase_outside", "fill_inside", "fill_outside"]
Reach = Literal["all", "slice", "slab"]
OPERATIONS = ("erase_inside", "erase_outside", "fill_inside", "fill_outside")
REACHES = ("all", "slice", "slab")
SlabSide = Literal["both", "positive", "negative"]
SLAB_SIDES = ("both", "positive", "negative")


@numba.njit(cache=True)
def _cut(shape, d_coef, u_coef, v_coef, lo, hi, px, py, inside_wanted, out):
    """Mark voxels (k, j, i) whose plane distance is in [lo, hi) and whose (u, v) is in/out of the polygon."""
    n = len(px)
    umin, umax = px.min(), px.max()
    vmin, vmax = py.min(), py.max()
    for k in range(shape[0]):
        for j in range(shape[1]):
            for i in range(shape[2]):
                d = d_coef[0] * i + d_coef[1] * j + d_coef[2] * k + d_coef[3]
                if d < lo or d >= hi:
                    continue
                u = u_coef[0] * i + u_coef[1] * j + u_coef[2] * k + u_coef[3]
                v = v_coef[0] * i + v_coef[1] * j + v_coef[2] * k + v_coef[3]
                inside = False
                if umin <= u <= umax and vmin <= v <= vmax:
                    a = n - 1
                    for b in range(n):
                        if (py[b] > v) != (py[a] > v):
                            x = (px[a] - px[b]) * (v - py[b]) / (py[a] - py[b]) + px[b]
                            if u < x:
                                inside = not inside
                        a = b
                out[k, j, i] = inside == inside_wanted


def _plane(points: np.ndarray, normal: Point | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Origin, unit normal and two in-plane unit axes of the polygon's plane."""
    origin = points.mean(axis=0)
    if normal is not None:
        n = np.asarray(normal, dtype=float)
        if n.shape != (3,) or not np.all(np.isfinite(n)) or np.linalg.norm(n) == 0:
            raise SegTruthError(f"A view normal needs three finite coordinates, not all zero, not {normal!r}.")
    else:
        n = np.zeros(3)
        for a, b in zip(points, np.roll(points, -1, axis=0)):
            n += np.cross(a - origin, b - origin)
        if np.linalg.norm(n) < 1e-9 * max(1.0, float(np.ptp(points, axis=0).max()) ** 2):
            raise SegTruthError("The scissors polygon's points lie on one line; draw an area.")
    n = n / np.linalg.norm(n)
    helper = np.eye(3)[int(np.argmin(np.abs(n)))]
    e1 = np.cross(n, helper)
    e1 /= np.linalg.norm(e1)
    return origin, n, e1, np.cross(n, e1)


def polygon_mask(
    volume,
    polygon: Sequence[Point],
    reach: Reach = "all",
    slab_mm: float | None = None,
    inside: bool = True,
    normal: Point | None = None,
    slab_side: SlabSide = "both",
) -> np.ndarray:
    """(k, j, i) voxels inside (or, ``inside=False``, outside) the RAS polygon within the reach."""
    points = np.asarray(polygon, dtype=float)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < 3 or not np.all(np.isfinite(points)):
        raise SegTruthError(f"Scissors need a polygon of at least three RAS points (x, y, z), not {polygon!r}.")
    if reach not in REACHES:
        raise SegTruthError(f"Unknown scissors reach {reach!r}; use one of {', '.join(REACHES)}.")
    grid = Grid.from_node(volume)
    origin, n, e1, e2 = _plane(points, normal)
    linear, translation = grid.ijk_to_ras[:3, :3], grid.ijk_to_ras[:3, 3]

    def coefficients(axis: np.ndarray) -> np.ndarray:  # axis . (M ijk + t - origin) as a + b i + c j + d k
        return np.append(linear.T @ axis, float(axis @ (translation - origin)))

    if reach == "all":
        lo, hi = -math.inf, math.inf
    elif reach == "slice":
        thickness = 1.0 / float(np.max(np.abs(np.linalg.inv(linear) @ n)))
        lo, hi = -thickness / 2, thickness / 2
    else:
        if slab_mm is None or not math.isfinite(slab_mm) or slab_mm <= 0:
            raise SegTruthError(f"A scissors slab needs a thickness in mm > 0, not {slab_mm!r}.")
        if slab_side not in SLAB_SIDES:
            raise SegTruthError(f"Unknown scissors slab side {slab_side!r}; use one of {', '.join(SLAB_SIDES)}.")
        lo, hi = {"both": (-slab_mm / 2, slab_mm / 2), "positive": (0.0, slab_mm), "negative": (-slab_mm, 0.0)}[
            slab_side
        ]
        lo, hi = np.nextafter(lo, -math.inf), np.nextafter(hi, math.inf)  # both ends included
    px, py = (points - origin) @ e1, (points - origin) @ e2
    out = np.zeros(grid.shape_kji, dtype=bool)
    shape = np.array(grid.shape_kji, dtype=np.int64)
    _cut(shape, coefficients(n), coefficients(e1), coefficients(e2), lo, hi, px, py, bool(inside), out)
    return out


def scissors(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    polygon: Sequence[Point],
    operation: Operation = "erase_inside",
    reach: Reach = "all",
    slab_mm: float | None = None,
    normal: Point | None = None,
    options: EditOptions = DEFAULT_OPTIONS,
    table: LabelTable | None = None,
    slab_side: SlabSide = "both",
) -> int:
    """Erase or fill ``segment`` (created if absent) inside or outside the polygon; returns the voxels cut."""
    if operation not in OPERATIONS:
        raise SegTruthError(f"Unknown scissors operation {operation!r}; use one of {', '.join(OPERATIONS)}.")
    action, side = operation.split("_")
    mask = polygon_mask(volume, polygon, reach, slab_mm, side == "inside", normal, slab_side)
    segment_id = ensure_segment(segmentation_node, segment, table)
    apply_mask(session, segmentation_node, segment_id, volume, mask, "remove" if action == "erase" else "add", options)
    return int(np.count_nonzero(mask))
