"""The web app's Smoothing, Hollow, Watershed, Flood fill, Local threshold, Fast Marching and Scissors effects
without a browser: each preview leaves the case alone and holds exactly what the tool function gives, Apply
makes it the case as one undo step, Cancel drops it; the Fast Marching volume slider does not march again."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "trame_slicer", reason="the web front end needs trame-slicer (pip install 'trame-slicer[standalone]')"
)

from slicer.util import arrayFromVolume

from SegTruthLogic import SegTruthError
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.core.labels import LabelTable
from SegTruthLogic.core.progress import CancelToken
from SegTruthLogic.scene.segments import find_segment, segment_mask
from SegTruthLogic.tools import fast_marching as fm
from SegTruthLogic.tools.flood_fill import connected_in_range
from SegTruthLogic.tools.hollow import shell_mask
from SegTruthLogic.tools.local_threshold import local_threshold_mask
from SegTruthLogic.tools.paint import paint, voxel_at
from SegTruthLogic.tools.scissors import polygon_mask
from SegTruthLogic.tools.smoothing import smoothed_mask
from SegTruthLogic.tools.watershed import seed_labels, watershed_labels
from SegTruthLogic.web.cases import SAMPLE_LABELS, read_web_cases
from SegTruthLogic.web.effects import (
    EFFECTS,
    FastMarchingEffect,
    FloodFillEffect,
    HollowEffect,
    LocalThresholdEffect,
    Previewer,
    ScissorsEffect,
    SmoothingEffect,
    WatershedEffect,
)
from SegTruthLogic.web.effects.points import parse_points
from SegTruthLogic.web.workspace import Workspace

RIGHT_LUNG = [63.0, -15.0, -110.0]  # RAS mm, inside the right lung of CTChest4
LEFT_LUNG = [-70.0, -18.0, -110.0]


@pytest.fixture
def ws(ct_chest, tmp_path: Path) -> Workspace:
    shutil.copyfile(ct_chest[0], tmp_path / "chest.nrrd")
    workspace = Workspace(table=LabelTable.read(SAMPLE_LABELS))
    workspace.open_case(read_web_cases(tmp_path)[0])
    return workspace


def sid(ws: Workspace, name: str) -> str:
    return find_segment(ws.segmentation, name)


def mask(ws: Workspace, name: str, node=None) -> np.ndarray:
    return segment_mask(ws.session, node or ws.segmentation, sid(ws, name), ws.volume)


def stroke(ws: Workspace, name: str, points, radius: float = 6.0) -> None:
    with ws.record():
        paint(ws.session, ws.segmentation, ws.volume, name, points, radius, stroke=True)


def preview_apply_undo(ws: Workspace, effect, name: str, expected: np.ndarray) -> None:
    """Preview (case unchanged, preview exact), Apply (case exact), Undo (case as before)."""
    before = mask(ws, name)
    previewer = Previewer(ws)
    previewer.preview(effect)
    np.testing.assert_array_equal(mask(ws, name), before)
    np.testing.assert_array_equal(mask(ws, name, previewer.node), expected)
    previewer.apply()
    np.testing.assert_array_equal(mask(ws, name), expected)
    ws.undo()
    np.testing.assert_array_equal(mask(ws, name), before)


def test_the_web_app_lists_every_tool():
    keys = [spec.key for spec in EFFECTS]
    for key in ("smoothing", "hollow", "watershed", "flood_fill", "local_threshold", "fast_marching", "scissors"):
        assert key in keys
    assert len(set(keys)) == len(keys) and len({spec.prefix for spec in EFFECTS}) == len(keys)


def test_smoothing_and_hollow_previews_are_the_tools(ws):
    stroke(ws, "bone", [RIGHT_LUNG, [50.0, -15.0, -80.0]])
    bone = mask(ws, "bone")
    preview_apply_undo(
        ws, SmoothingEffect(sid(ws, "bone"), "opening", 7.0), "bone", smoothed_mask(bone, ws.volume, "opening", 7.0)
    )
    preview_apply_undo(
        ws,
        SmoothingEffect(sid(ws, "bone"), "gaussian", sigma_mm=3.0),
        "bone",
        smoothed_mask(bone, ws.volume, "gaussian", sigma_mm=3.0),
    )
    preview_apply_undo(
        ws,
        HollowEffect(sid(ws, "bone"), 10.0, "outside_surface"),
        "bone",
        shell_mask(bone, ws.volume, 10.0, "outside_surface"),
    )


def test_joint_smoothing_preview_changes_every_visible_segment(ws):
    stroke(ws, "right lung", [RIGHT_LUNG])
    stroke(ws, "left lung", [LEFT_LUNG])
    previewer = Previewer(ws)
    shown = previewer.preview(SmoothingEffect("", "joint", sigma_mm=2.0))
    assert set(shown) == {sid(ws, "right lung"), sid(ws, "left lung"), sid(ws, "bone")}
    assert not (mask(ws, "right lung", previewer.node) & mask(ws, "left lung", previewer.node)).any()
    previewer.cancel()


def test_watershed_preview_runs_in_a_worker_part_and_equals_the_tool(ws):
    stroke(ws, "right lung", [RIGHT_LUNG])
    stroke(ws, "left lung", [LEFT_LUNG])
    stroke(ws, "bone", [[0.0, 30.0, -110.0]])  # the body between the lungs: a third marker
    markers, _ids = seed_labels(ws.session, ws.segmentation, ws.volume)
    basins = watershed_labels(arrayFromVolume(ws.volume), markers, Grid.from_node(ws.volume).spacing, 2.0)
    effect = WatershedEffect(2.0)
    previewer = Previewer(ws)
    work = previewer.prepare(effect)
    assert work is not None
    work(None, CancelToken())
    previewer.show()
    for n, name in enumerate(("right lung", "left lung", "bone"), start=1):
        np.testing.assert_array_equal(mask(ws, name, previewer.node), basins == n)
    assert mask(ws, "right lung").sum() < (basins == 1).sum()  # the case is still the strokes
    previewer.cancel()


def test_flood_fill_and_local_threshold_from_typed_points(ws):
    values = arrayFromVolume(ws.volume)
    index = voxel_at(ws.volume, RIGHT_LUNG)
    value = float(values[index])
    expected = connected_in_range(values, Grid.from_node(ws.volume).spacing, [index], value - 60, value + 60, 1.0)
    (point,) = parse_points(", ".join(str(v) for v in RIGHT_LUNG))
    preview_apply_undo(ws, FloodFillEffect(sid(ws, "right lung"), tuple(point), 60.0, 1.0), "right lung", expected)
    region = local_threshold_mask(ws.volume, [RIGHT_LUNG], -1100, -400, 3.0)
    effect = LocalThresholdEffect(sid(ws, "right lung"), (tuple(RIGHT_LUNG),), -1100, -400, 3.0)
    preview_apply_undo(ws, effect, "right lung", region & (values >= -1100) & (values <= -400))
    assert region.sum() > 50000 and region[voxel_at(ws.volume, RIGHT_LUNG)]
    with pytest.raises(SegTruthError, match="x, y, z"):
        parse_points("1, 2")


def test_fast_marching_volume_slider_rewrites_without_marching(ws, monkeypatch):
    stroke(ws, "right lung", [RIGHT_LUNG], radius=4.0)
    right = sid(ws, "right lung")
    previewer = Previewer(ws)
    first = FastMarchingEffect(right, 2.0, 1.0)
    previewer.preview(first)
    assert first.marched
    result = fm.march(ws.session, ws.segmentation, ws.volume, "right lung", 2.0)
    np.testing.assert_array_equal(mask(ws, "right lung", previewer.node), result.mask())
    calls = []
    monkeypatch.setattr(fm, "arrival", lambda *a, **k: calls.append(a))
    for fraction in (0.25, 0.6):
        effect = FastMarchingEffect(right, 2.0, fraction)  # what the app makes when the slider moves
        previewer.preview(effect)
        assert not effect.marched and calls == []
        n = result.voxels_for_fraction(fraction)
        np.testing.assert_array_equal(mask(ws, "right lung", previewer.node), result.mask(n))
    previewer.apply()
    assert mask(ws, "right lung").sum() == result.voxels_for_fraction(0.6)


def test_scissors_preview_is_the_polygon(ws):
    stroke(ws, "bone", [RIGHT_LUNG, [50.0, -15.0, -80.0]], radius=10.0)
    bone = mask(ws, "bone")
    square = ((40.0, -40.0, -100.0), (80.0, -40.0, -100.0), (80.0, 10.0, -100.0), (40.0, 10.0, -100.0))
    cut = polygon_mask(ws.volume, square, "all")
    preview_apply_undo(ws, ScissorsEffect(sid(ws, "bone"), square, "erase_inside", "all"), "bone", bone & ~cut)
    preview_apply_undo(
        ws,
        ScissorsEffect(sid(ws, "bone"), square, "fill_inside", "slice"),
        "bone",
        bone | polygon_mask(ws.volume, square, "slice"),
    )


def web_app(ct_chest, tmp_path: Path, monkeypatch, name: str):
    """The web app's server object on a copy of the chest CT, without serving it."""
    monkeypatch.setenv("TRAME_ARGS", "")
    from trame.app import get_server

    from SegTruthLogic.web.app import SegTruthWebApp

    shutil.copyfile(ct_chest[0], tmp_path / "chest.nrrd")
    return SegTruthWebApp(read_web_cases(tmp_path), LabelTable.read(SAMPLE_LABELS), server=get_server(name))


