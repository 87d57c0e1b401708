"""Surface distances between two masks in mm on their real (anisotropic) grid: HD95 and mean surface distance.

The usual recipe, distance maps between the centres of boundary voxels, is biased by about half a voxel:
a staircase's nearest corner is always closer than the smooth surface it stands for (measured here on two
spheres 6 mm apart: 2-3 % too short with 0.25-0.5 mm voxels, whatever the spacing). So each boundary face
between an inside and an outside voxel gets one point where a lightly smoothed copy of the mask (SimpleITK,
one voxel) crosses one half, weighted by the true surface area it stands for (its face area divided by
the L1 norm of the surface normal there, since a staircase over a tilted plane has that much more face
area than the plane). Distances from points of one surface to the nearest point of the other come from a
k-d tree (scipy). On analytic spheres this agrees within 1 % (see the tests).

HD95 is the larger of the two directed 95th percentiles; the mean surface distance averages over both
surfaces (each point weighted by its area).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..core.errors import SegTruthError

_MARGIN = 4  # voxels kept around the masks so the smoothing sees background on every side


@dataclass(frozen=True)
class SurfaceDistances:
    """HD95, the mean surface distance and the largest distance (mm); NaN when either mask is empty."""

    hd95: float
    mean: float
    maximum: float


def surface_points(mask: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points (mm, numpy axis order) on the smoothed boundary of a (k, j, i) mask, and the area (mm²) each stands for.

    ``spacing`` is in numpy axis order (k, j, i). The mask must have background all around it.
    """
    smooth = sitk.GetArrayFromImage(
        sitk.DiscreteGaussian(sitk.GetImageFromArray(mask.astype(np.float32)), [1.0] * 3, 32, 0.01, False)
    )
    gradient = np.stack(np.gradient(smooth, *spacing), axis=-1)
    points, weights = [], []
    for axis in range(3):
        lower = [slice(None)] * 3
        upper = [slice(None)] * 3
        lower[axis], upper[axis] = slice(0, -1), slice(1, None)
        first = np.argwhere(mask[tuple(lower)] != mask[tuple(upper)])
        second = first + np.eye(3, dtype=int)[axis]
        a, b = smooth[tuple(first.T)], smooth[tuple(second.T)]
        crosses = (a - 0.5) * (b - 0.5) < 0
        # Where the smoothed mask crosses 0.5 between the two voxel centres; the face centre where it does not
        # (a structure one voxel thin smooths away below 0.5, yet it has a surface).
        offset = np.where(crosses, (a - 0.5) / np.where(crosses, a - b, 1.0), 0.5)
        position = first.astype(float)
        position[:, axis] += offset
        normal = gradient[tuple(first.T)] + gradient[tuple(second.T)]
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
        face_area = float(np.prod([spacing[other] for other in range(3) if other != axis]))
        weights.append(face_area / np.maximum(np.abs(normal).sum(axis=1), 1.0))
        points.append(position * spacing)
    return np.concatenate(points), np.concatenate(weights)


def _weighted_percentile(values: np.ndarray, weights: np.ndarray, percent: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    position = np.searchsorted(cumulative, percent / 100.0 * cumulative[-1])
    return float(values[order][min(position, len(values) - 1)])


def surface_distances(a: np.ndarray, b: np.ndarray, spacing: tuple[float, float, float]) -> SurfaceDistances:
    """Surface distances between two boolean (k, j, i) masks on one grid; ``spacing`` is (i, j, k) in mm."""
    try:
        from scipy.spatial import cKDTree
    except ImportError:
        raise SegTruthError("Surface distances need the scipy package: pip install scipy.") from None
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise SegTruthError(f"Masks of shapes {a.shape} and {b.shape} are not on one grid.")
    if not a.any() or not b.any():
        return SurfaceDistances(float("nan"), float("nan"), float("nan"))
    both = a | b
    box = []
    for numpy_axis in range(3):
        other = tuple(x for x in range(3) if x != numpy_axis)
        present = np.flatnonzero(both.any(axis=other))
        box.append(slice(max(int(present[0]) - _MARGIN, 0), int(present[-1]) + _MARGIN + 1))
    pad = [(_MARGIN, _MARGIN)] * 3
    a, b = np.pad(a[tuple(box)], pad), np.pad(b[tuple(box)], pad)
    numpy_spacing = np.array(spacing[::-1], dtype=float)
    points_a, weights_a = surface_points(a, numpy_spacing)
    points_b, weights_b = surface_points(b, numpy_spacing)
    a_to_b = cKDTree(points_b).query(points_a)[0]
    b_to_a = cKDTree(points_a).query(points_b)[0]
    hd95 = max(_weighted_percentile(a_to_b, weights_a, 95), _weighted_percentile(b_to_a, weights_b, 95))
    mean = float((a_to_b @ weights_a + b_to_a @ weights_b) / (weights_a.sum() + weights_b.sum()))
    return SurfaceDistances(hd95, mean, float(max(a_to_b.max(), b_to_a.max())))
