"""The panel's controller, headless on Slicer's real classes: states, enabling rules, Apply, Cancel, labels, Export.

Everything the SegTruth module's buttons do goes through ``PanelController``; these tests press the same
buttons on real volumes and segmentations and check what lands on disk.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import write_volume

from SegTruthLogic import SegTruthError
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.core.labels import Label, LabelTable
from SegTruthLogic.gui import (
    Device,
    ExportFormat,
    Outcome,
    PanelController,
    PanelParameters,
    RunState,
    RunStateMachine,
    ThreadJob,
)
from SegTruthLogic.scene.segments import import_labelmap, new_segmentation, segment_ids, segment_info, segment_mask
from SegTruthLogic.tools.threshold import threshold

FAKE_TABLE = LabelTable([Label("liver", 4, (0.8, 0.4, 0.3))], "fake model")


# -- helpers ---------------------------------------------------------------------------------------------------------
def add_data(session, path: Path):
    """A volume loaded the way Slicer's Add Data loads it: no SegTruth attributes on the node."""
    node = session.volumes.AddArchetypeVolume(str(path), path.name.split(".")[0], 4)
    assert node is not None and node.GetImageData() is not None
    return node


def run_until_idle(controller: PanelController, p, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while controller.poll(p):
        assert time.monotonic() < end, "the job did not finish"
        time.sleep(0.01)


class FakeRunner:
    """A slow job through the real JobRunner protocol: ``steps`` sleeps, each checking the cancel token."""

    def __init__(self, session, steps: int = 40, delay: float = 0.02, fail: str | None = None, bug: bool = False):
        self.session, self.steps, self.delay, self.fail, self.bug = session, steps, delay, fail, bug
        self.requests = []
        self.applied = 0

    def start(self, request):
        self.requests.append(request)

        def work(progress, cancel):
            for step in range(self.steps):
                cancel.raise_if_cancelled("fake job")
                time.sleep(self.delay)
                progress((step + 1) / self.steps, f"step {step + 1} of {self.steps}")
            if self.fail:
                raise SegTruthError(self.fail)
            return request.volume

        def apply(volume, segmentation):
            if self.bug:
                raise RuntimeError("a bug")
            self.applied += 1
            node = segmentation or new_segmentation(self.session, volume)
            labels = np.zeros(Grid.from_node(volume).shape_kji, np.uint8)
            labels[2:5, 2:5, 2:5] = 4
            import_labelmap(self.session, node, labels, volume, FAKE_TABLE)
            return Outcome(node, FAKE_TABLE, ["fake notice"], "Fake model labelled 1 structure.")

        return ThreadJob(work, apply, "fake job")


@pytest.fixture
def boxes(session, two_boxes):
    return add_data(session, two_boxes)


@pytest.fixture
def params(boxes, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    return PanelParameters(inputVolume=boxes, model="fake", exportFolder=out, nnunetFolder=tmp_path / "raw")


# -- the state machine -----------------------------------------------------------------------------------------------
def test_state_machine_moves_and_refuses_impossible_moves():
    machine = RunStateMachine()
    assert machine.state is RunState.IDLE and not machine.busy
    machine.move(RunState.RUNNING)
    assert machine.busy
    machine.move(RunState.CANCELLING)
    with pytest.raises(RuntimeError, match="cancelling to done"):
        machine.move(RunState.DONE)  # a cancelled run's result is never taken
    with pytest.raises(RuntimeError, match="reset while cancelling"):
        machine.reset()
    machine.move(RunState.CANCELLED)
    machine.move(RunState.RUNNING)
    machine.move(RunState.FAILED)
    machine.reset()
    assert machine.history == [
        RunState.IDLE,
        RunState.RUNNING,
        RunState.CANCELLING,
        RunState.CANCELLED,
        RunState.RUNNING,
        RunState.FAILED,
        RunState.IDLE,
    ]
    with pytest.raises(RuntimeError, match="idle to done"):
        machine.move(RunState.DONE)


# -- enabling rules ----------------------------------------------------------------------------------------------------
def test_enabling_rules_follow_the_inputs(session, boxes, tmp_path):
    controller = PanelController(session, runner=FakeRunner(session))
    p = PanelParameters(exportFolder=tmp_path)
    view = controller.view(p)
    assert (view.apply_text, view.apply.enabled, view.apply.reason) == ("Apply", False, "Choose the source volume.")
    assert not view.export.enabled and not view.editor.enabled and view.inputs.enabled
    p.inputVolume = boxes
    assert controller.view(p).apply.reason == "Choose a model."
    p.model = "fake"
    assert controller.view(p).apply.enabled
    assert controller.view(p).export.reason == "The segmentation has no segments to export."
    controller.ensure_segmentation(p)
    assert p.segmentation is not None and controller.view(p).editor.enabled
    threshold(session, p.segmentation, boxes, "box", 150, 250)
    assert controller.view(p).export.enabled
    p.exportFolder = tmp_path / "missing"
    assert controller.view(p).export.reason == "Choose an existing export folder."
    assert not controller.view(p).nnunet.enabled
    p.addToNnunet = True
    assert controller.view(p).nnunet.enabled


def test_enabling_rules_while_running_and_cancelling(session, params):
    controller = PanelController(session, runner=FakeRunner(session, steps=200))
    controller.ensure_segmentation(params)
    controller.apply(params)
    view = controller.view(params)
    assert view.apply_text == "Cancel" and view.apply.enabled
    assert not view.inputs.enabled and not view.editor.enabled and not view.export.enabled
    assert not view.labels.enabled and view.progress_visible
    assert view.export.reason == "Locked while auto-segmentation runs."
    assert controller.plan_export(params) is None and controller.error
    controller.apply(params)  # the same button, now Cancel
    view = controller.view(params)
    assert (view.apply_text, view.apply.enabled) == ("Cancelling…", False)
    run_until_idle(controller, params)
    view = controller.view(params)
    assert (view.apply_text, view.apply.enabled, view.inputs.enabled) == ("Apply", True, True)


# -- Apply and Cancel ------------------------------------------------------------------------------------------------
def test_cancel_ends_cancelled_with_nothing_written(session, params):
    runner = FakeRunner(session, steps=200, delay=0.01)
    controller = PanelController(session, runner=runner)
    controller.ensure_segmentation(params)
    before = params.labelTable
    assert controller.start(params)
    time.sleep(0.05)
    assert controller.poll(params)
    assert 0 < controller.progress < 1
    controller.cancel()
    run_until_idle(controller, params)
    assert controller.run.history == [RunState.IDLE, RunState.RUNNING, RunState.CANCELLING, RunState.CANCELLED]
    assert not controller.run.busy and controller.view(params).apply.enabled
    assert runner.applied == 0 and segment_ids(params.segmentation) == []
    assert params.labelTable == before
    assert "cancelled" in controller.status and not controller.error
    assert list(Path(params.exportFolder).iterdir()) == []


def test_cancel_after_the_job_finished_still_writes_nothing(session, params):
    runner = FakeRunner(session, steps=1, delay=0.0)
    controller = PanelController(session, runner=runner)
    controller.ensure_segmentation(params)
    controller.start(params)
    time.sleep(0.2)  # the job is done, its result not yet taken
    controller.cancel()
    run_until_idle(controller, params)
    assert controller.run.state is RunState.CANCELLED and runner.applied == 0
    assert segment_ids(params.segmentation) == []


def test_apply_runs_in_the_background_and_writes_the_result(session, params):
    runner = FakeRunner(session, steps=20)
    controller = PanelController(session, runner=runner)
    params.device, params.tta = Device.CPU, True
    controller.apply(params)
    assert controller.run.state is RunState.RUNNING
    assert runner.requests[0].device == "cpu" and runner.requests[0].tta
    run_until_idle(controller, params)
    assert controller.run.state is RunState.DONE
    assert controller.status == "Fake model labelled 1 structure." and not controller.error
    node = params.segmentation
    assert node is not None and [segment_info(node, sid)[0] for sid in segment_ids(node)] == ["liver"]
    assert "fake notice" in controller.log and "step 20 of 20" in controller.log
    rows = json.loads(params.labelTable)
    assert [(r["name"], r["value"]) for r in rows] == [("liver", "4")]
    assert controller.progress == 1.0


def test_a_failing_job_shows_its_sentence_and_frees_the_panel(session, params):
    controller = PanelController(session, runner=FakeRunner(session, steps=2, fail="Model 'x' expects 2 channels."))
    controller.apply(params)
    run_until_idle(controller, params)
    assert controller.run.state is RunState.FAILED
    assert controller.status == "Model 'x' expects 2 channels." and controller.error
    assert controller.view(params).apply.enabled


def test_a_bug_in_a_job_does_not_leave_the_panel_running(session, params):
    controller = PanelController(session, runner=FakeRunner(session, steps=1, bug=True))
    controller.apply(params)
    run_until_idle(controller, params)
    assert controller.run.state is RunState.FAILED and "unexpectedly" in controller.status


def test_closing_the_scene_stops_the_job(session, params):
    runner = FakeRunner(session, steps=500)
    controller = PanelController(session, runner=runner)
    controller.apply(params)
    controller.scene_closed()
    assert controller.run.state is RunState.IDLE and controller.handle is None
    assert not controller.poll(params) and runner.applied == 0


def test_start_refuses_without_inputs(session, params):
    controller = PanelController(session, runner=FakeRunner(session))
    params.model = ""
    assert not controller.start(params)
    assert controller.error and controller.run.state is RunState.IDLE


# -- the real engine --------------------------------------------------------------------------------------------------
def bright_model(folder: Path, patch: int = 16) -> Path:
    """A TorchScript network labelling voxels above 0.5 (value 7) with its card; returns the folder."""
    torch = pytest.importorskip("torch")

    class Bright(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([torch.zeros_like(x[:, :1]), x[:, :1] - 0.5], dim=1)

    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(Bright()).save(str(folder / "model.pt"))
    card = {
        "name": "bright",
        "format": "torchscript",
        "input": {"channels": 1, "modality": "any", "dimensions": 3},
        "preprocessing": {"orientation": "RAS", "axes": "ijk"},
        "inference": {"patch_size": [patch] * 3, "output": "logits"},
        "labels": [{"name": "bright", "value": 7, "channel": 1, "color": "#ff0000"}],
        "weights": {"file": "model.pt"},
    }
    (folder / "model.card.json").write_text(json.dumps(card))
    return folder


def test_apply_with_segtruths_engine_on_a_model_folder(session, params, tmp_path):
    params.model = str(bright_model(tmp_path / "bright"))
    controller = PanelController(session)  # the default runner: SegTruth's engine in a worker thread
    assert params.model in [choice.key for choice in controller.model_choices([params.model])]
    assert not controller.missing_dependencies(params).torch
    assert controller.start(params), controller.status
    run_until_idle(controller, params, timeout=120)
    assert controller.run.state is RunState.DONE, controller.status
    node = params.segmentation
    sid = node.GetSegmentation().GetSegmentIdBySegmentName("bright")
    assert segment_mask(session, node, sid, params.inputVolume).sum() == 8000  # the two boxes of the fixture
    assert segment_info(node, sid)[3] == 7
    result = controller.export(params)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(result.written[0])))
    assert set(np.unique(labels)) == {0, 7}


def test_cancelling_segtruths_engine_writes_nothing(session, params, tmp_path):
    params.model = str(bright_model(tmp_path / "bright", patch=8))
    controller = PanelController(session)
    controller.ensure_segmentation(params)
    assert controller.start(params), controller.status
    controller.cancel()
    run_until_idle(controller, params, timeout=120)
    assert controller.run.state is RunState.CANCELLED
    assert segment_ids(params.segmentation) == []


def test_model_choices_list_the_catalog_without_torch(session, monkeypatch):
    controller = PanelController(session)
    monkeypatch.setattr("SegTruthLogic.core.slicer_deps.torch_installed", lambda: False)
    assert "deepbet" in [choice.key for choice in controller.model_choices()]


def test_missing_dependencies_name_the_models_weight_package(session, params, monkeypatch):
    controller = PanelController(session)
    params.model = "deepbet"
    monkeypatch.setattr("SegTruthLogic.core.slicer_deps.satisfied", lambda requirement: False)
    monkeypatch.setattr("SegTruthLogic.core.slicer_deps.torch_installed", lambda: False)
    missing = controller.missing_dependencies(params)
    assert missing.torch and "scipy>=1.10" in missing.packages and missing.no_deps == ("deepbet==1.0.2",)
    assert "PyTorch" in missing.describe() and "deepbet==1.0.2 (model files only)" in missing.describe()


def test_importing_the_panel_imports_no_torch_and_no_qt():
    code = "import sys, SegTruthLogic.gui; print(sorted(m for m in ('torch', 'qt', 'ctk', 'numba', 'yaml') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- labels -------------------------------------------------------------------------------------------------------------
def test_label_table_edits_apply_to_segments(session, params, tmp_path):
    controller = PanelController(session)
    controller.ensure_segmentation(params)
    node = params.segmentation
    threshold(session, node, params.inputVolume, "box", 150, 250)
    controller.parameters_changed(params)  # a segmentation with segments fills an empty table
    assert [(r.name, r.value) for r in controller.labels.rows] == [("box", "1")]
    controller.edit_label(params, 0, 0, "kidney")
    controller.edit_label(params, 0, 1, "x")
    assert controller.error and "no integer value" in controller.status
    assert not controller.view(params).labels_apply.enabled and not controller.view(params).export.enabled
    controller.edit_label(params, 0, 1, "12")
    controller.edit_label(params, 0, 3, "SCT^123037004^Anatomical Structure | SCT^64033007^Kidney | SCT^24028007^Right")
    assert not controller.error
    row = controller.add_label(params)
    controller.edit_label(params, row, 0, "cyst")
    assert controller.apply_labels(params), controller.status
    names = {segment_info(node, sid)[0]: segment_info(node, sid) for sid in segment_ids(node)}
    assert set(names) == {"kidney", "cyst"}  # renamed in place, and one added
    assert names["kidney"][3] == 12 and names["kidney"][2].type_modifier.meaning == "Right"
    assert names["cyst"][3] == 13
    controller.edit_label(params, 0, 3, "SCT^1^a | b")
    assert "label 'kidney': Code 'b' is not of the form SCHEME^VALUE^MEANING" in controller.status
    controller.edit_label(params, 0, 3, "SCT^1^a")
    assert "row 1: terminology 'SCT^1^a' must be category | type" in controller.status
    controller.edit_label(params, 0, 3, "")
    saved = tmp_path / "labels.csv"
    assert controller.save_labels(saved)
    other = PanelController(session)
    assert other.load_labels(PanelParameters(), saved)
    assert [(r.name, r.value) for r in other.labels.rows] == [("kidney", "12"), ("cyst", "13")]
    assert not other.load_labels(PanelParameters(), tmp_path / "missing.csv") and "not found" in other.status


def test_label_table_survives_in_the_parameters(session, params):
    controller = PanelController(session)
    controller.add_label(params)
    again = PanelController(session)
    again.parameters_changed(params)
    assert [(r.name, r.value) for r in again.labels.rows] == [("label 1", "1")]
    params.labelTable = "{broken"
    again.parameters_changed(params)
    assert again.error and "unreadable" in again.status


def test_applying_a_name_another_segment_has_is_refused(session, params):
    controller = PanelController(session)
    controller.ensure_segmentation(params)
    threshold(session, params.segmentation, params.inputVolume, "a", 150, 250)
    controller.labels_from_segments(params)
    threshold(session, params.segmentation, params.inputVolume, "b", 50, 150)
    controller.edit_label(params, 0, 0, "b")
    assert not controller.apply_labels(params)
    assert "already named 'b'" in controller.status


# -- export -----------------------------------------------------------------------------------------------------------
def test_export_on_a_real_ct_writes_labels_on_the_source_grid(session, ct_chest, tmp_path):
    image, _ = ct_chest
    ct = add_data(session, image)
    controller = PanelController(session)
    p = PanelParameters(inputVolume=ct, exportFolder=tmp_path, exportName="chest")
    controller.ensure_segmentation(p)
    threshold(session, p.segmentation, ct, "bone", 100, 3071)
    controller.labels_from_segments(p)
    controller.edit_label(p, 0, 1, "3")
    result = controller.export(p)
    assert result is not None, controller.status
    written = tmp_path / "chest.nii.gz"
    assert result.written[:2] == [written, tmp_path / "chest_qc.png"] and (tmp_path / "chest_qc.png").stat().st_size
    source = sitk.ReadImage(str(image))
    out = sitk.ReadImage(str(written))
    assert Grid.from_sitk(out).same_as(Grid.from_sitk(source))
    values = sitk.GetArrayFromImage(source)
    expected = np.where((values >= 100) & (values <= 3071), 3, 0)
    assert np.array_equal(sitk.GetArrayFromImage(out), expected)
    assert "chest.nii.gz" in controller.status and not controller.error


def test_export_undoes_slicers_flip_of_a_left_handed_file(session, tmp_path):
    array = np.zeros((12, 14, 16), np.int16)
    array[2:5, 3:9, 1:4] = 100  # asymmetric, so a flip would show
    direction = (-1, 0, 0, 0, 1, 0, 0, 0, 1)  # left-handed: Slicer flips it on load
    path = write_volume(tmp_path / "left.nii.gz", array, (0.7, 0.8, 1.9), (5.0, -3.0, 2.0), direction)
    volume = add_data(session, path)
    assert not Grid.from_node(volume).same_as(Grid.from_sitk(sitk.ReadImage(str(path))))
    out = tmp_path / "out"
    out.mkdir()
    for fmt in (ExportFormat.NIFTI, ExportFormat.NRRD):
        p = PanelParameters(inputVolume=volume, exportFolder=out, exportFormat=fmt, qcPicture=False)
        controller = PanelController(session)
        controller.ensure_segmentation(p)
        threshold(session, p.segmentation, volume, "box", 50, 150)
        result = controller.export(p)
        assert result is not None, controller.status
        written = sitk.ReadImage(str(result.written[0]))
        assert Grid.from_sitk(written).same_as(Grid.from_sitk(sitk.ReadImage(str(path))))
        assert np.array_equal(sitk.GetArrayFromImage(written), (array == 100).astype(np.uint8))


def test_export_never_silently_replaces_an_annotation(session, params):
    controller = PanelController(session)
    controller.ensure_segmentation(params)
    threshold(session, params.segmentation, params.inputVolume, "box", 150, 250)
    params.exportFormat = ExportFormat.SEG_NRRD
    first = controller.export(params)
    assert first is not None, controller.status
    path = first.written[0]
    assert path.name.endswith(".seg.nrrd")
    content = path.read_bytes()
    plan = controller.plan_export(params)
    assert plan.existing == [str(path)]
    assert controller.export(params) is None and "already exists" in controller.status
    assert path.read_bytes() == content
    threshold(session, params.segmentation, params.inputVolume, "box", 50, 250)
    assert controller.export(params, overwrite=True) is not None
    assert path.read_bytes() != content


def test_dicom_seg_needs_a_dicom_volume(session, params):
    controller = PanelController(session)
    controller.ensure_segmentation(params)
    threshold(session, params.segmentation, params.inputVolume, "box", 150, 250)
    params.exportFormat = ExportFormat.DICOM_SEG
    assert controller.export(params) is None
    assert "DICOM SEG needs a volume loaded from DICOM" in controller.status
    assert list(Path(params.exportFolder).iterdir()) == []


def test_bad_export_names_are_refused(session, params):
    controller = PanelController(session)
    controller.ensure_segmentation(params)
    threshold(session, params.segmentation, params.inputVolume, "box", 150, 250)
    params.exportName = "../x y"
    assert controller.export(params) is None and "may only hold" in controller.status


def test_export_adds_cases_to_an_nnunet_dataset(session, params, tmp_path):
    controller = PanelController(session)
    controller.ensure_segmentation(params)
    threshold(session, params.segmentation, params.inputVolume, "box", 150, 250)
    params.addToNnunet, params.datasetId, params.datasetName = True, 42, "Boxes"
    for name in ("case_a", "case_b"):
        params.exportName = name
        assert controller.export(params) is not None, controller.status
    folder = tmp_path / "raw" / "Dataset042_Boxes"
    data = json.loads((folder / "dataset.json").read_text())
    assert data["numTraining"] == 2 and data["labels"] == {"background": 0, "box": 1}
    assert sorted(p.name for p in (folder / "labelsTr").iterdir()) == ["case_a.nii.gz", "case_b.nii.gz"]
    label = sitk.ReadImage(str(folder / "labelsTr" / "case_b.nii.gz"))
    image = sitk.ReadImage(str(folder / "imagesTr" / "case_b_0000.nii.gz"))
    assert Grid.from_sitk(label).same_as(Grid.from_sitk(image))
    assert int(sitk.GetArrayFromImage(label).sum()) == 6000  # box B only (150..250)
    plan = controller.plan_export(params)
    assert f"case 'case_b' of {folder.name}" in plan.existing
    assert controller.export(params) is None and "already exists" in controller.status


def test_nnunet_needs_consecutive_values(session, params):
    controller = PanelController(session)
    controller.ensure_segmentation(params)
    threshold(session, params.segmentation, params.inputVolume, "box", 150, 250)
    controller.labels_from_segments(params)
    controller.edit_label(params, 0, 1, "5")
    params.addToNnunet = True
    assert controller.export(params) is None and "without gaps" in controller.status
    assert list(Path(params.exportFolder).iterdir()) == []


# -- where a DICOM volume's series is ----------------------------------------------------------------------------------
class DicomDatabase:
    """The two ctkDICOMDatabase calls the panel makes (Slicer's database needs the Qt application)."""

    def __init__(self, files: dict[str, str], series: str) -> None:
        self.files, self.series, self.asked = files, series, []

    def fileForInstance(self, uid: str) -> str:
        return self.files.get(uid, "")

    def instanceValue(self, uid: str, tag: str) -> str:
        self.asked.append((uid, tag))
        return self.series


def test_a_volume_from_slicers_dicom_module_is_found_through_its_database(boxes, tmp_path):
    from SegTruthLogic.gui import dicom_source_from_database

    (tmp_path / "series").mkdir()
    database = DicomDatabase({"1.2.3.1": str(tmp_path / "series" / "IM0001.dcm")}, "1.2.3")
    assert dicom_source_from_database(boxes, database) is None  # not loaded from DICOM
    boxes.SetAttribute("DICOM.instanceUIDs", "1.2.3.1 1.2.3.2")
    assert dicom_source_from_database(boxes, database) == (tmp_path / "series", "1.2.3")
    assert database.asked == [("1.2.3.1", "0020,000E")]  # SeriesInstanceUID of the first instance
    assert dicom_source_from_database(boxes, None) is None  # an application without a DICOM database
    boxes.SetAttribute("DICOM.instanceUIDs", "9.9.9")
    assert dicom_source_from_database(boxes, database) is None  # the database no longer has the file
    boxes.SetAttribute("SegTruth.SourceFile", str(tmp_path))  # SegTruth's own loader's record wins
    boxes.SetAttribute("DICOM.SeriesInstanceUID", "4.5.6")
    assert dicom_source_from_database(boxes, database) == (tmp_path, "4.5.6")
