"""Flood fill: exact fills on synthetic boxes (tolerance, the neighbourhood rule), equality with SimpleITK's
ConnectedThreshold on the real chest CT, and the editable area as a barrier."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from slicer.util import arrayFromVolume

from SegTruthLogic import SegTruthError
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.scene.editing import EditOptions
from SegTruthLogic.scene.segments import add_segment, find_segment, new_segmentation, segment_mask, set_segment_mask
from SegTruthLogic.scene.volumes import load_volume, volume_from_array
from SegTruthLogic.tools.flood_fill import flood_fill

SHAPE = (30, 30, 40)  # k, j, i


def two_boxes_and_a_bridge(session, noise: bool = True):
    """Boxes of 10^3 voxels at about 100 (noise +-3), joined by a 1-voxel bridge of 9 voxels along i."""
    values = np.zeros(SHAPE, np.int16)
    values[5:15, 5:15, 5:15] = 100
    values[5:15, 5:15, 25:35] = 100
    values[10, 10, 15:25] = 100
    if noise:
        values += np.random.default_rng(0).integers(-3, 4, SHAPE).astype(np.int16)
    volume = volume_from_array(session, values, Grid(SHAPE[::-1], np.diag([1.0, 1.0, 1.0, 1.0])))
    return new_segmentation(session, volume), volume


def test_fill_takes_the_connected_voxels_within_the_tolerance(session):
    segmentation, volume = two_boxes_and_a_bridge(session)
    centre = [10.0, 10.0, 10.0]  # RAS of voxel (i, j, k) = (10, 10, 10): IJK-to-RAS is the identity here
    assert flood_fill(session, segmentation, volume, "fill", centre, tolerance=10, neighbourhood_mm=0) == 2010
    assert flood_fill(session, segmentation, volume, "small", centre, tolerance=0, neighbourhood_mm=0) < 2010
    with pytest.raises(SegTruthError, match="outside"):
        flood_fill(session, segmentation, volume, "fill", [100.0, 0.0, 0.0])
    with pytest.raises(SegTruthError, match="tolerance"):
        flood_fill(session, segmentation, volume, "fill", centre, tolerance=-1)


@pytest.mark.parametrize(("radius", "expected"), [(1.0, 1000), (1.5, 992)])
def test_the_neighbourhood_stops_the_fill_at_thin_bridges(session, radius, expected):
    """A voxel is taken when at least half the voxels within the radius (a sphere in mm) are in range: the
    bridge (3 of 7 at 1 mm) is not; at 1.5 mm the box's 8 corners (7 of 19) are not either."""
    segmentation, volume = two_boxes_and_a_bridge(session, noise=False)
    assert flood_fill(session, segmentation, volume, "fill", [10, 10, 10], 10, radius) == expected
    mask = segment_mask(session, segmentation, find_segment(segmentation, "fill"), volume)
    assert not mask[:, :, 15:].any()


def test_fill_equals_simpleitk_connected_threshold_on_the_chest_ct(session, ct_chest):
    volume = load_volume(session, ct_chest[0])
    segmentation = new_segmentation(session, volume)
    values = arrayFromVolume(volume)
    index = (17, 64, 40)  # k, j, i: in the right lung
    ras = (Grid.from_node(volume).ijk_to_ras @ np.array([index[2], index[1], index[0], 1.0]))[:3]
    count = flood_fill(session, segmentation, volume, "lung", ras, tolerance=150, neighbourhood_mm=0)
    value = float(values[index])
    reference = sitk.ConnectedThreshold(
        sitk.GetImageFromArray(values), seedList=[index[::-1]], lower=value - 150, upper=value + 150
    )
    expected = sitk.GetArrayFromImage(reference) != 0
    assert count == int(expected.sum()) > 10000
    np.testing.assert_array_equal(
        segment_mask(session, segmentation, find_segment(segmentation, "lung"), volume), expected
    )


def test_the_editable_area_is_a_barrier_and_other_segments_keep_their_voxels(session):
    segmentation, volume = two_boxes_and_a_bridge(session)
    wall = np.zeros(SHAPE, bool)
    wall[:, :, 19] = True  # cuts the bridge
    set_segment_mask(session, segmentation, add_segment(segmentation, "wall"), wall, volume)
    options = EditOptions(editable_area="outside_all")
    assert flood_fill(session, segmentation, volume, "fill", [10, 10, 10], 10, 0, options=options) == 1004
    assert segment_mask(session, segmentation, find_segment(segmentation, "wall"), volume).sum() == wall.sum()
