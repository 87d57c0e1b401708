"""Threshold on Slicer's real segment editor logic: exact voxel counts, masking and overwrite options."""

from __future__ import annotations

import numpy as np
import pytest

from SegTruthLogic import SegTruthError
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.scene.editing import EditOptions
from SegTruthLogic.scene.segments import find_segment, new_segmentation, segment_ids, segment_mask
from SegTruthLogic.scene.volumes import load_volume, volume_from_array
from SegTruthLogic.tools.threshold import auto_threshold, threshold


def count(session, seg, volume, name):
    return int(segment_mask(session, seg, find_segment(seg, name), volume).sum())


def test_range_gives_exact_voxel_counts(session, two_boxes):
    volume = load_volume(session, two_boxes)
    seg = new_segmentation(session, volume)
    assert threshold(session, seg, volume, "a", 50, 150) == (50.0, 150.0)
    assert count(session, seg, volume, "a") == 2000
    threshold(session, seg, volume, "both", 100, 200)
    assert count(session, seg, volume, "both") == 8000


def test_inclusive_bounds(session, two_boxes):
    volume = load_volume(session, two_boxes)
    seg = new_segmentation(session, volume)
    threshold(session, seg, volume, "exact", 200, 200)
    assert count(session, seg, volume, "exact") == 6000


def test_outside_all_segments_and_overwrite_none(session, two_boxes):
    volume = load_volume(session, two_boxes)
    seg = new_segmentation(session, volume)
    threshold(session, seg, volume, "a", 100, 100)
    threshold(session, seg, volume, "rest", 0, 300, options=EditOptions(editable_area="outside_all", overwrite="none"))
    assert count(session, seg, volume, "a") == 2000
    assert count(session, seg, volume, "rest") == 40 * 50 * 60 - 2000


def test_overwrite_all_takes_voxels_from_other_segments(session, two_boxes):
    volume = load_volume(session, two_boxes)
    seg = new_segmentation(session, volume)
    threshold(session, seg, volume, "a", 100, 100)
    threshold(session, seg, volume, "everything", 0, 300, options=EditOptions(overwrite="all"))
    assert count(session, seg, volume, "a") == 0
    assert count(session, seg, volume, "everything") == 40 * 50 * 60


def test_inside_segment_and_intensity_range(session, two_boxes):
    volume = load_volume(session, two_boxes)
    seg = new_segmentation(session, volume)
    threshold(session, seg, volume, "boxes", 100, 200)
    options = EditOptions(editable_area="inside", inside_segment="boxes", intensity_range=(150, 250), overwrite="none")
    threshold(session, seg, volume, "bright", 0, 300, options=options)
    assert count(session, seg, volume, "bright") == 6000


def test_automatic_methods_separate_the_boxes(session, two_boxes):
    volume = load_volume(session, two_boxes)
    values = np.unique(np.array([auto_threshold(volume, m)[0] for m in ("otsu", "triangle", "maximum_entropy")]))
    assert all(0 <= v < 200 for v in values)
    seg = new_segmentation(session, volume)
    _low, high = threshold(session, seg, volume, "bright", method="otsu")
    assert high == 200.0
    assert count(session, seg, volume, "bright") in (6000, 8000)


def test_bad_ranges_are_clear_errors(session, two_boxes):
    volume = load_volume(session, two_boxes)
    seg = new_segmentation(session, volume)
    with pytest.raises(SegTruthError, match="low end above"):
        threshold(session, seg, volume, "x", 10, 5)
    with pytest.raises(SegTruthError, match="Unknown threshold method"):
        threshold(session, seg, volume, "x", method="magic")


@pytest.mark.parametrize("method", [None, "otsu"])
def test_a_volume_in_memory_with_nan_is_refused_by_the_one_rule(session, method):
    """Files are checked when read; a volume built in memory meets the same check (Otsu on NaN gave -inf)."""
    values = np.arange(6 * 7 * 8, dtype=np.float32).reshape(6, 7, 8)
    values[1, 2, 3], values[4, 5, 6] = np.nan, -np.inf
    volume = volume_from_array(session, values, Grid((8, 7, 6), np.eye(4)), "scan")
    segmentation = new_segmentation(session, volume)
    limits = {"low": 10.0, "high": 100.0} if method is None else {"method": method}
    with pytest.raises(SegTruthError, match=r"^Volume 'scan': has 2 NaN or infinite voxels; SegTruth needs finite"):
        threshold(session, segmentation, volume, "a", **limits)
    assert segment_ids(segmentation) == []  # refused before any segment was made
