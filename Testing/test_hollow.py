"""Hollow: shells of Slicer's three modes with exact voxel counts, a brute-force distance check on an
anisotropic grid, and masking."""

from __future__ import annotations

import numpy as np
import pytest

from SegTruthLogic import SegTruthError
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.scene.editing import EditOptions
from SegTruthLogic.scene.segments import add_segment, find_segment, new_segmentation, segment_mask, set_segment_mask
from SegTruthLogic.scene.volumes import volume_from_array
from SegTruthLogic.tools.hollow import hollow, shell_mask

SHAPE = (30, 40, 50)  # k, j, i
BOX = (slice(10, 20), slice(10, 25), slice(10, 30))  # c = 10 (k), b = 15 (j), a = 20 (i)


def box_case(session, spacing=(1.0, 1.0, 1.0)):
    volume = volume_from_array(session, np.zeros(SHAPE, np.int16), Grid(SHAPE[::-1], np.diag([*spacing, 1.0])))
    segmentation = new_segmentation(session, volume)
    box = np.zeros(SHAPE, bool)
    box[BOX] = True
    set_segment_mask(session, segmentation, add_segment(segmentation, "box"), box, volume)
    return segmentation, volume, box


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # shell outside the box, 2 voxels thick: two layers on each face, one voxel along each edge, corners
        ("inside_surface", 4 * (20 * 15 + 15 * 10 + 10 * 20) + 4 * (20 + 15 + 10) + 8),
        # shell inside the box: the box less the box two voxels in from every face
        ("outside_surface", 20 * 15 * 10 - 16 * 11 * 6),
        # centred: one layer outside the faces, one layer inside
        ("medial_surface", 2 * (20 * 15 + 15 * 10 + 10 * 20) + 20 * 15 * 10 - 18 * 13 * 8),
    ],
)
def test_a_2mm_shell_of_a_box_has_exact_voxel_counts(session, mode, expected):
    segmentation, volume, box = box_case(session)
    assert hollow(session, segmentation, volume, "box", 2.0, mode) == expected
    result = segment_mask(session, segmentation, find_segment(segmentation, "box"), volume)
    assert result.sum() == expected
    if mode == "inside_surface":
        assert not (result & box).any()
    elif mode == "outside_surface":
        assert not (result & ~box).any()
        assert not result[12:18, 12:23, 12:28].any() and result[BOX][1, 1, 1]  # hollow, two layers thick


def test_outside_shell_is_the_voxels_within_the_thickness_on_an_anisotropic_grid(session):
    spacing = np.array([0.8, 1.0, 2.0])  # i, j, k
    _segmentation, volume, box = box_case(session, tuple(spacing))
    shell = shell_mask(box, volume, 3.0, "inside_surface")
    # brute force: outside voxels whose centre is within 3 + 0.1 * 0.8 mm of a box voxel's centre
    k, j, i = np.indices(SHAPE)
    kb, jb, ib = (np.clip(a, s.start, s.stop - 1) for a, s in zip((k, j, i), BOX))
    distance = np.sqrt(((i - ib) * spacing[0]) ** 2 + ((j - jb) * spacing[1]) ** 2 + ((k - kb) * spacing[2]) ** 2)
    np.testing.assert_array_equal(shell, ~box & (distance <= 3.08))


def test_hollow_obeys_masking_and_rejects_bad_settings(session):
    segmentation, volume, _box = box_case(session)
    wall = np.zeros(SHAPE, bool)
    wall[:, :, 30:] = True  # beside the box's +i face
    set_segment_mask(session, segmentation, add_segment(segmentation, "wall"), wall, volume)
    hollow(session, segmentation, volume, "box", 2.0, "inside_surface", EditOptions(overwrite="none"))
    result = segment_mask(session, segmentation, find_segment(segmentation, "box"), volume)
    assert segment_mask(session, segmentation, find_segment(segmentation, "wall"), volume).sum() == wall.sum()
    assert (result & wall).any()  # overwrite none: the shell overlaps the wall, which keeps its voxels
    with pytest.raises(SegTruthError, match="positive number of mm"):
        hollow(session, segmentation, volume, "box", -1.0)
    with pytest.raises(SegTruthError, match="thinner than a voxel"):
        hollow(session, segmentation, volume, "box", 0.5)
    with pytest.raises(SegTruthError, match="Unknown shell mode"):
        hollow(session, segmentation, volume, "box", 1.0, "inside")
