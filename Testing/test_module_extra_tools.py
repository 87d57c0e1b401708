"""The panel's own Fast Marching, Watershed, Local threshold and Flood fill (SegTruthLogic.gui.extra_tools), for a
Slicer without SegmentEditorExtraEffects: offered only then, the same voxels as the SegTruthLogic.tools functions
with the Segment Editor's masking read from a real editor node, a segment-volume slider that never marches again,
and the module's section built from the one declaration of the settings.
"""

from __future__ import annotations

import ast
import inspect
import types
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import slicer
from test_module_widget import SegmentEditor, Slider, add_data, app  # noqa: F401 (app is a fixture)

from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.core.slicer_deps import Missing
from SegTruthLogic.gui import (
    EXTRA_EFFECTS,
    EXTRA_TOOLS,
    ExtraToolsController,
    PanelParameters,
    ToolParameters,
    offered_tools,
    seed_points,
    tool_fields,
)
from SegTruthLogic.gui.extra_tools import LocalThresholdAlgorithm
from SegTruthLogic.scene.editing import EditOptions
from SegTruthLogic.scene.segments import add_segment, new_segmentation, segment_ids, segment_mask, set_segment_mask
from SegTruthLogic.scene.volumes import volume_from_array
from SegTruthLogic.tools import fast_marching as fm
from SegTruthLogic.tools.flood_fill import flood_fill
from SegTruthLogic.tools.local_threshold import local_threshold
from SegTruthLogic.tools.watershed import watershed

ROOT = Path(__file__).resolve().parent.parent
SHAPE = (24, 30, 40)  # k, j, i
CORE = ["Paint", "Draw", "Erase", "Threshold", "Grow from seeds", "Islands", "Smoothing", "Scissors", "Hollow"]
# The editor's masking in the tests: outside all other segments, intensities 50..150, overwrite none.
MASKING = EditOptions(editable_area="outside_all", intensity_range=(50.0, 150.0), overwrite="none")
POINT = (10.0, 12.0, 8.0)  # RAS of voxel (i, j, k) = (10, 12, 8): IJK-to-RAS is the identity here


def boxes(session):
    """Two boxes at about 100 (noise +-3) split by a 2-voxel gap; a 'wall' segment cuts into the first."""
    values = np.zeros(SHAPE, np.int16)
    values[4:20, 4:26, 4:18] = 100
    values[4:20, 4:26, 20:36] = 100
    values[10:14, 10:14, 18:20] = 160  # a bridge outside the editable intensity range
    values += np.random.default_rng(3).integers(-3, 4, SHAPE).astype(np.int16)
    return volume_from_array(session, values, Grid(SHAPE[::-1], np.diag([1.0, 1.0, 1.0, 1.0])))


def annotated(session, volume):
    """A segmentation with seeds: 'target' in the first box, 'other' in the second, a 'wall' slab in the first."""
    segmentation = new_segmentation(session, volume)
    for name, where in (
        ("target", (slice(8, 11), slice(10, 13), slice(8, 11))),
        ("other", (slice(8, 11), slice(10, 13), slice(26, 29))),
        ("wall", (slice(4, 20), slice(4, 26), slice(13, 15))),
    ):
        add_segment(segmentation, name)
        mask = np.zeros(SHAPE, bool)
        mask[where] = True
        set_segment_mask(
            session, segmentation, segmentation.GetSegmentation().GetSegmentIdBySegmentName(name), mask, volume
        )
    return segmentation


def editor_node(session, segmentation, segment: str):
    """A real Segment Editor node set as a person sets the editor's masking section (MASKING)."""
    node = session.scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
    node.SetSelectedSegmentID(segmentation.GetSegmentation().GetSegmentIdBySegmentName(segment))
    node.SetMaskMode(slicer.vtkMRMLSegmentationNode.EditAllowedOutsideAllSegments)
    node.SetSourceVolumeIntensityMask(True)
    node.SetSourceVolumeIntensityMaskRange(50.0, 150.0)
    node.SetOverwriteMode(slicer.vtkMRMLSegmentEditorNode.OverwriteNone)
    return node


def masks(session, segmentation, volume) -> dict[str, np.ndarray]:
    seg = segmentation.GetSegmentation()
    return {
        seg.GetSegment(i).GetName(): segment_mask(session, segmentation, i, volume) for i in segment_ids(segmentation)
    }


