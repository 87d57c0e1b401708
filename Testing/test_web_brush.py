"""The web editor's brush and ordered actions without a browser: exact voxels of a 2D and a sphere brush,
strokes landing on the slice they were drawn on, masking honoured, one undo step per stroke; and the
action stream applied strictly in each client's order."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "trame_slicer", reason="the web front end needs trame-slicer (pip install 'trame-slicer[standalone]')"
)

from SegTruthLogic import SegTruthError
from SegTruthLogic.core.labels import LabelTable
from SegTruthLogic.scene.segments import find_segment, segment_mask
from SegTruthLogic.web.actions import ActionQueue
from SegTruthLogic.web.brush import Stroke, paint, stroke_mask, volume_ijk_to_ras
from SegTruthLogic.web.cases import SAMPLE_LABELS, read_web_cases
from SegTruthLogic.web.workspace import Workspace


@pytest.fixture
def ws(ct_chest, tmp_path: Path) -> Workspace:
    shutil.copyfile(ct_chest[0], tmp_path / "chest.nrrd")
    workspace = Workspace(table=LabelTable.read(SAMPLE_LABELS))
    workspace.open_case(read_web_cases(tmp_path)[0])
    return workspace


def axial_view(ijk_to_ras: np.ndarray, k: int, width: int = 400, height: int = 400, mm_per_pixel: float = 1.0):
    """An axial XY-to-RAS matrix through voxel layer ``k``'s centre, 1 mm per pixel, centred on the volume."""
    centre = ijk_to_ras @ np.array([63.5, 63.5, k, 1.0])
    matrix = np.eye(4)
    matrix[:3, 0] = [-mm_per_pixel, 0, 0]  # screen right = patient left (radiological view)
    matrix[:3, 1] = [0, mm_per_pixel, 0]
    matrix[:3, 2] = [0, 0, 1.0]
    matrix[:3, 3] = centre[:3] - matrix[:3, 0] * width / 2 - matrix[:3, 1] * height / 2
    return matrix


def reference_disk(ijk_to_ras, k, centre_ras, radius, dims):
    """Voxels of layer k whose centres lie within ``radius`` of ``centre_ras`` in the slice plane: brute force."""
    i, j = np.meshgrid(np.arange(dims[0]), np.arange(dims[1]), indexing="ij")
    ijk = np.stack([i, j, np.full_like(i, k), np.ones_like(i)], axis=-1).reshape(-1, 4)
    ras = ijk @ ijk_to_ras.T
    inside = np.linalg.norm(ras[:, :2] - centre_ras[:2], axis=1) <= radius
    mask = np.zeros(tuple(dims[::-1]), bool)
    mask[k, ijk[inside, 1], ijk[inside, 0]] = True
    return mask


def test_a_2d_brush_paints_the_shown_slice_only_and_a_sphere_spans_slices(ws):
    volume = ws.volume
    ijk_to_ras = volume_ijk_to_ras(volume)
    dims = volume.GetImageData().GetDimensions()
    k = 17
    view = axial_view(ijk_to_ras, k)
    stroke = Stroke(((0.5, 0.5),), view, (400, 400), 20.0, "2d")  # a dot: a disk of radius 10 mm
    mask, extent = stroke_mask(stroke, ijk_to_ras, dims)
    full = np.zeros(tuple(dims[::-1]), bool)
    full[extent[4] : extent[5] + 1, extent[2] : extent[3] + 1, extent[0] : extent[1] + 1] = mask
    centre = stroke.ras_points()[0]
    np.testing.assert_array_equal(full, reference_disk(ijk_to_ras, k, centre, 10.0, dims))
    assert set(np.nonzero(full)[0]) == {k}

    # The sphere of 30 mm diameter on 10 mm slices reaches the layers within 15 mm: k-1, k, k+1.
    sphere = Stroke(((0.5, 0.5),), view, (400, 400), 30.0, "sphere")
    mask, extent = stroke_mask(sphere, ijk_to_ras, dims)
    layers = sorted({extent[4] + z for z in np.nonzero(mask)[0]})
    assert layers == [k - 1, k, k + 1]

    # Into the case: one undo step, exactly the disk's voxels.
    sid = find_segment(ws.segmentation, "right lung")
    painted = paint(ws.editor, volume, sid, stroke)
    assert painted == int(full.sum()) > 30
    assert int(segment_mask(ws.session, ws.segmentation, sid, volume).sum()) == painted
    ws.undo()
    assert int(segment_mask(ws.session, ws.segmentation, sid, volume).sum()) == 0


