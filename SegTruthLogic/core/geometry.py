"""Voxel grids (size, origin, spacing, direction) and exact moves of arrays between equivalent grids.

Slicer flips left-handed volumes to right-handed on load, so the loaded node's grid can differ from the
source file's grid by an axis permutation and flips while describing the same voxels in space. Exports
map voxels back with index arithmetic (no interpolation), which is exact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
import vtk

from .errors import SegTruthError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class Grid:
    """A 3D voxel grid: ``size`` in (i, j, k) order and the 4x4 IJK-to-RAS matrix."""

    size: tuple[int, int, int]
    ijk_to_ras: np.ndarray

    @property
    def spacing(self) -> np.ndarray:
        return np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0)

    @property
    def direction_ras(self) -> np.ndarray:
        """Unit column vectors of the i, j, k axes in RAS."""
        return self.ijk_to_ras[:3, :3] / self.spacing

    @property
    def origin_ras(self) -> np.ndarray:
        return self.ijk_to_ras[:3, 3].copy()

    @property
    def shape_kji(self) -> tuple[int, int, int]:
        """The numpy array shape of a volume on this grid (slicer and SimpleITK both use k, j, i)."""
        return (self.size[2], self.size[1], self.size[0])

    @property
    def right_handed(self) -> bool:
        return bool(np.linalg.det(self.ijk_to_ras[:3, :3]) > 0)

    # -- construction ----------------------------------------------------------------------------------------
    @classmethod
    def of(cls, volume_or_grid) -> Grid:
        """The grid itself, or a volume node's: the array tools take either (work in a worker thread, which must
        not touch MRML nodes, passes the grid read on the main thread)."""
        return volume_or_grid if isinstance(volume_or_grid, Grid) else cls.from_node(volume_or_grid)

    @classmethod
    def from_node(cls, node) -> Grid:
        matrix = vtk.vtkMatrix4x4()
        node.GetIJKToRASMatrix(matrix)
        dims = node.GetImageData().GetDimensions()
        return cls((int(dims[0]), int(dims[1]), int(dims[2])), matrix_to_numpy(matrix))

    @classmethod
    def from_sitk(cls, image: sitk.Image | sitk.ImageFileReader) -> Grid:
        """Grid of a SimpleITK image (or a reader after ReadImageInformation); ITK works in LPS."""
        size = image.GetSize()
        spacing = np.array(image.GetSpacing(), dtype=float)
        direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
        ijk_to_lps = np.eye(4)
        ijk_to_lps[:3, :3] = direction * spacing
        ijk_to_lps[:3, 3] = image.GetOrigin()
        return cls((int(size[0]), int(size[1]), int(size[2])), LPS_TO_RAS @ ijk_to_lps)

    def apply_to_sitk(self, image: sitk.Image) -> sitk.Image:
        """Set this grid's origin, spacing and direction (LPS) on a SimpleITK image of the same size."""
        ijk_to_lps = LPS_TO_RAS @ self.ijk_to_ras
        spacing = self.spacing
        image.SetSpacing(tuple(float(s) for s in spacing))
        image.SetOrigin(tuple(float(o) for o in ijk_to_lps[:3, 3]))
        image.SetDirection(tuple(float(d) for d in (ijk_to_lps[:3, :3] / spacing).ravel()))
        return image

    def vtk_matrix(self) -> vtk.vtkMatrix4x4:
        matrix = vtk.vtkMatrix4x4()
        for r in range(4):
            for c in range(4):
                matrix.SetElement(r, c, float(self.ijk_to_ras[r, c]))
        return matrix

    # -- persistence on MRML nodes ---------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({"size": list(self.size), "ijk_to_ras": self.ijk_to_ras.tolist()})

    @classmethod
    def from_json(cls, text: str) -> Grid:
        data = json.loads(text)
        return cls(tuple(data["size"]), np.array(data["ijk_to_ras"], dtype=float))  # type: ignore[arg-type]

    # -- comparison --------------------------------------------------------------------------------------------
    def offset(self, other: Grid) -> float:
        """Largest distance (mm) between the same corner voxel's centre on the two grids (same size)."""
        corners = np.array(
            [
                [i, j, k, 1.0]
                for i in (0, self.size[0] - 1)
                for j in (0, self.size[1] - 1)
                for k in (0, self.size[2] - 1)
            ]
        ).T
        return float(np.linalg.norm((self.ijk_to_ras @ corners - other.ijk_to_ras @ corners)[:3], axis=0).max())

    @property
    def orthogonal(self) -> bool:
        """Axes at right angles; DICOM series with rounded slice positions can be slightly sheared."""
        directions = self.direction_ras
        return bool(np.abs(directions.T @ directions - np.eye(3)).max() < 1e-6)

    def same_as(self, other: Grid, tolerance: float | None = None) -> bool:
        """Same size and the same voxel centres, within format precision.

        The default tolerance is 1e-4 mm (NIfTI stores float32). When either grid is sheared, it is a tenth
        of the smallest voxel: formats other than NRRD cannot store shear, so writers straighten such grids by
        a fraction of a voxel while every voxel keeps its index.
        """
        if self.size != other.size:
            return False
        if tolerance is None:
            sheared = not (self.orthogonal and other.orthogonal)
            tolerance = 0.1 * float(min(self.spacing.min(), other.spacing.min())) if sheared else 1e-4
        return self.offset(other) <= tolerance

    def describe(self) -> str:
        sx, sy, sz = self.spacing
        ox, oy, oz = self.origin_ras
        return (
            f"{self.size[0]}x{self.size[1]}x{self.size[2]} voxels, spacing {sx:.4g}x{sy:.4g}x{sz:.4g} mm, "
            f"origin RAS ({ox:.4g}, {oy:.4g}, {oz:.4g})"
        )


