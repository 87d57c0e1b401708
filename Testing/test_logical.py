"""Logical operators on segments: exact voxel counts, Slicer's bypass-masking default, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_volume

from SegTruthLogic import SegTruthError
from SegTruthLogic.scene.editing import EditOptions
from SegTruthLogic.scene.segments import add_segment, find_segment, new_segmentation, segment_mask, set_segment_mask
from SegTruthLogic.scene.volumes import load_volume
from SegTruthLogic.tools.logical import clear, copy, fill, intersect, invert, logical_operation, subtract, union

SHAPE = (12, 14, 16)
TOTAL = 12 * 14 * 16


@pytest.fixture
def scene(session, tmp_path):
    volume = load_volume(session, write_volume(tmp_path / "v.nii.gz", np.zeros(SHAPE, np.int16), (0.9, 1.3, 2.5)))
    segmentation = new_segmentation(session, volume)
    a = np.zeros(SHAPE, dtype=bool)
    a[2:8, 2:8, 2:8] = True  # 216
    b = np.zeros(SHAPE, dtype=bool)
    b[5:10, 5:12, 5:14] = True  # 5 * 7 * 9 = 315; overlaps a in 3 * 3 * 3 = 27
    set_segment_mask(session, segmentation, add_segment(segmentation, "a"), a, volume)
    set_segment_mask(session, segmentation, add_segment(segmentation, "b"), b, volume)
    return session, segmentation, volume


def counts(scene) -> tuple[int, int]:
    session, segmentation, volume = scene
    return tuple(  # type: ignore[return-value]
        int(segment_mask(session, segmentation, find_segment(segmentation, n), volume).sum()) for n in ("a", "b")
    )


@pytest.mark.parametrize(
    ("operation", "expected_a"),
    [
        (union, 216 + 315 - 27),
        (intersect, 27),
        (subtract, 216 - 27),
        (copy, 315),
    ],
)
def test_operators_with_a_modifier(scene, operation, expected_a):
    session, segmentation, volume = scene
    operation(session, segmentation, volume, "a", "b")
    assert counts(scene) == (expected_a, 315)  # the modifier segment is never changed


@pytest.mark.parametrize(("operation", "expected_a"), [(invert, TOTAL - 216), (clear, 0), (fill, TOTAL)])
def test_operators_on_one_segment(scene, operation, expected_a):
    session, segmentation, volume = scene
    operation(session, segmentation, volume, "a")
    assert counts(scene) == (expected_a, 315)  # bypass masking: other segments keep their voxels


def test_add_is_union_and_masking_can_apply(scene):
    session, segmentation, volume = scene
    logical_operation(session, segmentation, volume, "add", "a", "b")
    assert counts(scene) == (504, 315)
    fill(session, segmentation, volume, "a", options=EditOptions(overwrite="all"))
    assert counts(scene) == (TOTAL, 0)  # with Segment Editor options, filling takes the other segment's voxels
    invert(session, segmentation, volume, "b", options=EditOptions(editable_area="outside_all", overwrite="none"))
    assert counts(scene) == (TOTAL, 0)  # nowhere is outside all segments


def test_bad_input_is_a_clear_error(scene):
    session, segmentation, volume = scene
    with pytest.raises(SegTruthError, match="Unknown logical operation 'xor'"):
        logical_operation(session, segmentation, volume, "xor", "a", "b")  # type: ignore[arg-type]
    with pytest.raises(SegTruthError, match="needs a modifier segment"):
        logical_operation(session, segmentation, volume, "union", "a")
    with pytest.raises(SegTruthError, match="takes no modifier"):
        logical_operation(session, segmentation, volume, "invert", "a", "b")
    with pytest.raises(SegTruthError, match="No segment named 'c'"):
        union(session, segmentation, volume, "a", "c")
    with pytest.raises(SegTruthError, match="No segment named 'c'"):
        clear(session, segmentation, volume, "c")
    assert counts(scene) == (216, 315)
