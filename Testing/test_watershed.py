"""Watershed: equality with SimpleITK's GradientMagnitudeRecursiveGaussian + MorphologicalWatershedFromMarkers
on a file read with its own geometry, the visible segments as markers, masking, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import write_volume

from SegTruthLogic import SegTruthError
from SegTruthLogic.scene.editing import EditOptions
from SegTruthLogic.scene.segments import add_segment, find_segment, new_segmentation, segment_mask, set_segment_mask
from SegTruthLogic.scene.volumes import load_volume
from SegTruthLogic.tools.watershed import watershed

SHAPE = (24, 30, 36)  # k, j, i


def spheres_image(tmp_path, spacing=(0.9, 1.1, 2.0)):
    """Two bright overlapping balls in noise, on an oblique anisotropic grid (LPS direction, right-handed)."""
    k, j, i = np.indices(SHAPE)
    values = 40.0 * (((i - 12) ** 2 + (j - 15) ** 2 + ((k - 12) * 2) ** 2) < 64)
    values += 80.0 * (((i - 24) ** 2 + (j - 15) ** 2 + ((k - 12) * 2) ** 2) < 64)
    values += np.random.default_rng(5).normal(0, 4, SHAPE)
    c, s = np.cos(0.5), np.sin(0.5)
    direction = (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)
    return write_volume(tmp_path / "balls.nrrd", values.astype(np.float32), spacing, (4.0, -2.0, 7.0), direction)


def markers() -> np.ndarray:
    out = np.zeros(SHAPE, np.uint16)
    out[12, 15, 11:14] = 1  # in the first ball
    out[12, 15, 23:26] = 2  # in the second
    out[1, 1, :] = 3  # background
    return out


def reference(path, labels: np.ndarray, sigma: float) -> np.ndarray:
    image = sitk.ReadImage(str(path))
    feature = sitk.GradientMagnitudeRecursiveGaussian(image, sigma)
    marker_image = sitk.GetImageFromArray(labels)
    marker_image.CopyInformation(image)
    return sitk.GetArrayFromImage(
        sitk.MorphologicalWatershedFromMarkers(feature, marker_image, markWatershedLine=False, fullyConnected=False)
    )


@pytest.mark.parametrize("sigma", [2.0, 1.0])
def test_watershed_equals_simpleitk_voxel_for_voxel(session, tmp_path, sigma):
    path = spheres_image(tmp_path)
    volume = load_volume(session, path)
    segmentation = new_segmentation(session, volume)
    seeds = markers()
    for n, name in enumerate(("left", "right", "background"), start=1):
        set_segment_mask(session, segmentation, add_segment(segmentation, name), seeds == n, volume)
    ids = watershed(session, segmentation, volume, object_scale_mm=sigma)
    assert len(ids) == 3
    expected = reference(path, seeds, sigma)
    masks = [segment_mask(session, segmentation, sid, volume) for sid in ids]
    for n, m in enumerate(masks, start=1):
        np.testing.assert_array_equal(m, expected == n)
    assert sum(int(m.sum()) for m in masks) == int(np.prod(SHAPE))  # every voxel in one basin
    assert 200 < masks[0].sum() < 2000 and 200 < masks[1].sum() < 2000


def test_hidden_and_empty_segments_are_not_markers_and_masking_is_obeyed(session, tmp_path):
    path = spheres_image(tmp_path)
    volume = load_volume(session, path)
    segmentation = new_segmentation(session, volume)
    seeds = markers()
    for n, name in enumerate(("left", "right", "background"), start=1):
        set_segment_mask(session, segmentation, add_segment(segmentation, name), seeds == n, volume)
    add_segment(segmentation, "empty")
    hidden = np.zeros(SHAPE, bool)
    hidden[20:, 20:, 30:] = True
    hidden_id = add_segment(segmentation, "hidden")
    set_segment_mask(session, segmentation, hidden_id, hidden, volume)
    segmentation.GetDisplayNode().SetSegmentVisibility(hidden_id, False)
    ids = watershed(session, segmentation, volume, options=EditOptions(editable_area="outside_all"))
    assert [segmentation.GetSegmentation().GetSegment(s).GetName() for s in ids] == ["left", "right", "background"]
    expected = reference(path, seeds, 2.0)  # the hidden and the empty segment are no markers
    assert segment_mask(session, segmentation, hidden_id, volume).sum() == hidden.sum()  # outside all: not edited
    for n, sid in enumerate(ids, start=1):
        np.testing.assert_array_equal(segment_mask(session, segmentation, sid, volume), (expected == n) & ~hidden)


def test_watershed_needs_two_markers_and_a_positive_scale(session, tmp_path):
    volume = load_volume(session, spheres_image(tmp_path))
    segmentation = new_segmentation(session, volume)
    set_segment_mask(session, segmentation, add_segment(segmentation, "one"), markers() == 1, volume)
    with pytest.raises(SegTruthError, match="at least two non-empty seed segments"):
        watershed(session, segmentation, volume)
    set_segment_mask(session, segmentation, add_segment(segmentation, "two"), markers() == 2, volume)
    with pytest.raises(SegTruthError, match="positive number of mm"):
        watershed(session, segmentation, volume, object_scale_mm=0)


def test_a_cancelled_watershed_writes_nothing(session, tmp_path):
    from SegTruthLogic import Cancelled
    from SegTruthLogic.core.progress import CancelToken

    volume = load_volume(session, spheres_image(tmp_path))
    segmentation = new_segmentation(session, volume)
    seeds = markers()
    for n, name in enumerate(("left", "right"), start=1):
        set_segment_mask(session, segmentation, add_segment(segmentation, name), seeds == n, volume)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        watershed(session, segmentation, volume, progress=lambda fraction, message: None, cancel=token)
    assert segment_mask(session, segmentation, find_segment(segmentation, "left"), volume).sum() == 3
