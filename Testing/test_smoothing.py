"""Smoothing: Slicer's kernel rule, exact shapes, equality with the Smoothing effect's VTK pipeline and with
SciPy's morphology, joint smoothing without gaps or overlaps, masking."""

from __future__ import annotations

import numpy as np
import pytest
import vtk
from scipy import ndimage

from SegTruthLogic import SegTruthError
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.scene.editing import EditOptions
from SegTruthLogic.scene.segments import (
    add_segment,
    find_segment,
    image_array,
    new_segmentation,
    oriented_image,
    segment_mask,
    set_segment_mask,
)
from SegTruthLogic.scene.volumes import volume_from_array
from SegTruthLogic.tools.smoothing import joint_smooth, jointly_smoothed, kernel_voxels, smooth, smoothed_mask

SHAPE = (30, 36, 40)  # k, j, i


def oblique_volume(session, spacing=(0.7, 1.1, 2.0)):
    c, s = np.cos(0.3), np.sin(0.3)
    matrix = np.eye(4)
    matrix[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag(spacing)
    matrix[:3, 3] = (5.0, -3.0, 12.0)
    return volume_from_array(session, np.zeros(SHAPE, np.int16), Grid(SHAPE[::-1], matrix))


def blob(seed=1) -> np.ndarray:
    """A ragged random shape two voxels or more away from the sides."""
    rng = np.random.default_rng(seed)
    mask = ndimage.gaussian_filter(rng.random(SHAPE), 2) > 0.5
    mask[:4], mask[-4:], mask[:, :4], mask[:, -4:], mask[:, :, :4], mask[:, :, -4:] = (False,) * 6
    return mask


def ellipsoid(size_kji) -> np.ndarray:
    """vtkImageDilateErode3D's structuring element: the ellipsoid inscribed in the kernel's box."""
    axes = [np.arange(n) - (n - 1) / 2 for n in size_kji]
    k, j, i = np.meshgrid(*axes, indexing="ij")
    return (k / (size_kji[0] / 2)) ** 2 + (j / (size_kji[1] / 2)) ** 2 + (i / (size_kji[2] / 2)) ** 2 <= 1


def slicer_pipeline(mask, volume, method, kernel_mm=5.0, sigma_mm=1.5) -> np.ndarray:
    """Slicer's Smoothing effect's filters, built here from its documented parameters."""
    spacing = Grid.from_node(volume).spacing
    image = oriented_image(mask.astype(np.uint8), volume)
    if method == "gaussian":
        scale = vtk.vtkImageThreshold()
        scale.SetInputData(image)
        scale.ThresholdByLower(0)
        scale.SetInValue(0)
        scale.SetOutValue(255)
        scale.SetOutputScalarTypeToUnsignedChar()
        smooth_filter = vtk.vtkImageGaussianSmooth()
        smooth_filter.SetInputConnection(scale.GetOutputPort())
        smooth_filter.SetStandardDeviation(*(sigma_mm / s for s in spacing))
        smooth_filter.SetRadiusFactor(4.0)
        back = vtk.vtkImageThreshold()
        back.SetInputConnection(smooth_filter.GetOutputPort())
        back.ThresholdByUpper(127)
        back.SetInValue(1)
        back.SetOutValue(0)
        back.Update()
        return image_array(back.GetOutput()) != 0
    size = [int(round((kernel_mm / s + 1) / 2) * 2 - 1) for s in spacing]
    smooth_filter = vtk.vtkImageMedian3D() if method == "median" else vtk.vtkImageOpenClose3D()
    if method != "median":
        smooth_filter.SetOpenValue(1 if method == "opening" else 0)
        smooth_filter.SetCloseValue(0 if method == "opening" else 1)
    smooth_filter.SetInputData(image)
    smooth_filter.SetKernelSize(*size)
    smooth_filter.Update()
    return image_array(smooth_filter.GetOutput()) != 0


def test_kernel_size_is_the_nearest_odd_voxel_count_per_axis(session):
    volume = oblique_volume(session)
    assert kernel_voxels(volume, 5.0) == (7, 5, 3)  # 5 / 0.7 = 7.1, 5 / 1.1 = 4.5, 5 / 2 = 2.5
    assert kernel_voxels(volume, 3.0) == (5, 3, 1)  # 4.3 -> 5, 2.7 -> 3, 1.5 -> 1
    assert kernel_voxels(volume, 0.1) == (1, 1, 1)
    with pytest.raises(SegTruthError, match="positive number of mm"):
        kernel_voxels(volume, 0.0)


@pytest.mark.parametrize("method", ["median", "opening", "closing", "gaussian"])
def test_each_method_equals_slicers_pipeline_voxel_for_voxel(session, method):
    volume = oblique_volume(session)
    mask = blob()
    result = smoothed_mask(mask, volume, method, 5.0, 1.5)
    np.testing.assert_array_equal(result, slicer_pipeline(mask, volume, method))
    assert 0 < result.sum() != mask.sum()


def test_morphology_equals_scipy_with_the_same_structuring_element(session):
    volume = oblique_volume(session)
    mask = blob(2)
    size = kernel_voxels(volume, 5.0)[::-1]  # k, j, i
    element = ellipsoid(size)
    assert element.sum() == 61  # of the 3 x 5 x 7 box
    np.testing.assert_array_equal(smoothed_mask(mask, volume, "opening", 5.0), ndimage.binary_opening(mask, element))
    np.testing.assert_array_equal(smoothed_mask(mask, volume, "closing", 5.0), ndimage.binary_closing(mask, element))
    median = ndimage.median_filter(mask.astype(np.uint8), size=size) > 0
    np.testing.assert_array_equal(smoothed_mask(mask, volume, "median", 5.0), median)


def test_opening_removes_a_spike_and_closing_fills_a_hole_exactly(session):
    volume = volume_from_array(session, np.zeros(SHAPE, np.int16), Grid(SHAPE[::-1], np.diag([1.0, 1.0, 2.5, 1.0])))
    segmentation = new_segmentation(session, volume)
    box = np.zeros(SHAPE, bool)
    box[5:15, 8:22, 10:30] = True
    spiky = box.copy()
    spiky[10, 15, 5:10] = True  # a 1-voxel spike off the -i face
    sid = add_segment(segmentation, "box")
    set_segment_mask(session, segmentation, sid, spiky, volume)
    assert smooth(session, segmentation, volume, "box", "opening", 3.0) == box.sum() == 2800  # kernel 3 x 3 x 1
    holed = box.copy()
    holed[10, 15, 20] = False
    set_segment_mask(session, segmentation, sid, holed, volume)
    assert smooth(session, segmentation, volume, "box", "closing", 3.0) == 2800
    np.testing.assert_array_equal(segment_mask(session, segmentation, sid, volume), box)


def test_joint_smoothing_tiles_the_smoothed_union_without_gaps_or_overlaps(session):
    volume = oblique_volume(session, (1.0, 1.0, 1.0))
    segmentation = new_segmentation(session, volume)
    left, right = np.zeros(SHAPE, bool), np.zeros(SHAPE, bool)
    rough = blob(3)
    left[:, :, :20], right[:, :, 20:] = rough[:, :, :20], rough[:, :, 20:]
    other = np.zeros(SHAPE, bool)
    other[0, 0, 0] = True  # hidden, not smoothed
    for name, m in (("left", left), ("right", right), ("other", other)):
        set_segment_mask(session, segmentation, add_segment(segmentation, name), m, volume)
    segmentation.GetDisplayNode().SetSegmentVisibility(find_segment(segmentation, "other"), False)
    ids = joint_smooth(session, segmentation, volume, sigma_mm=1.5)
    assert [segmentation.GetSegmentation().GetSegment(s).GetName() for s in ids] == ["left", "right"]
    after = {n: segment_mask(session, segmentation, find_segment(segmentation, n), volume) for n in ("left", "right")}
    assert not (after["left"] & after["right"]).any()  # no overlap
    union = smoothed_mask(rough, volume, "gaussian", sigma_mm=1.5)
    labels = jointly_smoothed([left, right], volume, 1.5)
    np.testing.assert_array_equal(labels > 0, after["left"] | after["right"])
    # no gap: the two segments fill the union smoothed as one (up to the uint8 rounding of the single path)
    assert ((after["left"] | after["right"]) ^ union).sum() <= 0.01 * union.sum()
    assert segment_mask(session, segmentation, find_segment(segmentation, "other"), volume).sum() == 1


def test_smoothing_obeys_the_editable_area(session):
    volume = oblique_volume(session, (1.0, 1.0, 1.0))
    segmentation = new_segmentation(session, volume)
    shape = blob(4)
    sid = add_segment(segmentation, "shape")
    set_segment_mask(session, segmentation, sid, shape, volume)
    wall = np.zeros(SHAPE, bool)
    wall[:, :, 20:] = True
    set_segment_mask(session, segmentation, add_segment(segmentation, "wall"), wall & ~shape, volume)
    smooth(session, segmentation, volume, "shape", "closing", 3.0, options=EditOptions(editable_area="outside_all"))
    closed = smoothed_mask(shape, volume, "closing", 3.0)
    result = segment_mask(session, segmentation, sid, volume)
    # closing only adds: it lands where no other segment is; the wall keeps every voxel
    np.testing.assert_array_equal(result, shape | (closed & ~wall))
    assert (
        segment_mask(session, segmentation, find_segment(segmentation, "wall"), volume).sum() == (wall & ~shape).sum()
    )


def test_joint_smoothing_reports_progress_cancels_and_runs_on_the_grid_alone(session):
    """What a worker thread runs: the same labels from the volume's Grid as from the volume node; a fraction
    after each Gaussian; a cancelled token stops it before any."""
    from SegTruthLogic.core.errors import Cancelled
    from SegTruthLogic.core.progress import CancelToken

    volume = oblique_volume(session, (1.0, 1.0, 1.0))
    left, right = np.zeros(SHAPE, bool), np.zeros(SHAPE, bool)
    rough = blob(3)
    left[:, :, :20], right[:, :, 20:] = rough[:, :, :20], rough[:, :, 20:]
    seen: list[tuple[float, str]] = []
    labels = jointly_smoothed([left, right], Grid.from_node(volume), 1.5, lambda f, m: seen.append((f, m)))
    np.testing.assert_array_equal(labels, jointly_smoothed([left, right], volume, 1.5))
    assert [round(f, 3) for f, _ in seen] == [0.0, 0.333, 0.667, 1.0]
    assert seen[1][1] == "Joint smoothing: segment 1 of 2"
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        jointly_smoothed([left, right], volume, 1.5, cancel=token)