def matrix_to_numpy(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def index_map(source: Grid, target: Grid, tolerance: float = 1e-3) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """How to move a (k, j, i) array from ``source`` to ``target`` when both grids hold the same voxels.

    Returns the transpose order and per-axis flips for numpy (k, j, i) arrays. Raises when the grids are
    not the same set of voxel centres (then an exact move is impossible and nothing must be written).
    """
    target_to_source = np.linalg.inv(source.ijk_to_ras) @ target.ijk_to_ras
    rotation = target_to_source[:3, :3]
    rounded = np.round(rotation)
    if (
        np.abs(rotation - rounded).max() > tolerance
        or sorted(np.abs(rounded).sum(axis=0)) != [1, 1, 1]
        or sorted(np.abs(rounded).sum(axis=1)) != [1, 1, 1]
    ):
        raise SegTruthError("The grids are not the same voxels (they differ by more than axis order and flips).")
    # target axis a (i=0, j=1, k=2) comes from source axis b with sign s
    source_axis = [int(np.argmax(np.abs(rounded[:, a]))) for a in range(3)]
    flip = [bool(rounded[source_axis[a], a] < 0) for a in range(3)]
    for a in range(3):
        b = source_axis[a]
        start = target_to_source[b, 3]
        expected = (source.size[b] - 1) if flip[a] else 0
        if abs(start - expected) > tolerance or source.size[b] != target.size[a]:
            raise SegTruthError("The grids are not the same voxels (their extents differ).")
    # numpy axes are reversed (k, j, i): numpy axis n <-> grid axis 2 - n
    order = tuple(2 - source_axis[2 - n] for n in range(3))
    flips = tuple(flip[2 - n] for n in range(3))
    return order, flips


def move_array(array: np.ndarray, source: Grid, target: Grid) -> np.ndarray:
    """The same voxels as ``array`` (on ``source``), laid out on ``target``; exact, no interpolation."""
    if source.same_as(target):
        return array
    order, flips = index_map(source, target)
    moved = np.transpose(array, order)
    slices = tuple(slice(None, None, -1) if f else slice(None) for f in flips)
    return np.ascontiguousarray(moved[slices])


def grid_difference(a: Grid, b: Grid) -> str:
    """Which of size, spacing, axis directions and origin tell two grids apart."""
    if a.size != b.size:
        return "size"
    parts = []
    if not np.allclose(a.spacing, b.spacing, atol=1e-4):
        parts.append("spacing")
    if not np.allclose(a.direction_ras, b.direction_ras, atol=1e-4):
        parts.append("axis directions")
    shift = float(np.linalg.norm(a.origin_ras - b.origin_ras))
    if shift > 1e-4:
        parts.append(f"origin (by {shift:.3g} mm)")
    return ", ".join(parts) or "voxel positions"
