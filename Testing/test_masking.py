"""SegTruth's numpy masking (Slicer 5.8/5.9) gives the voxels Slicer's own vtkSlicerSegmentEditorLogic gives.

Every editable area, overwrite mode, modification mode and the editable intensity range, on an oblique,
anisotropic grid, with segments that overlap (two layers), one hidden segment and a mask that reaches into all
of them: each segment must come out voxel-identical, and the edited segment's status must match.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import slicer

from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.scene.editing import EditOptions, apply_mask, modify_with_editor_logic
from SegTruthLogic.scene.masking import modify_segment
from SegTruthLogic.scene.segments import add_segment, new_segmentation, segment_ids, segment_mask, set_segment_mask
from SegTruthLogic.scene.session import Session
from SegTruthLogic.scene.volumes import volume_from_array

SHAPE = (14, 17, 19)  # k, j, i
AREAS = ["everywhere", "inside", "outside_all", "inside_all", "outside_visible", "inside_visible"]
OVERWRITES = ["all", "visible", "none"]
MODES = ["set", "add", "remove"]
RANGES = [None, (40.0, 170.5)]
# The reference: Slicer's own Segment Editor logic (Slicer >= 5.10, and slicer-core in CI).
needs_slicers_logic = pytest.mark.skipif(
    not hasattr(slicer, "vtkSlicerSegmentEditorLogic"), reason="this Slicer has no vtkSlicerSegmentEditorLogic"
)


def oblique_grid() -> Grid:
    angle = np.deg2rad(25)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    matrix = np.eye(4)
    matrix[:3, :3] = rotation @ np.diag([0.7, 1.1, 2.5])
    matrix[:3, 3] = (-12.0, 30.5, 7.25)
    return Grid((SHAPE[2], SHAPE[1], SHAPE[0]), matrix)


def ball(center: tuple[int, int, int], radius: float) -> np.ndarray:
    k, j, i = np.indices(SHAPE)
    return (k - center[0]) ** 2 + (j - center[1]) ** 2 + (i - center[2]) ** 2 <= radius**2


def build_scene() -> tuple[Session, object, object, dict[str, str]]:
    """A volume and a segmentation with 'edited', 'a' and 'b' overlapping (so two layers) and 'hidden'."""
    session = Session.new_headless()
    rng = np.random.default_rng(7)
    intensities = rng.integers(0, 256, size=SHAPE).astype(np.int16)
    volume = volume_from_array(session, intensities, oblique_grid(), "image")
    segmentation = new_segmentation(session, volume)
    ids = {name: add_segment(segmentation, name) for name in ("edited", "a", "b", "hidden")}
    set_segment_mask(session, segmentation, ids["edited"], ball((6, 8, 9), 4.5), volume)
    set_segment_mask(session, segmentation, ids["a"], ball((4, 5, 12), 4.0), volume)
    set_segment_mask(session, segmentation, ids["b"], ball((9, 11, 6), 4.0), volume)
    set_segment_mask(session, segmentation, ids["hidden"], ball((10, 4, 14), 3.5), volume)
    # 'b' overlaps 'edited'; the others share one layer, as segments painted in Slicer do.
    overlap = segment_mask(session, segmentation, ids["b"], volume) | ball((6, 8, 7), 2.0)
    set_segment_mask(session, segmentation, ids["b"], overlap, volume)
    segmentation.GetSegmentation().CollapseBinaryLabelmaps(False)
    segmentation.GetDisplayNode().SetSegmentVisibility(ids["hidden"], False)
    return session, segmentation, volume, ids


def modifier() -> np.ndarray:
    """Reaches into every segment and the background."""
    return ball((7, 7, 10), 5.5) | ball((10, 4, 14), 2.0)


def outcome(session, segmentation, volume, ids) -> dict[str, np.ndarray]:
    return {name: segment_mask(session, segmentation, sid, volume) for name, sid in ids.items()}


def test_the_scene_has_shared_layers_and_overlap():
    session, segmentation, volume, ids = build_scene()
    masks = outcome(session, segmentation, volume, ids)
    assert 2 <= segmentation.GetSegmentation().GetNumberOfLayers() < len(ids)  # some share a layer, some overlap
    assert (masks["edited"] & masks["b"]).sum() > 0
    assert all(mask.sum() > 0 for mask in masks.values())
    assert (modifier() & masks["hidden"]).sum() > 0 and (modifier() & masks["a"]).sum() > 0


@pytest.mark.parametrize(
    ("area", "overwrite", "mode", "intensity"), list(itertools.product(AREAS, OVERWRITES, MODES, RANGES))
)
def test_numpy_masking_equals_slicers_segment_editor_logic(area, overwrite, mode, intensity):
    options = EditOptions(
        editable_area=area,
        inside_segment="a" if area == "inside" else None,
        intensity_range=intensity,
        overwrite=overwrite,
    )
    results = []
    for write in (modify_with_editor_logic, modify_segment):
        session, segmentation, volume, ids = build_scene()
        before = outcome(session, segmentation, volume, ids)
        write(session, segmentation, ids["edited"], volume, modifier(), mode, options)
        after = outcome(session, segmentation, volume, ids)
        status = slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentStatus(
            segmentation.GetSegmentation().GetSegment(ids["edited"])
        )
        results.append((before, after, status, len(segment_ids(segmentation))))
    (before, slicers, slicers_status, slicers_count), (_, ours, our_status, our_count) = results
    assert our_count == slicers_count == len(ids)
    assert our_status == slicers_status
    if mode == "remove" and area == "inside":
        # Slicer's logic gives the mask segment the voxels erased outside it; SegTruth (apply_mask, on every
        # Slicer) erases the same voxels and leaves every other segment as it was.
        assert np.array_equal(ours["edited"], slicers["edited"])
        assert (before["edited"] & ~ours["edited"] & ~before["a"]).any()  # erased outside 'a' too, as Slicer does
        assert all(np.array_equal(ours[name], before[name]) for name in ids if name != "edited")
        return
    for name in slicers:
        assert np.array_equal(ours[name], slicers[name]), (
            f"segment {name!r} differs in {int((ours[name] ^ slicers[name]).sum())} voxels"
        )
    assert any(not np.array_equal(before[name], slicers[name]) for name in slicers)  # the edit did something


def test_erasing_inside_a_segment_never_adds_to_it():
    """apply_mask on Slicer >= 5.10 too: the erase leaves the mask segment as it was."""
    session, segmentation, volume, ids = build_scene()
    before = outcome(session, segmentation, volume, ids)
    options = EditOptions(editable_area="inside", inside_segment="a", overwrite="none")
    apply_mask(session, segmentation, "edited", volume, modifier(), "remove", options)
    after = outcome(session, segmentation, volume, ids)
    assert np.array_equal(after["a"], before["a"])
    removed = before["edited"] & ~after["edited"]
    assert removed.sum() == (before["edited"] & modifier()).sum()  # the edited segment's own voxels stay editable


@needs_slicers_logic
def test_apply_mask_takes_the_numpy_path_when_slicer_has_no_editor_logic(monkeypatch):
    """What an older Slicer runs: apply_mask without vtkSlicerSegmentEditorLogic."""
    options = EditOptions(editable_area="outside_visible", intensity_range=(10, 200), overwrite="visible")
    session, segmentation, volume, ids = build_scene()
    modify_with_editor_logic(session, segmentation, ids["edited"], volume, modifier(), "add", options)
    expected = outcome(session, segmentation, volume, ids)

    monkeypatch.delattr(slicer, "vtkSlicerSegmentEditorLogic")
    session, segmentation, volume, ids = build_scene()
    apply_mask(session, segmentation, "edited", volume, modifier(), "add", options)
    got = outcome(session, segmentation, volume, ids)
    assert all(np.array_equal(got[name], expected[name]) for name in expected)


def test_only_the_guarded_path_names_slicers_editor_logic():
    """Slicer 5.8 has no vtkSlicerSegmentEditorLogic: only code apply_mask reaches after checking may use it.

    Annotations do not count (they are never evaluated); module-level uses would break the import.
    """
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    allowed = {
        ("SegTruthLogic/scene/editing.py", "modify_with_editor_logic"),
        ("SegTruthLogic/scene/session.py", "editor"),
    }
    used, found = set(), set()
    for path in [*(root / "SegTruthLogic").rglob("*.py"), root / "SegTruth" / "SegTruth.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        annotations = set()
        for node in ast.walk(tree):
            parts = [getattr(node, "annotation", None), getattr(node, "returns", None)]
            annotations.update(id(sub) for part in parts if part is not None for sub in ast.walk(part))
        uses = {
            id(n) for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "vtkSlicerSegmentEditorLogic"
        } - annotations
        for function in ast.walk(tree):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inside = {id(n) for statement in function.body for n in ast.walk(statement)} & uses
                if inside:
                    found.add((str(path.relative_to(root)), function.name))
                    used |= inside
        assert uses <= used, f"{path.name} uses vtkSlicerSegmentEditorLogic outside any function"
    assert found == allowed
