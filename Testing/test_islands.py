"""Islands on Slicer's vtkITKIslandMath: exact island sizes, Slicer's naming and connectivity, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_volume

from SegTruthLogic import SegTruthError
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.scene.editing import EditOptions
from SegTruthLogic.scene.segments import add_segment, find_segment, new_segmentation, segment_mask, set_segment_mask
from SegTruthLogic.scene.volumes import load_volume
from SegTruthLogic.tools.islands import (
    island_sizes,
    keep_island_at,
    keep_largest_island,
    minimum_voxels,
    remove_border_islands,
    remove_island_at,
    remove_small_islands,
    split_islands,
)

SHAPE = (20, 20, 20)  # k, j, i on 1 x 1 x 2 mm voxels (2 mm³ each)
BIG = (slice(10, 13), slice(10, 13), slice(10, 13))  # 27 voxels
MEDIUM = (slice(3, 5), slice(3, 5), slice(14, 16))  # 8 voxels
SINGLES = [(1, 1, 1), (17, 2, 5)]  # 1 voxel each
DIAGONAL = [(15, 15, 15), (16, 16, 16)]  # two 1-voxel islands, one island when fully connected


def islands_mask() -> np.ndarray:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[BIG] = True
    mask[MEDIUM] = True
    for index in SINGLES + DIAGONAL:
        mask[index] = True
    return mask


@pytest.fixture
def scene(session, tmp_path):
    volume = load_volume(session, write_volume(tmp_path / "islands.nrrd", np.zeros(SHAPE, np.int16), (1.0, 1.0, 2.0)))
    segmentation = new_segmentation(session, volume)
    set_segment_mask(session, segmentation, add_segment(segmentation, "lesion"), islands_mask(), volume)
    return session, segmentation, volume


def ras_of(volume, kji) -> list[float]:
    k, j, i = kji
    return list((Grid.from_node(volume).ijk_to_ras @ [i, j, k, 1.0])[:3])


def mask_of(scene, name: str) -> np.ndarray:
    session, segmentation, volume = scene
    return segment_mask(session, segmentation, find_segment(segmentation, name), volume)


def test_island_sizes_use_face_connectivity_by_default(scene):
    session, segmentation, volume = scene
    assert island_sizes(session, segmentation, volume, "lesion") == [27, 8, 1, 1, 1, 1]
    assert island_sizes(session, segmentation, volume, "lesion", fully_connected=True) == [27, 8, 2, 1, 1]


def test_keep_largest_island(scene):
    session, segmentation, volume = scene
    assert keep_largest_island(session, segmentation, volume, "lesion") == 27
    expected = np.zeros(SHAPE, dtype=bool)
    expected[BIG] = True
    assert np.array_equal(mask_of(scene, "lesion"), expected)


def test_keep_and_remove_island_at_a_ras_point(scene):
    session, segmentation, volume = scene
    assert remove_island_at(session, segmentation, volume, "lesion", ras_of(volume, (10, 11, 12))) == 27
    assert int(mask_of(scene, "lesion").sum()) == 8 + 4
    assert keep_island_at(session, segmentation, volume, "lesion", ras_of(volume, (4, 3, 15))) == 8
    expected = np.zeros(SHAPE, dtype=bool)
    expected[MEDIUM] = True
    assert np.array_equal(mask_of(scene, "lesion"), expected)


def test_remove_small_islands_in_voxels_and_mm3(scene):
    session, segmentation, volume = scene
    assert remove_small_islands(session, segmentation, volume, "lesion", min_voxels=2) == 4
    assert int(mask_of(scene, "lesion").sum()) == 35
    # 16 mm³ is exactly 8 voxels of 2 mm³: the 8-voxel island stays; 16.5 mm³ needs 9 voxels.
    assert minimum_voxels(volume, None, 16.0) == 8
    assert remove_small_islands(session, segmentation, volume, "lesion", min_mm3=16.0) == 0
    assert remove_small_islands(session, segmentation, volume, "lesion", min_mm3=16.5) == 1
    assert int(mask_of(scene, "lesion").sum()) == 27


AXIAL = (1, 0, 0, 0, 1, 0, 0, 0, 1)  # k runs head to foot
CORONAL = (1, 0, 0, 0, 0, -1, 0, 1, 0)  # j runs head to foot (LPS direction columns: i = L, j = S, k = -P)


@pytest.mark.parametrize(("direction", "kept"), [(AXIAL, "on k = 0"), (CORONAL, "on j = 0")])
def test_remove_border_islands_spares_the_end_slices(session, tmp_path, direction, kept):
    volume = load_volume(
        session, write_volume(tmp_path / "border.nrrd", np.zeros(SHAPE, np.int16), (1.0, 1.0, 2.0), direction=direction)
    )
    segmentation = new_segmentation(session, volume)
    mask = np.zeros(SHAPE, dtype=bool)
    mask[BIG] = True  # inside: always kept
    places = {"on i = 0": (5, 5, 0), "on k = 0": (0, 5, 5), "on j = 0": (5, 0, 5), "on i = 19": (6, 6, 19)}
    for index in places.values():
        mask[index] = True
    set_segment_mask(session, segmentation, add_segment(segmentation, "air"), mask, volume)
    assert remove_border_islands(session, segmentation, volume, "air") == 3
    expected = np.zeros(SHAPE, dtype=bool)
    expected[BIG] = True
    expected[places[kept]] = True
    assert np.array_equal(segment_mask(session, segmentation, find_segment(segmentation, "air"), volume), expected)
    assert remove_border_islands(session, segmentation, volume, "air") == 0


def test_split_islands_names_segments_by_decreasing_size(scene):
    session, segmentation, volume = scene
    ids = split_islands(session, segmentation, volume, "lesion", min_voxels=1, fully_connected=True)
    names = [segmentation.GetSegmentation().GetSegment(i).GetName() for i in ids]
    assert names == ["lesion", "lesion_2", "lesion_3", "lesion_4", "lesion_5"]
    assert [int(mask_of(scene, n).sum()) for n in names] == [27, 8, 2, 1, 1]
    total = np.zeros(SHAPE, dtype=int)
    for name in names:
        total += mask_of(scene, name)
    assert np.array_equal(total, islands_mask().astype(int))  # every voxel in exactly one segment


def test_split_drops_islands_below_the_minimum(scene):
    session, segmentation, volume = scene
    ids = split_islands(session, segmentation, volume, "lesion", min_voxels=8)
    assert [int(mask_of(scene, segmentation.GetSegmentation().GetSegment(i).GetName()).sum()) for i in ids] == [27, 8]


def test_masking_applies(scene):
    session, segmentation, volume = scene
    region = np.zeros(SHAPE, dtype=bool)
    region[:, :, 10:] = True  # holds the 27 and 8 voxel islands and the diagonal pair, not the two singles
    set_segment_mask(session, segmentation, add_segment(segmentation, "region"), region, volume)
    options = EditOptions(editable_area="inside", inside_segment="region", overwrite="none")
    keep_largest_island(session, segmentation, volume, "lesion", options=options)
    assert int(mask_of(scene, "lesion").sum()) == 27 + 2  # the singles outside the editable area stay


def test_bad_input_is_a_clear_error(scene):
    session, segmentation, volume = scene
    with pytest.raises(SegTruthError, match="No segment named 'tumour'"):
        keep_largest_island(session, segmentation, volume, "tumour")
    with pytest.raises(SegTruthError, match="outside"):
        keep_island_at(session, segmentation, volume, "lesion", [500.0, 0.0, 0.0])
    with pytest.raises(SegTruthError, match="no island at RAS point"):
        keep_island_at(session, segmentation, volume, "lesion", ras_of(volume, (0, 0, 0)))
    with pytest.raises(SegTruthError, match="exactly one"):
        remove_small_islands(session, segmentation, volume, "lesion", min_voxels=3, min_mm3=4.0)
    with pytest.raises(SegTruthError, match="whole number"):
        remove_small_islands(session, segmentation, volume, "lesion", min_voxels=-1)
    with pytest.raises(SegTruthError, match="mm³"):
        remove_small_islands(session, segmentation, volume, "lesion", min_mm3=float("nan"))
    add_segment(segmentation, "lesion_3")
    with pytest.raises(SegTruthError, match="'lesion_3' already exist"):
        split_islands(session, segmentation, volume, "lesion")
    assert int(mask_of(scene, "lesion").sum()) == int(islands_mask().sum())  # nothing was changed
