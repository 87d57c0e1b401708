"""Fast Marching: arrival times equal to SimpleITK's first-order FastMarching, a ball from a centre seed, a wall
that holds the front, the maximum volume, the segment-volume slider without a second march, masking."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SegTruthLogic import SegTruthError
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.scene.editing import EditOptions
from SegTruthLogic.scene.segments import add_segment, find_segment, new_segmentation, segment_mask, set_segment_mask
from SegTruthLogic.scene.volumes import volume_from_array
from SegTruthLogic.tools import fast_marching as fm

SHAPE = (31, 31, 31)


def case(session, values: np.ndarray, seed_kji, spacing=(1.0, 1.0, 1.0)):
    volume = volume_from_array(session, values, Grid(values.shape[::-1], np.diag([*spacing, 1.0])))
    segmentation = new_segmentation(session, volume)
    seeds = np.zeros(values.shape, bool)
    seeds[seed_kji] = True
    set_segment_mask(session, segmentation, add_segment(segmentation, "front"), seeds, volume)
    return segmentation, volume


def mask(session, segmentation, volume, name="front"):
    return segment_mask(session, segmentation, find_segment(segmentation, name), volume)


def test_arrival_times_equal_simpleitk_fast_marching(session):
    shape, spacing = (20, 25, 30), (1.0, 1.5, 2.0)  # i, j, k spacing
    speed = np.random.default_rng(0).uniform(0.2, 1.0, shape)
    seeds = np.zeros(shape, bool)
    seeds[10, 5, 15] = seeds[3, 20, 4] = True
    order, times = fm.arrival(speed, seeds, spacing, speed.size)
    assert len(order) == speed.size and set(np.flatnonzero(seeds)) == set(order[:2].tolist())
    assert np.all(np.diff(times) >= 0)  # frozen in order of arrival
    image = sitk.GetImageFromArray(speed)
    image.SetSpacing(spacing)
    march = sitk.FastMarchingImageFilter()
    march.SetTrialPoints([(15, 5, 10), (4, 20, 3)])
    march.SetStoppingValue(1e12)
    reference = sitk.GetArrayFromImage(march.Execute(image)).ravel()
    np.testing.assert_allclose(times, reference[order], rtol=1e-9, atol=1e-9)


def test_a_uniform_image_grows_a_ball_from_a_centre_seed(session):
    segmentation, volume = case(session, np.full(SHAPE, 50, np.int16), (15, 15, 15))
    result = fm.march(session, segmentation, volume, "front", max_volume_percent=100)
    k, j, i = np.indices(SHAPE)
    distance = np.sqrt((k - 15) ** 2 + (j - 15) ** 2 + (i - 15) ** 2)
    n = int((distance <= 10).sum())
    ball = result.mask(n)
    assert ball.sum() == n == 4169
    assert distance[ball].max() <= 10.5 and distance[~ball].min() >= 9.5  # a ball to half a voxel


def test_a_wall_of_other_intensities_holds_the_front_until_the_maximum_volume(session):
    values = np.zeros(SHAPE, np.int16)
    values[:, :, 20] = 1000  # a wall across i = 20
    segmentation, volume = case(session, values, (15, 15, 5))
    before = SHAPE[0] * SHAPE[1] * 20  # the voxels on the seed's side
    percent = 100.0 * before / values.size
    result = fm.fast_marching(session, segmentation, volume, "front", max_volume_percent=percent)
    assert result.voxels == before
    expected = np.zeros(SHAPE, bool)
    expected[:, :, :20] = True
    np.testing.assert_array_equal(mask(session, segmentation, volume), expected)
    with_hole = values.copy()
    with_hole[14:17, 14:17, 20] = 0  # a 3 x 3 hole: the front goes through before filling the wall
    segmentation, volume = case(session, with_hole, (15, 15, 5))
    result = fm.march(session, segmentation, volume, "front", max_volume_percent=100)
    assert result.voxels == values.size and result.mask().all()
    behind = np.ravel_multi_index((15, 15, 25), SHAPE)
    wall = np.ravel_multi_index((0, 0, 20), SHAPE)
    rank = {int(v): n for n, v in enumerate(result.order)}
    assert rank[behind] < rank[wall]


def test_the_volume_slider_takes_the_first_voxels_without_marching_again(session, monkeypatch):
    values = np.random.default_rng(1).normal(100, 10, SHAPE).astype(np.float32)
    segmentation, volume = case(session, values, (15, 15, 15))
    result = fm.fast_marching(session, segmentation, volume, "front", max_volume_percent=10, volume_fraction=0.5)
    assert result.voxels == int(np.ceil(values.size * 0.1))
    assert mask(session, segmentation, volume).sum() == round(0.5 * result.voxels)
    calls = []
    monkeypatch.setattr(fm, "_march", lambda *a: calls.append(a))
    monkeypatch.setattr(fm, "arrival", lambda *a, **k: calls.append(a))
    for n in (1, 17, 1234, result.voxels):
        assert fm.set_marched_volume(session, segmentation, volume, "front", result, n) == n
        got = np.flatnonzero(mask(session, segmentation, volume).ravel())
        np.testing.assert_array_equal(got, np.sort(result.order[:n]))
    assert calls == []
    assert result.voxels_for_fraction(0.25) == round(0.25 * result.voxels)
    with pytest.raises(SegTruthError, match="fraction from 0 to 1"):
        result.voxels_for_fraction(1.5)


def test_the_front_does_not_enter_forbidden_voxels(session):
    segmentation, volume = case(session, np.zeros(SHAPE, np.int16), (15, 15, 5))
    block = np.zeros(SHAPE, bool)
    block[:, :, 10:12] = True  # a full wall of another segment
    set_segment_mask(session, segmentation, add_segment(segmentation, "block"), block, volume)
    result = fm.march(session, segmentation, volume, "front", 100, options=EditOptions(editable_area="outside_all"))
    assert result.voxels == SHAPE[0] * SHAPE[1] * 10
    with pytest.raises(SegTruthError, match="is empty"):
        fm.march(session, segmentation, volume, add_segment(segmentation, "empty"))
    with pytest.raises(SegTruthError, match="percentage"):
        fm.march(session, segmentation, volume, "front", 0)


def test_a_cancelled_march_writes_nothing(session):
    from SegTruthLogic import Cancelled
    from SegTruthLogic.core.progress import CancelToken

    segmentation, volume = case(session, np.zeros(SHAPE, np.int16), (15, 15, 15))
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        fm.fast_marching(session, segmentation, volume, "front", 100, cancel=token)
    assert mask(session, segmentation, volume).sum() == 1
