"""Scissors: exact voxel counts for polygons in axial and sagittal views on one slice, a slab and the whole
volume, erase and fill inside and outside, an oblique view against a brute-force projection, masking."""

from __future__ import annotations

import numpy as np
import pytest

from SegTruthLogic import SegTruthError
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.scene.editing import EditOptions
from SegTruthLogic.scene.segments import add_segment, find_segment, new_segmentation, segment_mask, set_segment_mask
from SegTruthLogic.scene.volumes import volume_from_array
from SegTruthLogic.tools.scissors import polygon_mask, scissors

SHAPE = (12, 30, 40)  # k, j, i; spacing 1 x 1 x 2.5 mm, IJK-to-RAS diagonal: x = i, y = j, z = 2.5 k
SQUARE = [[9.5, 4.5, 15.0], [19.5, 4.5, 15.0], [19.5, 14.5, 15.0], [9.5, 14.5, 15.0]]  # i 10..19, j 5..14, k = 6


def case(session):
    volume = volume_from_array(session, np.zeros(SHAPE, np.int16), Grid(SHAPE[::-1], np.diag([1.0, 1.0, 2.5, 1.0])))
    return new_segmentation(session, volume), volume


def seg(session, segmentation, volume, name="cut"):
    return segment_mask(session, segmentation, find_segment(segmentation, name), volume)


@pytest.mark.parametrize(
    ("reach", "slab", "slices"),
    [("slice", None, [6]), ("slab", 5.0, [5, 6, 7]), ("slab", 4.0, [6]), ("all", None, list(range(12)))],
)
def test_fill_inside_an_axial_square(session, reach, slab, slices):
    segmentation, volume = case(session)
    assert scissors(session, segmentation, volume, "cut", SQUARE, "fill_inside", reach, slab) == 100 * len(slices)
    expected = np.zeros(SHAPE, bool)
    expected[slices, 5:15, 10:20] = True
    np.testing.assert_array_equal(seg(session, segmentation, volume), expected)


def test_erase_outside_on_one_slice_keeps_the_other_slices(session):
    segmentation, volume = case(session)
    set_segment_mask(session, segmentation, add_segment(segmentation, "cut"), np.ones(SHAPE, bool), volume)
    assert scissors(session, segmentation, volume, "cut", SQUARE, "erase_outside", "slice") == 30 * 40 - 100
    result = seg(session, segmentation, volume)
    assert result.sum() == SHAPE[0] * 30 * 40 - (30 * 40 - 100)
    assert result[6].sum() == 100 and result[6, 5:15, 10:20].all()
    assert scissors(session, segmentation, volume, "cut", SQUARE, "erase_inside", "all") == 1200
    assert seg(session, segmentation, volume).sum() == 11 * (1200 - 100)


def test_a_triangle_in_a_sagittal_view_cuts_one_i_layer(session):
    segmentation, volume = case(session)
    triangle = [[7.2, 2.0, 1.0], [7.2, 25.0, 1.0], [7.2, 2.0, 26.0]]  # x = 7.2: the layer i = 7
    scissors(session, segmentation, volume, "cut", triangle, "fill_inside", "slice")
    k, j = np.indices(SHAPE[:2])
    y, z = j.astype(float), 2.5 * k
    # inside the right triangle (y >= 2, z >= 1, (y - 2) / 23 + (z - 1) / 25 <= 1)
    inside = (y > 2) & (z > 1) & ((y - 2) / 23 + (z - 1) / 25 < 1)
    result = seg(session, segmentation, volume)
    assert not result[:, :, np.r_[0:7, 8:40]].any()
    np.testing.assert_array_equal(result[:, :, 7], inside)


def test_an_oblique_view_equals_a_brute_force_projection(session):
    _segmentation, volume = case(session)
    normal = np.array([0.3, -0.2, 1.0])
    normal /= np.linalg.norm(normal)
    e1 = np.cross(normal, [1.0, 0, 0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(normal, e1)
    centre = np.array([20.0, 15.0, 14.0])
    hexagon = [centre + 9 * np.cos(a) * e1 + 7 * np.sin(a) * e2 for a in np.linspace(0, 2 * np.pi, 7)[:-1]]
    got = polygon_mask(volume, hexagon, "slab", 6.0)
    k, j, i = np.indices(SHAPE)
    ras = np.stack([i, j, 2.5 * k], axis=-1) - np.mean(hexagon, axis=0)
    d, u, v = ras @ normal, ras @ e1, ras @ e2
    # the hexagon is convex: inside = on the inner side of every edge
    corners = np.array([[(p - np.mean(hexagon, axis=0)) @ e1, (p - np.mean(hexagon, axis=0)) @ e2] for p in hexagon])
    inside = np.ones(SHAPE, bool)
    for a, b in zip(corners, np.roll(corners, -1, axis=0)):
        inside &= (b[0] - a[0]) * (v - a[1]) - (b[1] - a[1]) * (u - a[0]) > 0
    expected = inside & (np.abs(d) <= 3.0)
    assert expected.sum() > 300
    np.testing.assert_array_equal(got, expected)


def test_scissors_obey_the_editable_area_and_reject_bad_polygons(session):
    segmentation, volume = case(session)
    area = np.zeros(SHAPE, bool)
    area[:, :, :15] = True
    set_segment_mask(session, segmentation, add_segment(segmentation, "area"), area, volume)
    options = EditOptions(editable_area="inside", inside_segment="area", overwrite="none")
    scissors(session, segmentation, volume, "cut", SQUARE, "fill_inside", "slice", options=options)
    expected = np.zeros(SHAPE, bool)
    expected[6, 5:15, 10:15] = True
    np.testing.assert_array_equal(seg(session, segmentation, volume), expected)
    assert seg(session, segmentation, volume, "area").sum() == area.sum()
    with pytest.raises(SegTruthError, match="one line"):
        scissors(session, segmentation, volume, "cut", [[0, 0, 0], [1, 1, 1], [2, 2, 2]])
    with pytest.raises(SegTruthError, match="at least three"):
        scissors(session, segmentation, volume, "cut", [[0, 0, 0], [1, 1, 1]])
    with pytest.raises(SegTruthError, match="slab needs a thickness"):
        scissors(session, segmentation, volume, "cut", SQUARE, "fill_inside", "slab")
    with pytest.raises(SegTruthError, match="Unknown scissors operation"):
        scissors(session, segmentation, volume, "cut", SQUARE, "cut")


@pytest.mark.parametrize(
    ("side", "normal", "slices"),
    [
        ("positive", (0, 0, 1), [6, 7, 8]),
        ("negative", (0, 0, 1), [4, 5, 6]),
        ("positive", (0, 0, -1), [4, 5, 6]),
        ("both", (0, 0, 1), [5, 6, 7]),
    ],
)
def test_a_slab_on_one_side_of_the_view_plane(session, side, normal, slices):
    """Slicer's positive / negative slice cut: from the plane (its layer included) to 5 mm along the view
    normal or against it; slices 2.5 mm apart, the square on slice 6."""
    segmentation, volume = case(session)
    cut = scissors(session, segmentation, volume, "cut", SQUARE, "fill_inside", "slab", 5.0, normal, slab_side=side)
    assert cut == 100 * len(slices)
    assert sorted(set(np.nonzero(seg(session, segmentation, volume))[0].tolist())) == slices
    with pytest.raises(SegTruthError, match="slab side"):
        polygon_mask(volume, SQUARE, "slab", 5.0, slab_side="up")  # type: ignore[arg-type]
