"""The web front end's effects without a browser: exact voxel counts, preview/apply/cancel, undo and redo.

The workspace is the one the server uses: trame-slicer's ``SlicerApp`` scene and segment editor (with its
undo stack) and a SegTruth ``Session`` on the same objects.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "trame_slicer", reason="the web front end needs trame-slicer (pip install 'trame-slicer[standalone]')"
)

from slicer.util import arrayFromVolume

from SegTruthLogic import Cancelled, SegTruthError
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.core.labels import Label, LabelTable
from SegTruthLogic.inference.jobs import Outcome
from SegTruthLogic.scene.editing import EditOptions
from SegTruthLogic.scene.segments import (
    find_segment,
    import_labelmap,
    segment_ids,
    segment_mask,
    set_segment_mask,
)
from SegTruthLogic.tools.grow import grow_labels, seeds_from_segments
from SegTruthLogic.tools.islands import label_islands
from SegTruthLogic.tools.paint import paint
from SegTruthLogic.web.cases import SAMPLE_LABELS, read_web_cases
from SegTruthLogic.web.effects import (
    AutoSegmentEffect,
    FillBetweenEffect,
    GrowEffect,
    IslandsEffect,
    Previewer,
    ThresholdEffect,
)
from SegTruthLogic.web.workspace import Workspace, options_from_editor_node

RIGHT_STROKE = [[63, -15, -140], [51, -15, -80]]  # RAS mm, inside the right lung of CTChest4
LEFT_STROKE = [[-74, -21, -140], [-65, -15, -80]]


@pytest.fixture
def ws(ct_chest, tmp_path: Path) -> Workspace:
    """The sample chest CT opened as a web case with the chest label table (right lung, left lung, bone)."""
    shutil.copyfile(ct_chest[0], tmp_path / "chest.nrrd")
    workspace = Workspace(table=LabelTable.read(SAMPLE_LABELS))
    workspace.open_case(read_web_cases(tmp_path)[0])
    return workspace


def sid(ws: Workspace, name: str) -> str:
    return find_segment(ws.segmentation, name)


def mask(ws: Workspace, name: str, node=None) -> np.ndarray:
    return segment_mask(ws.session, node or ws.segmentation, sid(ws, name), ws.volume)


def air_range(ws: Workspace) -> np.ndarray:
    values = arrayFromVolume(ws.volume)
    return (values >= -1100) & (values <= -400)


def paint_seeds(ws: Workspace, name: str, points, radius: float = 6.0, overlap: bool = False) -> None:
    """A brush stroke as the browser makes one: an undoable edit of the case's segmentation (``overlap``:
    with the editor's overwrite mode "allow overlap", so the segments under the stroke keep their voxels)."""
    options = EditOptions(overwrite="none") if overlap else EditOptions()
    with ws.record():
        paint(ws.session, ws.segmentation, ws.volume, name, points, radius, options=options, stroke=True)


def counts(ws: Workspace) -> dict[str, int]:
    rows, problem = ws.rows()
    assert not problem
    return {row.name: row.voxels for row in rows}


def test_case_opens_with_the_label_table_as_segments(ws):
    rows, problem = ws.rows()
    assert problem == ""
    assert [(r.name, r.value, r.color, r.voxels) for r in rows] == [
        ("right lung", 1, "#16c547", 0),
        ("left lung", 2, "#c51963", 0),
        ("bone", 3, "#f1d691", 0),
    ]
    air = ws.add_label("air")
    assert ws.editor.get_active_segment_id() == air
    assert ws.label_table().by_name("air").value == 4
    with pytest.raises(SegTruthError, match="already exists"):
        ws.add_label("air")
    with pytest.raises(SegTruthError, match="name"):
        ws.add_label("  ")


def test_threshold_preview_apply_undo_redo_count_exactly(ws):
    air = ws.add_label("air")
    expected = int(np.count_nonzero(air_range(ws)))
    previewer = Previewer(ws)
    shown = previewer.preview(ThresholdEffect(air, -1100, -400))
    assert shown == [air]
    assert counts(ws)["air"] == 0  # a preview leaves the case alone
    assert np.count_nonzero(mask(ws, "air", previewer.node)) == expected
    previewer.apply()
    assert previewer.node is None and not previewer.active
    assert counts(ws)["air"] == expected == 263976
    np.testing.assert_array_equal(mask(ws, "air"), air_range(ws))
    ws.undo()
    assert counts(ws)["air"] == 0
    ws.redo()
    assert counts(ws)["air"] == expected