def test_the_app_runs_the_new_tools_from_its_state(ct_chest, tmp_path, monkeypatch):
    """The server's own methods, as the browser's buttons call them: the panel's widgets are built for every
    tool, and the text fields' values become each effect."""
    import asyncio

    app = web_app(ct_chest, tmp_path, monkeypatch, "web-tools")
    state, ws = app.state, app.ws
    right = sid(ws, "right lung")
    ws.select(right)
    app.set_tool("flood_fill")
    from SegTruthLogic.web.effects.points import slice_point

    (crossing,) = parse_points(slice_point(app))  # the "Slices" button: where the three views cross
    voxel_at(ws.volume, crossing)  # inside the volume (the views start at its centre)
    centre = Grid.from_node(ws.volume).ijk_to_ras @ np.append((np.array(Grid.from_node(ws.volume).size) - 1) / 2, 1)
    np.testing.assert_allclose(crossing, centre[:3], atol=10.0)  # within a slice (10 mm) of the centre
    state.st_flood_point = "63, -15, -110"
    state.st_flood_tolerance = "60"
    asyncio.run(app.preview())
    assert state.st_preview and not state.st_error, state.st_status
    asyncio.run(app.apply())
    filled = int(mask(ws, "right lung").sum())
    assert filled > 10000
    app.set_tool("smoothing")
    state.st_smooth_method, state.st_smooth_kernel_mm = "closing", "7"
    asyncio.run(app.preview())
    asyncio.run(app.apply())
    assert int(mask(ws, "right lung").sum()) >= filled  # closing only adds
    app.set_tool("hollow")
    state.st_hollow_thickness_mm = "1"
    asyncio.run(app.preview())
    assert state.st_error and "thinner than a voxel" in state.st_status
    app.set_tool("fast_marching")
    seeds = int(mask(ws, "right lung").sum())
    state.st_fm_max_volume_percent = "1"
    asyncio.run(app.preview())
    assert not state.st_error, state.st_status
    calls = []
    monkeypatch.setattr(fm, "arrival", lambda *a, **k: calls.append(a))
    state.st_fm_volume_fraction = 0.5
    asyncio.run(app.preview())
    assert not state.st_error and calls == [], state.st_status
    assert "no new march" in state.st_status
    asyncio.run(app.apply())
    marched = max(int(np.ceil(arrayFromVolume(ws.volume).size * 0.01)), seeds)  # the seeds always arrive
    assert int(mask(ws, "right lung").sum()) == round(0.5 * marched)


