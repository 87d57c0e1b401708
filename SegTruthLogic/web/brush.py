"""The web editor's brush: a stroke drawn in a slice view becomes voxels of one segment, on the slice it was drawn on.

The stroke's points are read as every drawing in a view is (``view_trace``): with the view geometry the
browser showed when the stroke started, so a stroke lands on the slice the person saw even when the slice
moved meanwhile.

- ``2d`` (the default, as Slicer's): voxels of the shown slice only (the voxel layer the slice plane crosses)
  whose centres lie within the radius of the stroke's path in the slice plane.
- ``sphere``: voxels whose centres lie within the radius of the path in 3D.

The size is the brush diameter in mm. The mask is applied through Slicer's segment editor logic, so the
masking settings (editable area, intensity range, overwrite mode) hold, and each stroke is one undo step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import vtk

from ..core.errors import SegTruthError
from .view_trace import ViewTrace

BrushShape = Literal["2d", "sphere"]


@dataclass(frozen=True)
class Stroke(ViewTrace):
    """One brush stroke as the browser sends it: its path in the view, and the brush."""

    diameter_mm: float
    shape: BrushShape = "2d"

    @classmethod
    def from_message(cls, message: dict) -> Stroke:
        """The stroke of an ``st_action`` message; one sentence for anything malformed."""
        points, matrix, size = ViewTrace.read(message)
        try:
            diameter = float(message["diameter"])
            shape = str(message.get("shape", "2d"))
        except (KeyError, TypeError, ValueError):
            raise SegTruthError("The browser sent a stroke the server cannot read; reload the page.") from None
        if shape not in ("2d", "sphere"):
            raise SegTruthError(f"Brush shape must be 2d or sphere, not {shape!r}.")
        if not (0 < diameter <= 1000):
            raise SegTruthError("The brush size is out of range; reload the page.")
        return cls(points, matrix, size, diameter, shape)  # type: ignore[arg-type]


def _matrix(vtk_matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[vtk_matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def volume_ijk_to_ras(volume) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(matrix)
    return _matrix(matrix)


def _segment_distances(voxels: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of each voxel centre (N x 3) to the segment a-b."""
    ab = b - a
    length2 = float(ab @ ab)
    if length2 == 0:
        return np.linalg.norm(voxels - a, axis=1)
    t = np.clip((voxels - a) @ ab / length2, 0.0, 1.0)
    return np.linalg.norm(voxels - (a + t[:, None] * ab), axis=1)


def stroke_mask(stroke: Stroke, ijk_to_ras: np.ndarray, dims: Sequence[int]) -> tuple[np.ndarray, tuple[int, ...]]:
    """The voxels a stroke paints on a volume grid: a boolean (k, j, i) array and its extent (i0,i1,j0,j1,k0,k1).

    The extent is empty (i1 < i0) when the stroke misses the volume.
    """
    radius = stroke.diameter_mm / 2.0
    ras_to_ijk = np.linalg.inv(ijk_to_ras)
    points = stroke.ras_points()
    # Keep points half a voxel apart at least: the path is the same, the work smaller.
    spacing = np.linalg.norm(ijk_to_ras[:3, :3], axis=0)
    kept = [points[0]]
    for point in points[1:]:
        if np.linalg.norm(point - kept[-1]) >= 0.5 * spacing.min():
            kept.append(point)
    path = np.array(kept)
    normal = stroke.normal()
    plane_point = path[0]
    # Half the thickness of a voxel along the slice normal: the 2D brush keeps the one layer the plane crosses.
    half = 0.5 * float(np.sum(np.abs(normal @ ijk_to_ras[:3, :3])))
    margin = radius / spacing + 1.0
    segments = [(path[i], path[min(i + 1, len(path) - 1)]) for i in range(max(len(path) - 1, 1))]
    boxes = []
    for a, b in segments:
        ends = np.array([a, b])
        ijk = np.column_stack([ends, np.ones(2)]) @ ras_to_ijk.T
        low = np.floor(ijk[:, :3].min(axis=0) - margin).astype(int)
        high = np.ceil(ijk[:, :3].max(axis=0) + margin).astype(int)
        low = np.maximum(low, 0)
        high = np.minimum(high, np.array(dims) - 1)
        if np.any(high < low):
            continue
        boxes.append((a, b, low, high))
    if not boxes:
        return np.zeros((0, 0, 0), bool), (0, -1, 0, -1, 0, -1)
    low = np.min([box[2] for box in boxes], axis=0)
    high = np.max([box[3] for box in boxes], axis=0)
    mask = np.zeros(tuple((high - low + 1)[::-1]), bool)
    for a, b, box_low, box_high in boxes:
        grid = np.stack(
            np.meshgrid(*[np.arange(box_low[d], box_high[d] + 1) for d in range(3)], indexing="ij"), axis=-1
        ).reshape(-1, 3)
        centres = np.column_stack([grid, np.ones(len(grid))]) @ ijk_to_ras.T
        centres = centres[:, :3]
        if stroke.shape == "2d":
            offset = (centres - plane_point) @ normal
            on_slice = (offset > -half) & (offset <= half)
            projected = centres - offset[:, None] * normal
            inside = on_slice & (_segment_distances(projected, a, b) <= radius)
        else:
            inside = _segment_distances(centres, a, b) <= radius
        hit = grid[inside] - low
        mask[hit[:, 2], hit[:, 1], hit[:, 0]] = True
    extent = (int(low[0]), int(high[0]), int(low[1]), int(high[1]), int(low[2]), int(high[2]))
    return mask, extent


def mask_image(mask: np.ndarray, extent: Sequence[int], ijk_to_ras: np.ndarray):
    """The mask as a ``vtkOrientedImageData`` on the volume's grid (what Slicer's segment editor logic takes)."""
    import slicer
    from vtkmodules.util.numpy_support import numpy_to_vtk

    image = slicer.vtkOrientedImageData()
    image.SetExtent(*extent)
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(ijk_to_ras[r, c]))
    image.SetImageToWorldMatrix(matrix)
    values = numpy_to_vtk(np.ascontiguousarray(mask, np.uint8).ravel(), deep=True, array_type=vtk.VTK_UNSIGNED_CHAR)
    image.GetPointData().SetScalars(values)
    return image


def paint(editor, volume, segment_id: str, stroke: Stroke, erase: bool = False) -> int:
    """Paint (or erase) ``stroke`` into ``segment_id`` through the editor's segment modifier; voxels in the mask.

    One undo step, honouring the editor's masking settings. Returns how many voxels the brush covered.
    """
    from trame_slicer.segmentation import ModificationMode

    modifier = editor.active_segment_modifier
    if modifier is None:
        raise SegTruthError("Open a case first.")
    if segment_id not in editor.get_segment_ids():
        raise SegTruthError(f"No segment {segment_id!r} to paint into (it was deleted).")
    ijk_to_ras = volume_ijk_to_ras(volume)
    mask, extent = stroke_mask(stroke, ijk_to_ras, volume.GetImageData().GetDimensions())
    count = int(mask.sum())
    if count == 0:
        return 0
    mode = ModificationMode.Remove if erase else ModificationMode.Add
    modifier.apply_labelmap(mask_image(mask, extent, ijk_to_ras), segment_id=segment_id, modification_mode=mode)
    return count