def test_a_stroke_lands_on_the_slice_of_its_geometry_not_the_current_one(ws):
    """The stroke carries the view it was drawn in: the view's slice moving afterwards changes nothing."""
    volume = ws.volume
    ijk_to_ras = volume_ijk_to_ras(volume)
    sid = find_segment(ws.segmentation, "left lung")
    for k in (5, 12):
        stroke = Stroke(((0.4, 0.3), (0.45, 0.6)), axial_view(ijk_to_ras, k), (400, 400), 8.0)
        paint(ws.editor, volume, sid, stroke)
    mask = segment_mask(ws.session, ws.segmentation, sid, volume)  # (k, j, i)
    assert sorted(set(np.nonzero(mask)[0])) == [5, 12]


def test_erase_and_the_editable_area(ws):
    """Erase removes from the segment; "outside all segments" keeps another segment's voxels."""
    volume = ws.volume
    ijk_to_ras = volume_ijk_to_ras(volume)
    right, left = find_segment(ws.segmentation, "right lung"), find_segment(ws.segmentation, "left lung")
    big = Stroke(((0.5, 0.5),), axial_view(ijk_to_ras, 10), (400, 400), 40.0)
    small = Stroke(((0.5, 0.5),), axial_view(ijk_to_ras, 10), (400, 400), 20.0)
    paint(ws.editor, volume, right, small)
    node = ws.editor.editor_node
    import slicer

    node.SetMaskMode(slicer.vtkMRMLSegmentationNode.EditAllowedOutsideAllSegments)
    node.SetOverwriteMode(slicer.vtkMRMLSegmentEditorNode.OverwriteNone)
    covered = paint(ws.editor, volume, left, big)
    right_mask = segment_mask(ws.session, ws.segmentation, right, volume)
    left_mask = segment_mask(ws.session, ws.segmentation, left, volume)
    assert not np.any(right_mask & left_mask)
    assert int(left_mask.sum()) == covered - int(right_mask.sum())
    node.SetMaskMode(slicer.vtkMRMLSegmentationNode.EditAllowedEverywhere)
    paint(ws.editor, volume, left, small, erase=True)
    assert int(segment_mask(ws.session, ws.segmentation, left, volume).sum()) == covered - int(right_mask.sum())
    with pytest.raises(SegTruthError, match="No segment 'gone'"):
        paint(ws.editor, volume, "gone", small)


def test_actions_are_applied_in_each_clients_order():
    queue = ActionQueue()
    queue.submit("a", 2, "stroke", {"n": 2})
    assert queue.pop() is None  # 1 has not arrived: 2 waits
    queue.submit("b", 1, "save", {})
    queue.submit("a", 1, "stroke", {"n": 1})
    queue.submit("a", 1, "stroke", {"n": 1})  # a repeat is dropped
    queue.submit("a", 3, "select", {})
    order = []
    while (item := queue.pop()) is not None:
        order.append((item.client, item.seq, item.kind))
        queue.finish(item)
    assert order == [("b", 1, "save"), ("a", 1, "stroke"), ("a", 2, "stroke"), ("a", 3, "select")]
    assert queue.done == {"a": 3, "b": 1}


