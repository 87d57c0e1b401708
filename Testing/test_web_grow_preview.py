"""The grow preview that follows strokes is updated in place, and stays exactly the grow from all the seeds.

After each stroke the web app recomputes the grow preview; it no longer copies the whole segmentation, only
the voxels whose result changed are written into the preview's labelmap. These tests hold that update to a
single grow from all the seeds at once and to a preview built afresh, voxel for voxel, on the real chest CT,
and check the case itself is left as painted.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "trame_slicer", reason="the web front end needs trame-slicer (pip install 'trame-slicer[standalone]')"
)

from slicer.util import arrayFromVolume

from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.core.labels import LabelTable
from SegTruthLogic.scene.editing import EditOptions
from SegTruthLogic.scene.segments import find_segment, segment_ids, segment_mask
from SegTruthLogic.tools.grow import grow_labels, seeds_from_segments
from SegTruthLogic.tools.paint import paint
from SegTruthLogic.web.cases import SAMPLE_LABELS, read_web_cases
from SegTruthLogic.web.effects import GrowEffect, Previewer, ThresholdEffect
from SegTruthLogic.web.workspace import Workspace

# RAS mm strokes in CTChest4: inside the right lung, inside the left lung, then more seeds in both and in the
# body around them (the body seeds are painted as "bone", the third segment of the sample table).
FIRST = {"right lung": [[63, -15, -140], [51, -15, -80]], "left lung": [[-74, -21, -140], [-65, -15, -80]]}
MORE = [
    ("left lung", [[-65, -15, -100]], 5.0),
    ("right lung", [[55, -10, -110], [58, -20, -95]], 4.0),
    ("left lung", [[-80, -30, -120], [-70, -25, -130]], 3.0),
    ("right lung", [[60, -25, -90]], 6.0),
]


@pytest.fixture
def ws(ct_chest, tmp_path: Path) -> Workspace:
    shutil.copyfile(ct_chest[0], tmp_path / "chest.nrrd")
    workspace = Workspace(table=LabelTable.read(SAMPLE_LABELS))
    workspace.open_case(read_web_cases(tmp_path)[0])
    return workspace


def stroke(ws: Workspace, name: str, points, radius: float, overlap: bool = False) -> None:
    """A brush stroke as the browser makes one (one undoable edit of the case)."""
    with ws.record():
        options = EditOptions(overwrite="none") if overlap else EditOptions()
        paint(ws.session, ws.segmentation, ws.volume, name, points, radius, options=options, stroke=True)


def masks(ws: Workspace, node) -> dict[str, np.ndarray]:
    return {sid: segment_mask(ws.session, node, sid, ws.volume) for sid in segment_ids(node)}


def watch_updates(grow: GrowEffect) -> list:
    """What each in-place update returned (None: the preview was rebuilt)."""
    returned: list = []
    update = grow.update_preview

    def recording(ws, node):
        returned.append(update(ws, node))
        return returned[-1]

    grow.update_preview = recording  # type: ignore[method-assign]
    return returned


def test_preview_after_strokes_is_the_grow_from_all_seeds_at_once(ws):
    for name, points in FIRST.items():
        stroke(ws, name, points, 6.0)
    previewer = Previewer(ws)
    grow = GrowEffect(whole_image=True)
    updates = watch_updates(grow)
    previewer.preview(grow)
    assert grow.last_update == "full" and updates == []
    node = previewer.node
    for name, points, radius in MORE:
        stroke(ws, name, points, radius)
        assert previewer.stale
        previewer.preview(grow)
        assert grow.last_update == "incremental"
        assert not previewer.stale and previewer.node is node
    ids = [find_segment(ws.segmentation, name) for name in ("right lung", "left lung")]
    assert len(updates) == len(MORE) and all(shown == ids for shown in updates)  # every one in place

    # One grow from all the seeds at once, over the whole image: the preview holds exactly its labels.
    seeds, _ = seeds_from_segments(ws.session, ws.segmentation, ws.volume, ["right lung", "left lung"])
    expected = grow_labels(arrayFromVolume(ws.volume), seeds, Grid.from_node(ws.volume).spacing, None, margin=None)
    shown = masks(ws, node)
    for label, sid in enumerate(ids, start=1):
        np.testing.assert_array_equal(shown[sid], expected == label)
    assert shown[ids[0]].sum() > 30_000 and shown[ids[1]].sum() > 30_000
    assert shown[ids[0]].sum() + shown[ids[1]].sum() == seeds.size  # the whole image, one label a voxel
    bone = find_segment(ws.segmentation, "bone")
    assert not shown[bone].any()  # not a seed (empty): left as it is

    # And a preview built afresh on the same case gives the same voxels; the case holds only the strokes.
    fresh = Previewer(ws)
    fresh.preview(GrowEffect(whole_image=True))
    for sid, mask in masks(ws, fresh.node).items():
        np.testing.assert_array_equal(shown[sid], mask, err_msg=sid)
    case = masks(ws, ws.segmentation)
    for label, sid in enumerate(ids, start=1):
        np.testing.assert_array_equal(case[sid], seeds == label)
    previewer.apply()
    for sid, mask in masks(ws, ws.segmentation).items():
        np.testing.assert_array_equal(mask, shown[sid], err_msg=sid)


def test_preview_inside_a_segment_updates_in_place_and_rebuilds_when_it_must(ws):
    """Growing inside the air (seeds overlap it, so the lungs lie in a layer of their own): updated in place;
    a stroke in a segment that was empty changes the seed segments and rebuilds the preview."""
    air = ws.add_label("air")
    threshold = Previewer(ws)
    threshold.preview(ThresholdEffect(air, -1100, -400))
    threshold.apply()
    for name, points in FIRST.items():
        stroke(ws, name, points, 6.0, overlap=True)
    previewer = Previewer(ws)
    grow = GrowEffect(inside=air, whole_image=True)
    updates = watch_updates(grow)
    previewer.preview(grow)
    for name, points, radius in MORE[:2]:
        stroke(ws, name, points, radius, overlap=True)
        previewer.preview(grow)
        assert grow.last_update == "incremental"
    assert len(updates) == 2 and None not in updates
    stroke(ws, "bone", [[0, 40, -140]], 8.0)  # a third seed segment: start over
    previewer.preview(grow)
    assert grow.last_update == "full" and len(updates) == 3 and updates[-1] is None  # declined: rebuilt

    names = ["right lung", "left lung", "bone"]
    seeds, ids = seeds_from_segments(ws.session, ws.segmentation, ws.volume, names)
    area = segment_mask(ws.session, ws.segmentation, air, ws.volume)
    grid = Grid.from_node(ws.volume)
    expected = grow_labels(arrayFromVolume(ws.volume), seeds, grid.spacing, area, margin=None)
    before = masks(ws, ws.segmentation)
    shown = masks(ws, previewer.node)
    for label, sid in enumerate(ids, start=1):  # grown inside the air; as painted outside it
        np.testing.assert_array_equal(shown[sid], np.where(area, expected == label, before[sid]), err_msg=sid)
    np.testing.assert_array_equal(shown[air], area)

    # One more stroke after the rebuild is in place again, and equals a fresh preview.
    stroke(ws, "bone", [[0, 35, -120]], 5.0, overlap=True)
    previewer.preview(grow)
    assert grow.last_update == "incremental" and len(updates) == 4 and updates[-1] == ids
    fresh = Previewer(ws)
    fresh.preview(GrowEffect(inside=air, whole_image=True))
    shown = masks(ws, previewer.node)
    for sid, mask in masks(ws, fresh.node).items():
        np.testing.assert_array_equal(shown[sid], mask, err_msg=sid)
