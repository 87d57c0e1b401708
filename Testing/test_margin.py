"""Margin on Slicer's vtkITKImageMargin: exact voxel counts on anisotropic and oblique grids."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_volume

from SegTruthLogic import SegTruthError
from SegTruthLogic.scene.editing import EditOptions
from SegTruthLogic.scene.segments import add_segment, find_segment, new_segmentation, segment_mask, set_segment_mask
from SegTruthLogic.scene.volumes import load_volume
from SegTruthLogic.tools.margin import grow, margin, shrink

SHAPE = (30, 40, 50)  # k, j, i
BOX = (slice(10, 20), slice(10, 25), slice(10, 30))  # c = 10 (k), b = 15 (j), a = 20 (i) voxels


def box_scene(session, tmp_path, spacing, direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)):
    path = write_volume(tmp_path / "margin.nrrd", np.zeros(SHAPE, np.int16), spacing, (3.0, -7.0, 11.0), direction)
    volume = load_volume(session, path)
    segmentation = new_segmentation(session, volume)
    box = np.zeros(SHAPE, dtype=bool)
    box[BOX] = True
    set_segment_mask(session, segmentation, add_segment(segmentation, "box"), box, volume)
    return segmentation, volume, box


def count(session, segmentation, volume, name="box") -> int:
    return int(segment_mask(session, segmentation, find_segment(segmentation, name), volume).sum())


def reference_grow(mask: np.ndarray, spacing_kji: np.ndarray, radius_mm: float) -> np.ndarray:
    """Voxels whose centre is within radius_mm of a mask voxel's centre (brute force over offsets)."""
    reach = np.floor(radius_mm / spacing_kji + 1e-9).astype(int)
    out = mask.copy()
    for dk in range(-reach[0], reach[0] + 1):
        for dj in range(-reach[1], reach[1] + 1):
            for di in range(-reach[2], reach[2] + 1):
                if np.sum((np.array([dk, dj, di]) * spacing_kji) ** 2) <= radius_mm**2 + 1e-9:
                    out |= np.roll(mask, (dk, dj, di), axis=(0, 1, 2))  # the box is far from the edges
    return out


def test_grow_2mm_on_1x1x2_spacing_is_exact(session, tmp_path):
    segmentation, volume, _box = box_scene(session, tmp_path, (1.0, 1.0, 2.0))
    a, b, c = 20, 15, 10
    # In-plane the 13-voxel disc of radius 2 (rounded corners add 1 voxel each); one slice above and below.
    expected = c * (a * b + 4 * a + 4 * b + 4) + 2 * a * b
    assert grow(session, segmentation, volume, "box", 2.0) == expected == 5040
    assert count(session, segmentation, volume) == expected


def test_shrink_2mm_on_1x1x2_spacing_is_exact(session, tmp_path):
    segmentation, volume, _box = box_scene(session, tmp_path, (1.0, 1.0, 2.0))
    expected = (20 - 4) * (15 - 4) * (10 - 2)  # two voxels off each in-plane face, one slice off each end
    assert shrink(session, segmentation, volume, "box", 2.0) == expected
    assert count(session, segmentation, volume) == expected
    assert margin(session, segmentation, volume, "box", 0.0) == expected  # zero margin changes nothing


def test_grow_on_an_oblique_anisotropic_grid_matches_distances_in_mm(session, tmp_path):
    c, s = np.cos(0.4), np.sin(0.4)
    direction = (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)
    spacing = (0.7, 1.1, 1.6)
    segmentation, volume, box = box_scene(session, tmp_path, spacing, direction)
    expected = reference_grow(box, np.array(spacing[::-1]), 2.5)
    assert grow(session, segmentation, volume, "box", 2.5) == int(expected.sum())
    assert np.array_equal(segment_mask(session, segmentation, find_segment(segmentation, "box"), volume), expected)
    assert shrink(session, segmentation, volume, "box", 2.5) == int(box.sum())  # a box grows and shrinks back


def test_masking_keeps_other_segments(session, tmp_path):
    segmentation, volume, _box = box_scene(session, tmp_path, (1.0, 1.0, 2.0))
    wall = np.zeros(SHAPE, dtype=bool)
    wall[:, :, 30:32] = True  # touches the box's +i face
    set_segment_mask(session, segmentation, add_segment(segmentation, "wall"), wall, volume)
    grow(session, segmentation, volume, "box", 2.0, EditOptions(editable_area="outside_all", overwrite="none"))
    assert count(session, segmentation, volume, "wall") == int(wall.sum())
    grown = segment_mask(session, segmentation, find_segment(segmentation, "box"), volume)
    assert not (grown & wall).any()
    # What grew past the +i face (1 voxel out: 15 + 2 wide, 2 out: 15 wide, on 10 slices) fell in the wall.
    assert int(grown.sum()) == 5040 - 10 * ((15 + 2) + 15)


def test_bad_input_is_a_clear_error(session, tmp_path):
    segmentation, volume, _box = box_scene(session, tmp_path, (1.0, 1.0, 2.0))
    with pytest.raises(SegTruthError, match="No segment named 'liver'"):
        grow(session, segmentation, volume, "liver", 1.0)
    with pytest.raises(SegTruthError, match="Grow margin must be a distance in mm >= 0"):
        grow(session, segmentation, volume, "box", -1.0)
    with pytest.raises(SegTruthError, match="Shrink margin"):
        shrink(session, segmentation, volume, "box", float("inf"))
    with pytest.raises(SegTruthError, match="finite"):
        margin(session, segmentation, volume, "box", float("nan"))
    assert count(session, segmentation, volume) == 20 * 15 * 10