def test_cancel_drops_the_preview_and_records_nothing(ws):
    air = ws.add_label("air")
    can_undo = ws.editor.undo_stack.can_undo()
    undo_index = ws.editor.undo_stack.index()
    previewer = Previewer(ws)
    previewer.preview(ThresholdEffect(air, -1100, -400))
    node = previewer.node
    previewer.cancel()
    assert not ws.session.scene.IsNodePresent(node)
    assert counts(ws)["air"] == 0
    assert ws.editor.undo_stack.index() == undo_index and ws.editor.undo_stack.can_undo() == can_undo
    with pytest.raises(SegTruthError, match="preview an effect first"):
        previewer.apply()


def test_grow_from_seeds_is_incremental_and_equals_a_full_run(ws):
    previewer = Previewer(ws)
    air = ws.add_label("air")
    previewer.preview(ThresholdEffect(air, -1100, -400))
    previewer.apply()
    air_voxels = mask(ws, "air")
    # Seeds inside the air as Slicer users paint them: overlapping it, so the air keeps the strokes' voxels.
    paint_seeds(ws, "right lung", RIGHT_STROKE, overlap=True)
    paint_seeds(ws, "left lung", LEFT_STROKE, overlap=True)
    grow = GrowEffect(inside=air, whole_image=True)
    previewer.preview(grow)
    assert grow.last_update == "full"
    np.testing.assert_array_equal(grow.area, air_voxels)  # inside the air: exactly its voxels
    assert counts(ws)["right lung"] < 200  # only the strokes: the preview is not in the case yet
    paint_seeds(ws, "left lung", [[-65, -15, -100]], 5.0, overlap=True)  # one more stroke while the preview is up
    assert previewer.stale
    previewer.preview(grow)
    assert grow.last_update == "incremental"

    # What a single full run of SegTruth's grow-cut gives on the same seeds and area.
    seeds, _ids = seeds_from_segments(ws.session, ws.segmentation, ws.volume, ["right lung", "left lung"])
    grid = Grid.from_node(ws.volume)
    expected = grow_labels(arrayFromVolume(ws.volume), seeds, grid.spacing, air_voxels, margin=None)
    previewer.apply()
    # Inside the air the grown labels; the strokes' voxels outside it (seeds ignored there) stay as painted.
    np.testing.assert_array_equal(mask(ws, "right lung"), np.where(air_voxels, expected == 1, seeds == 1))
    np.testing.assert_array_equal(mask(ws, "left lung"), np.where(air_voxels, expected == 2, seeds == 2))
    assert counts(ws)["right lung"] > 30000 and counts(ws)["left lung"] > 30000

    ws.undo()  # back to the seeds
    assert counts(ws)["right lung"] < 200
    ws.redo()
    np.testing.assert_array_equal(mask(ws, "left lung"), np.where(air_voxels, expected == 2, seeds == 2))


def test_apply_refreshes_a_stale_preview(ws):
    previewer = Previewer(ws)
    paint_seeds(ws, "right lung", RIGHT_STROKE)
    paint_seeds(ws, "left lung", LEFT_STROKE)
    grow = GrowEffect(whole_image=True)
    previewer.preview(grow)
    paint_seeds(ws, "bone", [[0, 40, -140]], 10.0)  # a third seed segment after the preview
    previewer.apply()
    assert counts(ws)["bone"] > 500  # the applied result knows the new seeds


def test_islands_keep_largest_and_split(ws):
    previewer = Previewer(ws)
    air = ws.add_label("air")
    previewer.preview(ThresholdEffect(air, -1100, -400))
    previewer.apply()
    islands = label_islands(mask(ws, "air"), ws.volume)
    sizes = np.bincount(islands.ravel())[1:]
    previewer.preview(IslandsEffect(air, "keep_largest"))
    previewer.apply()
    assert counts(ws)["air"] == sizes[0]
    ws.undo()
    assert counts(ws)["air"] == sizes.sum()

    ids = previewer.preview(IslandsEffect(air, "split"))
    assert len(ids) == len(sizes)
    previewer.apply()
    names = [ws.segment_name(s) for s in segment_ids(ws.segmentation)]
    assert names[:4] == ["right lung", "left lung", "bone", "air"] and names[4] == "air_2"
    assert counts(ws)["air_2"] == sizes[1]
    table = ws.label_table()  # new segments get the next free values
    assert table.by_name("air_2").value == 5
    ws.undo()
    assert "air_2" not in [ws.segment_name(s) for s in segment_ids(ws.segmentation)]


