"""Paint and erase spheres: voxel sets equal a numpy reference from RAS distances on an oblique grid."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_volume

from SegTruthLogic import SegTruthError
from SegTruthLogic.scene.editing import EditOptions
from SegTruthLogic.scene.segments import add_segment, find_segment, new_segmentation, segment_mask, set_segment_mask
from SegTruthLogic.scene.volumes import load_volume
from SegTruthLogic.tools.paint import erase, paint

SHAPE = (24, 30, 36)  # k, j, i
SPACING = (0.8, 1.2, 2.0)  # i, j, k (ITK order)
ORIGIN = (12.0, -20.0, 35.0)  # LPS


def rotation() -> np.ndarray:
    """A right-handed oblique direction (rotations about two axes), so Slicer keeps the grid as written."""
    a, b = 0.5, -0.3
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


def voxel_centres_ras() -> np.ndarray:
    """(k, j, i, 3) RAS positions of the voxel centres, straight from the file's LPS geometry."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    ijk = np.stack([i, j, k], axis=-1).astype(float)
    lps = ijk * np.array(SPACING) @ rotation().T + np.array(ORIGIN)
    return lps * np.array([-1.0, -1.0, 1.0])


def reference(points, radius) -> np.ndarray:
    centres = voxel_centres_ras()
    mask = np.zeros(SHAPE, dtype=bool)
    for point in np.atleast_2d(points):
        mask |= np.sum((centres - point) ** 2, axis=-1) <= radius**2
    return mask


@pytest.fixture
def scene(session, tmp_path):
    path = write_volume(
        tmp_path / "oblique.nrrd", np.zeros(SHAPE, np.int16), SPACING, ORIGIN, tuple(rotation().ravel())
    )
    volume = load_volume(session, path)
    return session, new_segmentation(session, volume), volume


def mask_of(scene, name: str) -> np.ndarray:
    session, segmentation, volume = scene
    return segment_mask(session, segmentation, find_segment(segmentation, name), volume)


def test_paint_sphere_matches_ras_distances(scene):
    session, segmentation, volume = scene
    point = voxel_centres_ras()[12, 15, 18] + np.array([0.31, -0.17, 0.43])  # between voxel centres
    expected = reference(point, 5.3)
    assert 100 < expected.sum() < 1000
    assert paint(session, segmentation, volume, "brush", point, 5.3) == int(expected.sum())
    assert np.array_equal(mask_of(scene, "brush"), expected)


def test_stroke_and_erase(scene):
    # Radii here keep every voxel centre clear of the sphere's surface: no ties to round either way.
    session, segmentation, volume = scene
    centres = voxel_centres_ras()
    stroke = [centres[8, 10, 10], centres[12, 15, 18], centres[16, 20, 26]]
    paint(session, segmentation, volume, "brush", stroke, 4.1)
    painted = reference(stroke, 4.1)
    assert np.array_equal(mask_of(scene, "brush"), painted)
    hole = centres[12, 15, 18] + np.array([0.5, 0.5, 0.5])
    erase(session, segmentation, volume, "brush", hole, 2.7)
    assert np.array_equal(mask_of(scene, "brush"), painted & ~reference(hole, 2.7))


def test_sphere_is_clipped_at_the_volume_edge_and_masking_applies(scene):
    session, segmentation, volume = scene
    corner = voxel_centres_ras()[0, 0, 0]
    painted = reference(corner, 3.1)
    assert paint(session, segmentation, volume, "brush", corner, 3.1) == int(painted.sum())
    protected = np.zeros(SHAPE, dtype=bool)
    protected[:, :, :1] = True
    assert (painted & protected).any() and (painted & ~protected).any()
    set_segment_mask(session, segmentation, add_segment(segmentation, "protected"), protected, volume)
    erase(session, segmentation, volume, "brush", corner, 3.1, EditOptions(editable_area="outside_all"))
    # Masking applies to erasing too: only the painted voxels that are not in another segment go.
    assert np.array_equal(mask_of(scene, "brush"), painted & protected)


def test_bad_input_is_a_clear_error(scene):
    session, segmentation, volume = scene
    inside = voxel_centres_ras()[12, 15, 18]
    with pytest.raises(SegTruthError, match="radius must be a positive"):
        paint(session, segmentation, volume, "brush", inside, -2.0)
    with pytest.raises(SegTruthError, match="radius must be a positive"):
        paint(session, segmentation, volume, "brush", inside, 0.0)
    with pytest.raises(SegTruthError, match="is outside 'oblique'"):
        paint(session, segmentation, volume, "brush", inside + np.array([0.0, 0.0, 500.0]), 2.0)
    with pytest.raises(SegTruthError, match="three finite coordinates"):
        paint(session, segmentation, volume, "brush", [1.0, 2.0, float("nan")], 2.0)
    with pytest.raises(SegTruthError, match="No segment named 'brush'"):
        erase(session, segmentation, volume, "brush", inside, 2.0)
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 0  # nothing half-made
