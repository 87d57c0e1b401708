"""The same voxels laid out in a standard anatomical order, for slices and pictures that look alike across cases.

Cases come in any voxel order (LPS, RAS, left-handed, oblique). Slicing them along a voxel axis as is gives
mirrored or rotated slices from case to case. Here every volume is laid out with its axes nearest to patient
left, posterior and superior (ITK's LPS): a permutation and flips of whole axes, so no voxel is interpolated
and every slice still maps to one slice of the source file. Views are then shown the radiological way: axial
with the patient's right on the image's left and anterior up, coronal and sagittal with superior up.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np

from ..core.errors import SegTruthError
from ..core.geometry import Grid, move_array

VIEWS = ("sagittal", "coronal", "axial")  # the view across display axis 0 (L), 1 (P), 2 (S)
_LPS_IN_RAS = np.array([[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]]).T  # columns: L, P, S in RAS


@dataclass(frozen=True)
class Layout:
    """How a source grid maps onto its display grid: display axis ``a`` is source axis ``axis[a]``, maybe reversed."""

    source: Grid
    display: Grid
    axis: tuple[int, int, int]
    reversed: tuple[bool, bool, bool]

    def source_index(self, display_axis: int, index: int) -> int:
        """The source file's voxel index along ``axis[display_axis]`` of a display slice."""
        size = self.display.size[display_axis]
        return size - 1 - index if self.reversed[display_axis] else index

    def to_display(self, array: np.ndarray) -> np.ndarray:
        return move_array(array, self.source, self.display)


def display_layout(grid: Grid) -> Layout:
    """The permutation and flips that bring ``grid``'s axes nearest to L, P, S."""
    directions = grid.direction_ras
    best = max(
        permutations(range(3)),
        key=lambda order: sum(abs(float(directions[:, order[a]] @ _LPS_IN_RAS[:, a])) for a in range(3)),
    )
    flips = tuple(bool(directions[:, best[a]] @ _LPS_IN_RAS[:, a] < 0) for a in range(3))
    matrix = np.eye(4)
    start = np.zeros(3)
    for a in range(3):
        b = best[a]
        matrix[:3, a] = grid.ijk_to_ras[:3, b] * (-1.0 if flips[a] else 1.0)
        start[b] = grid.size[b] - 1 if flips[a] else 0
    matrix[:3, 3] = (grid.ijk_to_ras @ np.append(start, 1.0))[:3]
    size = tuple(grid.size[best[a]] for a in range(3))
    return Layout(grid, Grid(size, matrix), best, flips)  # type: ignore[arg-type]


def view_axis(view: str) -> int:
    """Display axis across which a view is taken: sagittal 0, coronal 1, axial 2."""
    if view not in VIEWS:
        raise SegTruthError(f"Unknown view {view!r}; use one of {', '.join(VIEWS)}.")
    return VIEWS.index(view)


def view_slice(volume: np.ndarray, view: str, index: int) -> np.ndarray:
    """A 2D slice of a display-layout (k, j, i) volume, rows and columns as a radiologist reads it."""
    axis = view_axis(view)
    if axis == 2:
        return volume[index]  # rows anterior -> posterior, columns patient right -> left
    if axis == 1:
        return volume[::-1, index, :]  # rows superior -> inferior, columns right -> left
    return volume[::-1, :, index]  # rows superior -> inferior, columns anterior -> posterior


def view_spacing(grid: Grid, view: str) -> tuple[float, float]:
    """Row and column spacing (mm) of a view's slices on a display grid."""
    spacing = grid.spacing
    axis = view_axis(view)
    if axis == 2:
        return float(spacing[1]), float(spacing[0])
    if axis == 1:
        return float(spacing[2]), float(spacing[0])
    return float(spacing[2]), float(spacing[1])


def slab_grid(grid: Grid, axis: int, index: int) -> Grid:
    """The one-voxel-thick grid of slice ``index`` across grid axis ``axis``: its voxels keep their positions."""
    start = np.zeros(4)
    start[axis], start[3] = index, 1.0
    matrix = grid.ijk_to_ras.copy()
    matrix[:3, 3] = (grid.ijk_to_ras @ start)[:3]
    size = list(grid.size)
    size[axis] = 1
    return Grid(tuple(size), matrix)  # type: ignore[arg-type]