def test_the_app_applies_a_tabs_actions_in_its_order_whatever_order_they_arrive_in(ct_chest, tmp_path, monkeypatch):
    """Save (3) and a stroke (2) arrive before the segment pick (1): the app waits, then picks, paints, saves."""
    import asyncio

    import SimpleITK as sitk
    from trame.app import get_server

    from SegTruthLogic.web.app import SegTruthWebApp

    monkeypatch.setenv("TRAME_ARGS", "")
    shutil.copyfile(ct_chest[0], tmp_path / "chest.nrrd")
    app = SegTruthWebApp(read_web_cases(tmp_path), LabelTable.read(SAMPLE_LABELS), server=get_server("web-order"))
    left = find_segment(app.ws.segmentation, "left lung")
    geometry = app.state.st_views["axial"]
    message = {
        "view": "axial",
        "points": [[0.5, 0.4], [0.5, 0.6]],
        "xy_to_ras": geometry["xy_to_ras"],
        "width": geometry["width"],
        "height": geometry["height"],
        "diameter": 10.0,
        "shape": "2d",
    }
    mask, _extent = stroke_mask(
        Stroke.from_message(message), volume_ijk_to_ras(app.ws.volume), app.ws.volume.GetImageData().GetDimensions()
    )

    async def session() -> None:
        app.on_action("tab", 3, "save", {})
        app.on_action("tab", 2, "paint", message)
        await asyncio.sleep(0.3)
        assert app.actions.done.get("tab", 0) == 0 and not (tmp_path / "labels").exists()  # they wait for 1
        app.on_action("tab", 1, "select", {"segment": left})
        for _ in range(200):
            if app.actions.done.get("tab", 0) == 3:
                break
            await asyncio.sleep(0.05)

    asyncio.run(session())
    assert app.state.st_applied == {"tab": 3} and not app.state.st_error, app.state.st_status
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "labels" / "chest.nrrd")))
    assert int((labels == 2).sum()) == int(mask.sum()) > 20 and int((labels == 1).sum()) == 0


def test_a_grow_preview_that_follows_strokes_is_queued_by_the_stroke_itself(ct_chest, tmp_path, monkeypatch):
    """SegTruth's stroke is one action: the grow update is in line right after it, with no pause for more edits
    (which only trame-slicer's own paint effect sends), and the update shows the grow from the new seeds."""
    import asyncio

    from trame.app import get_server

    from SegTruthLogic.web.app import SegTruthWebApp

    monkeypatch.setenv("TRAME_ARGS", "")
    shutil.copyfile(ct_chest[0], tmp_path / "chest.nrrd")
    app = SegTruthWebApp(read_web_cases(tmp_path), LabelTable.read(SAMPLE_LABELS), server=get_server("web-follow"))
    segmentation = app.ws.segmentation
    right, left = find_segment(segmentation, "right lung"), find_segment(segmentation, "left lung")
    geometry = app.state.st_views["axial"]

    def message(points) -> dict:
        return {"view": "axial", "points": points, "xy_to_ras": geometry["xy_to_ras"], "width": geometry["width"],
                "height": geometry["height"], "diameter": 6.0, "shape": "2d"}  # fmt: skip

    def grown() -> int:
        node = app.previewer.node
        return int(segment_mask(app.ws.session, node, find_segment(node, "right lung"), app.ws.volume).sum())

    async def session() -> tuple[int, int]:
        app.ws.editor.set_active_segment_id(right)
        app.stroke(message([[0.3, 0.45], [0.3, 0.55]]))
        app.ws.editor.set_active_segment_id(left)
        app.stroke(message([[0.5, 0.05], [0.5, 0.1]]))
        app.state.st_tool = "grow"
        app.tool_states["grow"].set(whole_image=True, auto_update=True)
        await app.preview()
        assert app.previewer.active and not app.previewer.stale
        shown = app.state.st_preview_count
        before = grown()
        app.ws.editor.set_active_segment_id(right)
        app.stroke(message([[0.7, 0.45], [0.7, 0.55]]))
        assert app.actions.has("follow")  # queued by the stroke, before any pause
        for _ in range(400):
            if app.state.st_preview_count > shown and not app.previewer.stale:
                break
            await asyncio.sleep(0.05)
        return before, grown()

    before, after = asyncio.run(session())
    assert not app.state.st_error, app.state.st_status
    assert not app.previewer.stale and after != before  # the preview grew from the new seed