def test_effects_obey_the_editor_masking_settings(ws):
    import slicer

    node = ws.editor.editor_node
    right = sid(ws, "right lung")
    with ws.record():
        set_segment_mask(
            ws.session, ws.segmentation, right, air_range(ws) & (np.arange(34) < 17)[:, None, None], ws.volume
        )
    node.SetMaskMode(slicer.vtkMRMLSegmentationNode.EditAllowedInsideSingleSegment)
    node.SetMaskSegmentID(right)
    node.SetOverwriteMode(slicer.vtkMRMLSegmentEditorNode.OverwriteNone)
    options = options_from_editor_node(node)
    assert (options.editable_area, options.inside_segment, options.overwrite) == ("inside", right, "none")
    previewer = Previewer(ws)
    previewer.preview(ThresholdEffect(sid(ws, "bone"), -1100, -400))
    previewer.apply()
    np.testing.assert_array_equal(mask(ws, "bone"), mask(ws, "right lung"))  # only inside, nothing overwritten


def test_fill_between_slices_interpolates_drawn_slices(ws):
    right = sid(ws, "right lung")
    drawn = np.zeros(Grid.from_node(ws.volume).shape_kji, dtype=bool)
    drawn[10, 50:70, 30:50] = True
    drawn[20, 50:70, 30:50] = True
    with ws.record():
        set_segment_mask(ws.session, ws.segmentation, right, drawn, ws.volume)
    previewer = Previewer(ws)
    assert previewer.preview(FillBetweenEffect()) == [right]
    previewer.apply()
    filled = mask(ws, "right lung")
    assert all(filled[k, 50:70, 30:50].all() for k in range(10, 21))
    assert not filled[:10].any() and not filled[21:].any()


class FakeJob:
    """A model stand-in with the ``JobHandle`` protocol: labels air as 'body air' (value 1) in steps."""

    def __init__(self, volume, steps: int = 5, wait: threading.Event | None = None) -> None:
        self.volume = volume
        self.fraction, self.message = 0.0, "starting"
        self._cancel = threading.Event()
        self._done = threading.Event()
        self.reported: list[float] = []

        def run() -> None:
            for step in range(steps):
                if wait is not None:
                    wait.wait(5)
                if self._cancel.is_set():
                    break
                self.fraction, self.message = step / steps, f"step {step}"
                time.sleep(0.02)
            self._done.set()

        threading.Thread(target=run, daemon=True).start()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def progress(self) -> tuple[float, str]:
        return self.fraction, self.message

    def cancel(self) -> None:
        self._cancel.set()

    def finish(self, segmentation_node) -> Outcome:
        if self._cancel.is_set():
            raise Cancelled("inference")
        values = arrayFromVolume(self.volume)
        table = LabelTable(
            [Label("body air", 1, (0.2, 0.4, 0.9)), Label("left lung", 2, (0.8, 0.1, 0.4))], "fake model"
        )
        labels = np.where((values >= -1100) & (values <= -400), 1, 0).astype(np.uint8)
        import_labelmap(None, segmentation_node, labels, self.volume, table)  # type: ignore[arg-type]  # no session needed
        return Outcome(segmentation_node, table, ["fake notice"], "done")


class FakeRunner:
    def __init__(self, **options) -> None:
        self.options = options
        self.requests = []
        self.jobs: list[FakeJob] = []

    def start(self, request) -> FakeJob:
        self.requests.append(request)
        self.jobs.append(FakeJob(request.volume, **self.options))
        return self.jobs[-1]


def test_auto_segment_reports_progress_and_keeps_the_case_values(ws):
    runner = FakeRunner()
    effect = AutoSegmentEffect(runner, "fake-model", "cpu")
    seen: list[float] = []
    previewer = Previewer(ws)
    ids = previewer.preview(effect, progress=lambda fraction, _message: seen.append(fraction))
    assert runner.requests[0].model == "fake-model" and runner.requests[0].device == "cpu"
    assert seen and max(seen) > 0
    assert len(ids) == 2 and counts(ws).get("body air") is None  # only in the preview so far
    previewer.apply()
    assert len(runner.requests) == 1  # a refreshed preview or Apply never runs the model again
    table = ws.label_table()
    assert table.by_name("left lung").value == 2  # the case's own value
    assert table.by_name("body air").value == 4  # the model's 1 is taken by right lung: next free value
    assert counts(ws)["body air"] == 263976
    ws.undo()
    assert "body air" not in [row.name for row in ws.rows()[0]]


def test_auto_segment_cancel_writes_nothing(ws):
    gate = threading.Event()
    runner = FakeRunner(steps=50, wait=gate)
    effect = AutoSegmentEffect(runner, "fake-model")
    previewer = Previewer(ws)
    from SegTruthLogic.core.progress import CancelToken

    token = CancelToken()
    token.cancel()
    gate.set()
    with pytest.raises(Cancelled):
        previewer.preview(effect, cancel=token)
    assert not previewer.active
    assert [row.voxels for row in ws.rows()[0]] == [0, 0, 0]
    with pytest.raises(SegTruthError, match="Choose a model"):
        previewer.preview(AutoSegmentEffect(runner, ""))