def same_voxels(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), name


@pytest.fixture
def twins(session):
    """One volume, two identical segmentations: the panel edits one, the tool function the other."""
    volume = boxes(session)
    panel, reference = annotated(session, volume), annotated(session, volume)
    p = PanelParameters(inputVolume=volume, segmentation=panel)
    return types.SimpleNamespace(volume=volume, panel=panel, reference=reference, p=p)


# -- offered only without SegmentEditorExtraEffects ---------------------------------------------------------------
def test_the_tools_are_offered_only_where_their_extra_effect_is_missing():
    assert [t.key for t in offered_tools(CORE)] == ["fast_marching", "watershed", "local_threshold", "flood_fill"]
    assert offered_tools([*CORE, *EXTRA_EFFECTS]) == []
    assert [t.key for t in offered_tools([*CORE, "Watershed", "Flood filling"])] == ["fast_marching", "local_threshold"]
    assert {t.effect: t.key for t in EXTRA_TOOLS} == EXTRA_EFFECTS


def test_the_section_is_built_without_the_extension_and_absent_with_it(app, monkeypatch):  # noqa: F811
    section = app.widget.toolsSection
    assert section is not None and section.text == "SegTruth tools" and section.collapsed
    note, shown = app.widget.layout.widgets[-2:]
    assert shown is section and "SegTruth's own are in the SegTruth tools section below" in note.name
    rows = section.layout.rows
    labels = [row[0] for row in rows if len(row) == 2]
    assert labels == ["Points:", *(f.metadata["label"] for t in EXTRA_TOOLS for f in tool_fields(t.key))]
    buttons = [row[0].name for row in rows if len(row) == 1 and row[0].name in {t.action for t in EXTRA_TOOLS}]
    assert buttons == [t.action for t in EXTRA_TOOLS]
    sliders = [row[1] for row in rows if len(row) == 2 and isinstance(row[1], Slider)]
    numeric = [f for f in fields(ToolParameters) if "range" in f.metadata]
    assert [(s.minimum, s.maximum, s.value) for s in sliders] == [(*f.metadata["range"], f.default) for f in numeric]

    names = [*CORE, *EXTRA_EFFECTS]
    monkeypatch.setattr(SegmentEditor, "availableEffectNames", lambda self: names)
    widget = app.module.SegTruthWidget()
    widget.setup()
    assert widget.toolsSection is None
    assert app.ui.segmentEditorWidget.effects[-4:] == list(EXTRA_EFFECTS)
    widget.cleanup()


# -- the same voxels as the tool functions, with the editor's masking -----------------------------------------------
def test_flood_fill_equals_the_tool_with_the_editors_masking(session, twins):
    controller = ExtraToolsController(session)
    settings = ToolParameters(tolerance=8.0, neighbourhoodMm=0.0)
    node = editor_node(session, twins.panel, "target")
    assert controller.run_in_editor("flood_fill", twins.p, node, settings, [POINT])
    for point in [POINT]:
        flood_fill(session, twins.reference, twins.volume, "target", point, 8.0, 0.0, "add", MASKING)
    got, want = masks(session, twins.panel, twins.volume), masks(session, twins.reference, twins.volume)
    same_voxels(got, want)
    # the wall holds the fill in the part of the first box before it: 16 * 22 * 9 voxels, no more
    assert int(got["target"].sum()) == 16 * 22 * 9 and not got["target"][:, :, 13:].any()


def test_local_threshold_equals_the_tool_with_the_editors_masking(session, twins):
    controller = ExtraToolsController(session)
    settings = ToolParameters(algorithm=LocalThresholdAlgorithm.MASKING, minimumDiameterMm=3.0, brushMm=3.0)
    node = editor_node(session, twins.panel, "target")
    assert controller.run_in_editor("local_threshold", twins.p, node, settings, [POINT])
    local_threshold(
        session,
        twins.reference,
        twins.volume,
        "target",
        [POINT],
        minimum_diameter_mm=3.0,
        brush_mm=3.0,
        options=MASKING,
    )
    got, want = masks(session, twins.panel, twins.volume), masks(session, twins.reference, twins.volume)
    same_voxels(got, want)
    assert got["target"].sum() > 1000 and not (got["target"] & got["wall"]).any()


