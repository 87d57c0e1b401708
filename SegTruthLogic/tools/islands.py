"""Islands: connected components of a segment, as Slicer's Islands effect finds them.

Islands come from ``vtkITKIslandMath`` on the segment's mask on the volume's grid, with the effect's
settings: face connectivity (6 neighbours; ``fully_connected=True`` gives 26) and islands numbered by
decreasing size (ties in voxel order). Split islands become segments named as Slicer names them: the
largest stays in the segment, the next are ``<name>_2``, ``<name>_3``, ... by decreasing size.

Islands touching the image's sides are what lies outside the patient: a scan's field of view holds the whole
body across (left-right, front-back), while its first and last slices along the patient's head-foot axis
cut through organs. So air thresholded on a chest CT is the lungs once the islands touching the sides are
dropped, though the lungs touch the top and bottom slices.
"""

from __future__ import annotations

import math

import numpy as np
import slicer

from ..core.errors import SegTruthError
from ..core.geometry import Grid
from ..scene.editing import DEFAULT_OPTIONS, EditOptions, apply_mask
from ..scene.segments import add_segment, find_segment, image_array, oriented_image, segment_mask
from ..scene.session import Session
from .paint import Point, voxel_at


def label_islands(mask: np.ndarray, volume, min_voxels: int = 0, fully_connected: bool = False) -> np.ndarray:
    """(k, j, i) uint32 island labels of a mask: 1 is the largest island, 0 background and removed islands."""
    image = oriented_image(np.asarray(mask, dtype=np.uint32), volume)
    math_filter = slicer.vtkITKIslandMath()
    math_filter.SetInputData(image)
    math_filter.SetFullyConnected(bool(fully_connected))
    math_filter.SetMinimumSize(int(min_voxels))
    math_filter.Update()
    return image_array(math_filter.GetOutput()).copy()


def island_sizes(session: Session, segmentation_node, volume, segment: str, fully_connected: bool = False) -> list[int]:
    """Voxel counts of the segment's islands, largest first."""
    labels = _labels(session, segmentation_node, volume, find_segment(segmentation_node, segment), 0, fully_connected)
    return [int(n) for n in np.bincount(labels.ravel())[1:]]


def keep_largest_island(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    options: EditOptions = DEFAULT_OPTIONS,
    fully_connected: bool = False,
) -> int:
    """Keep only the segment's largest island; returns its voxel count (0 leaves an empty segment as is)."""
    segment_id = find_segment(segmentation_node, segment)
    labels = _labels(session, segmentation_node, volume, segment_id, 0, fully_connected)
    if not labels.any():
        return 0
    keep = labels == 1
    apply_mask(session, segmentation_node, segment_id, volume, keep, "set", options)
    return int(np.count_nonzero(keep))


def keep_island_at(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    ras: Point,
    options: EditOptions = DEFAULT_OPTIONS,
    fully_connected: bool = False,
) -> int:
    """Keep only the island of the segment that contains the RAS point; returns its voxel count."""
    segment_id, labels, label = _island_at(session, segmentation_node, volume, segment, ras, fully_connected)
    keep = labels == label
    apply_mask(session, segmentation_node, segment_id, volume, keep, "set", options)
    return int(np.count_nonzero(keep))


def remove_island_at(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    ras: Point,
    options: EditOptions = DEFAULT_OPTIONS,
    fully_connected: bool = False,
) -> int:
    """Remove the island of the segment that contains the RAS point; returns its voxel count."""
    segment_id, labels, label = _island_at(session, segmentation_node, volume, segment, ras, fully_connected)
    drop = labels == label
    apply_mask(session, segmentation_node, segment_id, volume, drop, "remove", options)
    return int(np.count_nonzero(drop))


def remove_border_islands(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    options: EditOptions = DEFAULT_OPTIONS,
    fully_connected: bool = False,
) -> int:
    """Remove the islands that touch the image's sides (all faces but the two crossed by the head-foot axis).

    Returns how many islands were removed. The head-foot axis is the image axis closest to the patient's
    superior direction, so the rule holds for axial, coronal and sagittal acquisitions alike.
    """
    segment_id = find_segment(segmentation_node, segment)
    labels = _labels(session, segmentation_node, volume, segment_id, 0, fully_connected)
    touching = np.unique(np.concatenate([face.ravel() for face in side_faces(labels, volume)]))
    touching = touching[touching > 0]
    if touching.size:
        keep = (labels > 0) & ~np.isin(labels, touching)
        apply_mask(session, segmentation_node, segment_id, volume, keep, "set", options)
    return int(touching.size)