def view_message(app, view_name: str, ras_points, **extra) -> dict:
    """What the page sends for a click or a drag in a view at these RAS points (their x, y on the shown slice)."""
    from SegTruthLogic.web.views import view_geometry

    geometry = view_geometry(app._view(view_name), app.ws.volume)
    matrix = np.array(geometry["xy_to_ras"]).reshape(4, 4)
    points = []
    for ras in ras_points:
        x, y, _ = np.linalg.solve(matrix[:3, :3], np.asarray(ras, float) - matrix[:3, 3])
        points.append([x / geometry["width"], 1 - y / geometry["height"]])
    return {"view": view_name, "points": points, **{k: geometry[k] for k in ("xy_to_ras", "width", "height")}, **extra}


def test_clicks_and_outlines_in_a_view_set_the_tools_points_and_preview(ct_chest, tmp_path, monkeypatch):
    """A click in a view is Flood fill's point (on the slice shown) and previews it; Shift+click adds Local
    threshold points; a drag is the Scissors outline; a tool that takes no clicks says so."""
    import asyncio

    app = web_app(ct_chest, tmp_path, monkeypatch, "web-view-input")
    state, ws = app.state, app.ws
    assert state.st_view_inputs == {"flood_fill": "click", "local_threshold": "click", "scissors": "outline"}
    ws.select(sid(ws, "right lung"))
    axial = app._view("axial")
    shown_z = axial.get_slice_value()

    app.set_tool("flood_fill")
    state.st_flood_tolerance = "60"
    asyncio.run(app.view_input(view_message(app, "axial", [RIGHT_LUNG])))
    (point,) = parse_points(state.st_flood_point)
    np.testing.assert_allclose(point, [*RIGHT_LUNG[:2], shown_z], atol=0.01)  # on the slice the person saw
    assert state.st_preview and not state.st_error, state.st_status
    values = arrayFromVolume(ws.volume)
    index = voxel_at(ws.volume, point)
    low, high = float(values[index]) - 60, float(values[index]) + 60
    expected = connected_in_range(values, Grid.from_node(ws.volume).spacing, [index], low, high, 1.0)
    np.testing.assert_array_equal(mask(ws, "right lung", app.previewer.node), expected)
    assert expected.sum() > 10_000

    app.set_tool("local_threshold")
    asyncio.run(app.view_input(view_message(app, "axial", [RIGHT_LUNG])))
    asyncio.run(app.view_input(view_message(app, "axial", [LEFT_LUNG], add=True)))
    points = parse_points(state.st_local_points)
    np.testing.assert_allclose(points, [[*RIGHT_LUNG[:2], shown_z], [*LEFT_LUNG[:2], shown_z]], atol=0.01)
    asyncio.run(app.view_input(view_message(app, "axial", [LEFT_LUNG])))  # a plain click starts again
    assert len(parse_points(state.st_local_points)) == 1

    app.set_tool("scissors")
    state.st_scissors_operation, state.st_scissors_reach = "fill_inside", "slice"
    corners = [[40, -40], [80, -40], [80, 10], [40, 10]]
    drag = [
        [x + (x2 - x) * t, y + (y2 - y) * t, 0]
        for (x, y), (x2, y2) in zip(corners, corners[1:] + corners[:1])
        for t in np.linspace(0, 1, 150, endpoint=False)
    ]
    asyncio.run(app.view_input(view_message(app, "axial", drag)))
    polygon = parse_points(state.st_scissors_polygon)
    assert 40 < len(polygon) < len(drag)  # points 0.5 mm apart at least
    (normal,) = parse_points(state.st_scissors_normal)  # the view's, whichever way the outline went round
    np.testing.assert_allclose(np.abs(normal), [0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(np.array(polygon)[:, 2], shown_z, atol=0.01)
    assert state.st_preview and not state.st_error, state.st_status
    cut = polygon_mask(ws.volume, polygon, "slice")
    np.testing.assert_array_equal(mask(ws, "right lung", app.previewer.node), mask(ws, "right lung") | cut)
    k = voxel_at(ws.volume, [60, -15, shown_z])[0]
    assert cut.sum() == cut[k].sum() > 40 * 50 / np.prod(Grid.from_node(ws.volume).spacing[:2]) * 0.9

    # A slab from the shown slice along the view's normal: the outline's plane and the slices beyond it
    state.st_scissors_reach, state.st_scissors_slab_mm, state.st_scissors_slab_side = "slab", "5", "positive"
    asyncio.run(app.preview())
    assert state.st_preview and not state.st_error, state.st_status
    slab = polygon_mask(ws.volume, polygon, "slab", 5.0, normal=normal, slab_side="positive")
    np.testing.assert_array_equal(mask(ws, "right lung", app.previewer.node), mask(ws, "right lung") | slab)
    slices = sorted(set(np.nonzero(slab)[0].tolist()))
    assert k in slices and len(slices) == 1 + int(5.0 // Grid.from_node(ws.volume).spacing[2])

    with pytest.raises(SegTruthError, match="too small"):  # the app's action stream says it in the status
        app.view_input(view_message(app, "axial", drag[:2]))
    app.set_tool("smoothing")
    with pytest.raises(SegTruthError, match="takes no clicks"):
        app.view_input(view_message(app, "axial", [RIGHT_LUNG]))
    app.set_tool("scissors")
    with pytest.raises(SegTruthError, match="cannot read"):
        app.view_input({"points": [[0.5]], "xy_to_ras": [], "width": 1})