def test_watershed_equals_the_tool_with_the_editors_masking(session, twins):
    controller = ExtraToolsController(session)
    node = editor_node(session, twins.panel, "target")
    assert controller.run_in_editor("watershed", twins.p, node, ToolParameters(objectScaleMm=1.5))
    watershed(session, twins.reference, twins.volume, None, 1.5, MASKING)
    got, want = masks(session, twins.panel, twins.volume), masks(session, twins.reference, twins.volume)
    same_voxels(got, want)
    assert got["target"].sum() > 27 and got["other"].sum() > 27


def test_fast_marching_equals_the_tool_and_its_slider_never_marches_again(session, twins, monkeypatch):
    calls = []
    arrival = fm.arrival
    monkeypatch.setattr(fm, "arrival", lambda *args, **kwargs: calls.append(1) or arrival(*args, **kwargs))
    say = []
    controller = ExtraToolsController(session, lambda text, error=False: say.append((text, error)))
    settings = ToolParameters(maxVolumePercent=10.0)
    node = editor_node(session, twins.panel, "target")
    assert not controller.change_setting(settings, "segmentVolumePercent", 50.0, twins.p, node)  # no march yet
    assert calls == [] and settings.segmentVolumePercent == 50.0
    assert controller.run_in_editor("fast_marching", twins.p, node, settings)
    assert len(calls) == 1
    reference = fm.fast_marching(session, twins.reference, twins.volume, "target", 10.0, 0.5, options=MASKING)
    assert len(calls) == 2
    same_voxels(masks(session, twins.panel, twins.volume), masks(session, twins.reference, twins.volume))
    assert np.array_equal(controller.march.order, reference.order)
    for percent in (20.0, 80.0, 35.0):
        assert controller.change_setting(settings, "segmentVolumePercent", percent, twins.p, node)
        fm.set_marched_volume(
            session,
            twins.reference,
            twins.volume,
            "target",
            reference,
            reference.voxels_for_fraction(percent / 100),
            MASKING,
        )
        same_voxels(masks(session, twins.panel, twins.volume), masks(session, twins.reference, twins.volume))
    assert len(calls) == 2  # the slider moved three times without a march
    target = masks(session, twins.panel, twins.volume)["target"]
    assert int(target.sum()) == reference.voxels_for_fraction(0.35) and not target[:, :, 13:].any()
    assert say[-1] == (
        f"Segment volume: the first {int(target.sum())} of the {reference.voxels} voxels the front reached.",
        False,
    )
    # another segment selected: the slider does not apply the march to it
    node.SetSelectedSegmentID(twins.panel.GetSegmentation().GetSegmentIdBySegmentName("other"))
    assert not controller.change_setting(settings, "segmentVolumePercent", 90.0, twins.p, node)
    assert say[-1][1] and "Press March first" in say[-1][0] and len(calls) == 2


def test_a_tool_without_what_it_needs_says_one_sentence(session, twins):
    say = []
    controller = ExtraToolsController(session, lambda text, error=False: say.append((text, error)))
    node = editor_node(session, twins.panel, "target")
    assert not controller.run_in_editor("flood_fill", twins.p, node, ToolParameters(), [])
    assert say[-1][1] and say[-1][0].startswith("Flood fill needs points")
    node.SetSelectedSegmentID(None)
    assert not controller.run_in_editor("local_threshold", twins.p, node, ToolParameters(), [POINT])
    assert say[-1] == ("Local threshold works on the selected segment; select one first.", True)
    assert not controller.run_in_editor("watershed", PanelParameters(), node, ToolParameters())
    assert say[-1] == ("Choose the source volume and a segmentation first.", True)


def test_points_come_from_a_point_list_else_the_crosshair(session):
    markups = session.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    crosshair = session.scene.AddNewNodeByClass("vtkMRMLCrosshairNode")
    crosshair.SetCrosshairRAS(1.0, 2.0, 3.0)
    assert seed_points(markups, crosshair) == [(1.0, 2.0, 3.0)]  # an empty list: the crosshair
    markups.AddControlPoint(4.0, 5.0, 6.0)
    markups.AddControlPoint(7.0, 8.0, 9.0)
    assert seed_points(markups, crosshair) == [(4.0, 5.0, 6.0), (7.0, 8.0, 9.0)]
    assert seed_points(None, None) == []