def side_faces(array: np.ndarray, volume) -> list[np.ndarray]:
    """The faces of a (k, j, i) array along the two image axes that do not run head to foot."""
    superior = np.abs(Grid.from_node(volume).direction_ras[2])  # S component of the i, j, k axes
    head_foot = 2 - int(np.argmax(superior))  # array axis of the image axis closest to S (k, j, i order)
    faces = []
    for axis in range(3):
        if axis != head_foot:
            faces += [np.take(array, 0, axis=axis), np.take(array, -1, axis=axis)]
    return faces


def remove_small_islands(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    min_voxels: int | None = None,
    min_mm3: float | None = None,
    options: EditOptions = DEFAULT_OPTIONS,
    fully_connected: bool = False,
) -> int:
    """Remove islands smaller than ``min_voxels`` voxels or ``min_mm3`` mm³; returns how many were removed."""
    segment_id = find_segment(segmentation_node, segment)
    minimum = minimum_voxels(volume, min_voxels, min_mm3)
    labels = _labels(session, segmentation_node, volume, segment_id, 0, fully_connected)
    sizes = np.bincount(labels.ravel())
    small = sizes < minimum
    small[0] = False
    removed = int(np.count_nonzero(small))
    if removed:
        apply_mask(session, segmentation_node, segment_id, volume, (labels > 0) & ~small[labels], "set", options)
    return removed


def split_islands(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    min_voxels: int | None = None,
    min_mm3: float | None = None,
    options: EditOptions = DEFAULT_OPTIONS,
    fully_connected: bool = False,
) -> list[str]:
    """Give each island its own segment, largest first; returns their segment IDs.

    The largest island stays in ``segment``; the others go to new segments ``<name>_2``, ``<name>_3``, ...
    Islands smaller than the minimum size (if given) are removed, as in Slicer.
    """
    segment_id = find_segment(segmentation_node, segment)
    name = segmentation_node.GetSegmentation().GetSegment(segment_id).GetName()
    minimum = 0 if min_voxels is None and min_mm3 is None else minimum_voxels(volume, min_voxels, min_mm3)
    labels = _labels(session, segmentation_node, volume, segment_id, minimum, fully_connected)
    count = int(labels.max())
    taken = [
        f"{name}_{n}"
        for n in range(2, count + 1)
        if segmentation_node.GetSegmentation().GetSegmentIdBySegmentName(f"{name}_{n}")
    ]
    if taken:
        raise SegTruthError(
            f"Cannot split {name!r} into {count} segments: {', '.join(map(repr, taken))} already exist(s); "
            "rename or remove them first."
        )
    apply_mask(session, segmentation_node, segment_id, volume, labels == 1, "set", options)
    ids = [segment_id]
    for n in range(2, count + 1):
        new_id = add_segment(segmentation_node, f"{name}_{n}")
        apply_mask(session, segmentation_node, new_id, volume, labels == n, "add", options)
        ids.append(new_id)
    return ids


def minimum_voxels(volume, min_voxels: int | None, min_mm3: float | None) -> int:
    """The smallest island size to keep, in voxels, from a size in voxels or in mm³ (exactly one)."""
    if (min_voxels is None) == (min_mm3 is None):
        raise SegTruthError("Give the minimum island size either in voxels or in mm³ (exactly one of them).")
    if min_voxels is not None:
        if isinstance(min_voxels, bool) or not float(min_voxels).is_integer() or min_voxels < 0:
            raise SegTruthError(f"Minimum island size must be a whole number of voxels >= 0, not {min_voxels!r}.")
        return int(min_voxels)
    assert min_mm3 is not None
    if not math.isfinite(min_mm3) or min_mm3 < 0:
        raise SegTruthError(f"Minimum island size must be a volume in mm³ >= 0, not {min_mm3!r}.")
    voxel_mm3 = abs(float(np.linalg.det(Grid.from_node(volume).ijk_to_ras[:3, :3])))
    # An island of n voxels has n * voxel_mm3 mm³; keep it when that is at least min_mm3.
    return math.ceil(min_mm3 / voxel_mm3 - 1e-9)


def _labels(
    session: Session, segmentation_node, volume, segment_id: str, min_voxels: int, fully_connected: bool
) -> np.ndarray:
    mask = segment_mask(session, segmentation_node, segment_id, volume)
    return label_islands(mask, volume, min_voxels, fully_connected)


def _island_at(
    session: Session, segmentation_node, volume, segment: str, ras: Point, fully_connected: bool
) -> tuple[str, np.ndarray, int]:
    segment_id = find_segment(segmentation_node, segment)
    index = voxel_at(volume, ras)
    labels = _labels(session, segmentation_node, volume, segment_id, 0, fully_connected)
    label = int(labels[index])
    if label == 0:
        x, y, z = (float(v) for v in ras)
        raise SegTruthError(f"Segment {segment!r} has no island at RAS point ({x:.4g}, {y:.4g}, {z:.4g}).")
    return segment_id, labels, label
