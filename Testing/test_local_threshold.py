"""Local threshold: the clicked structure of a threshold range, cut off where only bridges thinner than the
minimum diameter join it; the rule rebuilt step by step with SciPy as the reference; the watershed and grow-cut refinements;
the range picked around the click; masking."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from SegTruthLogic import SegTruthError
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.scene.editing import EditOptions
from SegTruthLogic.scene.segments import add_segment, find_segment, new_segmentation, segment_mask, set_segment_mask
from SegTruthLogic.scene.volumes import volume_from_array
from SegTruthLogic.tools.local_threshold import (
    local_range,
    local_threshold,
    local_threshold_mask,
    local_threshold_region,
)

SHAPE = (24, 24, 44)  # k, j, i; 1 mm voxels, RAS = (i, j, k)
A = (slice(6, 18), slice(6, 18), slice(4, 16))
B = (slice(6, 18), slice(6, 18), slice(28, 40))


def case(session):
    values = np.zeros(SHAPE, np.int16)
    values[A] = 100
    values[B] = 120
    values[11:13, 11:13, 16:28] = 110  # a 2 x 2 voxel bridge
    values += np.random.default_rng(2).integers(-5, 6, SHAPE).astype(np.int16)
    volume = volume_from_array(session, values, Grid(SHAPE[::-1], np.eye(4)))
    return new_segmentation(session, volume), volume, values


def ellipsoid(n: int) -> np.ndarray:
    r = np.arange(n) - (n - 1) / 2
    k, j, i = np.meshgrid(r, r, r, indexing="ij")
    return (k**2 + j**2 + i**2) / (n / 2) ** 2 <= 1


def scipy_rule(values, click_kji, low, high, kernel: int) -> np.ndarray:
    """The module's masking rule, step by step, with SciPy's morphology and labelling."""
    in_range = (values >= low) & (values <= high)
    eroded = ndimage.binary_erosion(in_range, ellipsoid(kernel))
    labels, _count = ndimage.label(eroded)
    sizes = np.bincount(labels.ravel())
    islands = (labels > 0) & (sizes[labels] >= 125)
    island_labels, _ = ndimage.label(islands)
    selected = island_labels == island_labels[click_kji]
    others = ndimage.binary_dilation(islands & ~selected, ellipsoid(2 * kernel - 1))
    region, _ = ndimage.label(in_range & ~others)
    return region == region[click_kji]


def test_the_click_keeps_its_structure_and_cuts_thin_bridges(session):
    _segmentation, volume, values = case(session)
    region = local_threshold_mask(volume, [[10.0, 12.0, 12.0]], 50, 200, minimum_diameter_mm=5.0)
    np.testing.assert_array_equal(region, scipy_rule(values, (12, 12, 10), 50, 200, 5))
    assert region[A].all() and not region[B].any()
    assert 0 < region[11:13, 11:13, 16:28].sum() < 2 * 2 * 12  # the bridge is cut on the way to B
    joined = local_threshold_mask(volume, [[10.0, 12.0, 12.0]], 50, 200, minimum_diameter_mm=1.0)
    assert joined[A].all() and joined[B].all()  # a 1 mm minimum diameter keeps the 2 mm bridge


@pytest.mark.parametrize("algorithm", ["watershed", "growcut"])
def test_watershed_and_growcut_refinements_keep_the_clicked_structure(session, algorithm):
    _segmentation, volume, values = case(session)
    region = local_threshold_mask(volume, [[34.0, 12.0, 12.0]], 50, 200, 5.0, 2.0, algorithm)
    assert not region[A].any() and not region[(values < 50) | (values > 200)].any()
    core = (slice(8, 16), slice(8, 16), slice(30, 38))  # B two voxels in: the eroded island, a marker
    assert region[core].all() and region[B].sum() >= 0.75 * region[B].size


def test_a_click_away_from_the_range_adds_nothing_and_the_range_can_come_from_the_click(session):
    segmentation, volume, values = case(session)
    assert not local_threshold_mask(volume, [[1.0, 1.0, 1.0]], 50, 200, 5.0).any()
    low, high = local_range(volume, [10.0, 12.0, 12.0], 3.0)
    k, j, i = np.indices(SHAPE)
    near = (i - 10) ** 2 + (j - 12) ** 2 + (k - 12) ** 2 <= 9
    assert (low, high) == (float(values[near].min()), float(values[near].max()))
    used = local_threshold(session, segmentation, volume, "A", [10.0, 12.0, 12.0], brush_mm=3.0)
    assert used == (low, high)
    with pytest.raises(SegTruthError, match="both ends"):
        local_threshold(session, segmentation, volume, "A", [10.0, 12.0, 12.0], low=5)


def test_local_threshold_adds_through_masking_within_the_range(session):
    segmentation, volume, values = case(session)
    keep = np.zeros(SHAPE, bool)
    keep[A] = True
    keep[:, :, 10:] = False
    set_segment_mask(session, segmentation, add_segment(segmentation, "other"), keep, volume)
    options = EditOptions(editable_area="outside_all", intensity_range=(0, 104))
    local_threshold(session, segmentation, volume, "A", [12.0, 12.0, 12.0], 50, 200, 5.0, options=options)
    result = segment_mask(session, segmentation, find_segment(segmentation, "A"), volume)
    expected = local_threshold_mask(volume, [[12.0, 12.0, 12.0]], 50, 200, 5.0) & ~keep & (values <= 104)
    np.testing.assert_array_equal(result, expected)
    assert segment_mask(session, segmentation, find_segment(segmentation, "other"), volume).sum() == keep.sum()


@pytest.mark.parametrize("algorithm", ["masking", "watershed"])
def test_the_region_on_arrays_equals_the_tool_reports_progress_and_cancels(session, algorithm):
    """What a worker thread runs (values, grid, voxel clicks; no node) gives the tool's region."""
    from SegTruthLogic.core.errors import Cancelled
    from SegTruthLogic.core.progress import CancelToken

    _segmentation, volume, values = case(session)
    seen: list[float] = []
    region = local_threshold_region(
        values, Grid.from_node(volume), [(12, 12, 10)], 50, 200, 5.0, 2.0, algorithm, lambda f, m: seen.append(f)
    )
    np.testing.assert_array_equal(
        region, local_threshold_mask(volume, [[10.0, 12.0, 12.0]], 50, 200, 5.0, 2.0, algorithm)
    )
    assert region.sum() > 0 and seen == sorted(seen) and seen[0] == 0.0 and seen[-1] == 1.0 and len(seen) == 4
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        local_threshold_region(values, Grid.from_node(volume), [(12, 12, 10)], 50, 200, cancel=token)