# -- the panel through its widgets ------------------------------------------------------------------------------------
def test_the_buttons_and_the_slider_in_the_panel(app, session, two_boxes, monkeypatch):  # noqa: F811
    calls = []
    arrival = fm.arrival
    monkeypatch.setattr(fm, "arrival", lambda *args, **kwargs: calls.append(1) or arrival(*args, **kwargs))
    widget, ui = app.widget, app.ui
    p = widget._parameterNode
    p.inputVolume = add_data(session, two_boxes)
    segment = add_segment(p.segmentation, "A")
    seeds = np.zeros((40, 50, 60), bool)
    seeds[8:11, 13:16, 18:21] = True
    set_segment_mask(session, p.segmentation, segment, seeds, p.inputVolume)
    widget.logic.segmentEditorNode().SetSelectedSegmentID(segment)
    rows = widget.toolsSection.layout.rows
    (march,) = [row[0] for row in rows if len(row) == 1 and row[0].name == "March"]
    (volume,) = [row[1] for row in rows if len(row) == 2 and row[0] == "Segment volume (% of the march)"]
    monkeypatch.setattr(widget.extraTools, "missing_dependencies", lambda tool: Missing(packages=("numba>=0.60",)))
    app.confirm.answer = False  # numba missing, and the person declines to install it: nothing runs
    march.emit("clicked()")
    assert calls == [] and ui.statusLabel.text == "This tool needs those packages; nothing was installed."
    assert "numba>=0.60" in app.confirm.calls[-1][0][0]
    monkeypatch.setattr(widget.extraTools, "missing_dependencies", lambda tool: Missing())
    march.emit("clicked()")
    assert len(calls) == 1 and ui.segmentEditorWidget.undoStates == 1
    assert ui.statusLabel.text.startswith("Fast Marching reached ")
    full = int(segment_mask(session, p.segmentation, segment, p.inputVolume).sum())
    volume.move(50.0)
    half = int(segment_mask(session, p.segmentation, segment, p.inputVolume).sum())
    assert len(calls) == 1 and half == widget.extraTools.march.voxels_for_fraction(0.5) and half < full
    assert ui.segmentEditorWidget.undoStates == 1  # the slider is part of the march's one undo step
    (fill,) = [row[0] for row in rows if len(row) == 1 and row[0].name == "Fill at the points"]
    fill.emit("clicked()")  # no point list and no crosshair node in this scene
    assert "needs points" in ui.statusLabel.text and app.errors.calls == []
    widget.onSceneStartClose(None, None)
    assert widget.extraTools.march is None


# -- one declaration ----------------------------------------------------------------------------------------------------
def test_the_settings_are_declared_once_with_the_tools_defaults():
    source = (ROOT / "SegTruth" / "SegTruth.py").read_text(encoding="utf-8")
    for f in fields(ToolParameters):
        assert f.name not in source, f"SegTruth.py names the setting {f.name}; the declaration builds its widget"
        assert f.metadata["tool"] in {t.key for t in EXTRA_TOOLS} and f.metadata["label"]
        if "range" in f.metadata:
            low, high = f.metadata["range"]
            assert low <= f.default <= high, f.name
    defaults = ToolParameters()
    lt = inspect.signature(local_threshold).parameters
    assert (defaults.minimumDiameterMm, defaults.featureSizeMm, defaults.brushMm, defaults.algorithm.value) == (
        lt["minimum_diameter_mm"].default,
        lt["feature_size_mm"].default,
        lt["brush_mm"].default,
        lt["algorithm"].default,
    )
    ff = inspect.signature(flood_fill).parameters
    assert (defaults.tolerance, defaults.neighbourhoodMm) == (ff["tolerance"].default, ff["neighbourhood_mm"].default)
    assert defaults.objectScaleMm == inspect.signature(watershed).parameters["object_scale_mm"].default
    fmp = inspect.signature(fm.fast_marching).parameters
    assert (defaults.maxVolumePercent, defaults.sigmaFactor) == (
        fmp["max_volume_percent"].default,
        fmp["sigma_factor"].default,
    )


def test_the_section_is_glue_only():
    """The module file builds widgets from the declaration and hands clicks to ExtraToolsController."""
    tree = ast.parse((ROOT / "SegTruth" / "SegTruth.py").read_text(encoding="utf-8"))
    called = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert {"run_in_editor", "change_setting", "forget"} <= called
    assert not {"march", "slide", "set_marched_volume", "flood_fill", "watershed", "local_threshold"} & called
