"""The panel's "Train a model" section, Qt-free: Train and Stop on the nnU-Net dataset the panel's Export fills.

Export with "Add to nnU-Net dataset" adds each corrected case to ``nnUNet_raw/DatasetNNN_Name``; Train trains
SegTruth's model on that dataset in a separate process (Slicer's ``PythonSlicer``, via ``training.runner``), so
the GUI never freezes and Stop ends the worker at once. The model goes to ``segtruth-models/DatasetNNN_Name``
beside ``nnUNet_raw``; once written it joins the Auto-segment model list, so the next case starts from it.
A stopped or failed training leaves the previous model as it was.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import Cancelled, SegTruthError
from ..core.jobs import Job
from ..dataset.case_export import NnunetTarget
from ..training.runner import TrainingSummary, start_training
from .options import TrainDimensions

MODELS_FOLDER = "segtruth-models"


@dataclass(frozen=True)
class TrainingView:
    """What the section shows: the button's text and whether it can be pressed, progress, the status line."""

    button_text: str
    button_enabled: bool
    button_reason: str
    dataset: str
    progress: float
    progress_visible: bool
    status: str
    error: bool


def python_slicer(slicer_home: str | os.PathLike | None) -> str:
    """Slicer's ``PythonSlicer`` (the interpreter with Slicer's packages), else this interpreter."""
    if slicer_home:
        name = "PythonSlicer.exe" if os.name == "nt" else "PythonSlicer"
        path = Path(slicer_home) / "bin" / name
        if path.is_file():
            return str(path)
    return sys.executable


class TrainingController:
    """One panel's training: the dataset and model folders its settings name, the worker job, its status."""

    def __init__(self, python: str | None = None, options: dict | None = None) -> None:
        self.python = python
        self.options = dict(options or {})  # more ``segtruth train`` flags by name, e.g. {"iterations": 20}
        self.job: Job | None = None
        self.trained: Path | None = None  # the model the last training wrote (for the model list)
        self.status, self.error = "", False
        self._stopping = False

    @staticmethod
    def dataset(p) -> Path:
        """The nnU-Net raw dataset Export adds cases to."""
        return NnunetTarget(Path(p.nnunetFolder), int(p.datasetId), str(p.datasetName).strip()).folder

    @classmethod
    def model(cls, p) -> Path:
        dataset = cls.dataset(p)
        return dataset.parent.parent / MODELS_FOLDER / dataset.name

    @property
    def busy(self) -> bool:
        return self.job is not None and not self.job.done

    def say(self, text: str, error: bool = False) -> None:
        self.status, self.error = text, error

    def view(self, p) -> TrainingView:
        dataset = self.dataset(p)
        if self.busy:
            text, enabled, reason = ("Stopping…", False, "Waiting for the worker to end.") if self._stopping else (
                "Stop", True, "")  # fmt: skip
        else:
            ready = (dataset / "dataset.json").is_file()
            reason = (
                "" if ready else f"Export cases with 'Add to nnU-Net dataset' first: {dataset} has no dataset.json."
            )
            text, enabled = "Train", ready
        fraction = self.job.progress()[0] if self.job is not None else 0.0
        return TrainingView(text, enabled, reason, str(dataset), fraction, self.busy, self.status, self.error)

    def toggle(self, p) -> None:
        """The Train button: start a training, or stop the one under way."""
        if self.busy:
            self.stop()
        else:
            self.start(p)

    def start(self, p) -> bool:
        if self.busy:
            return False
        dataset, model = self.dataset(p), self.model(p)
        if not (dataset / "dataset.json").is_file():
            self.say(f"Export cases with 'Add to nnU-Net dataset' first: {dataset} has no dataset.json.", True)
            return False
        init = model if p.trainFineTune and (model / "model.card.json").is_file() else None
        try:
            model.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            self.say(f"{model.parent}: cannot make the models folder ({error.strerror}).", True)
            return False
        self.job = start_training(
            dataset,
            model,
            python=self.python,
            minutes=float(p.trainMinutes),
            dimensions=int(TrainDimensions(p.trainDimensions).value),
            sparse=bool(p.trainSparse),
            init=init,
            device=p.device.value if p.device.value in ("auto", "cpu", "cuda") else "auto",
            overwrite=True,  # only a model folder the trainer wrote is replaced (the trainer checks)
            restart=True,  # the dataset changed since a stopped run: its checkpoint is not this training's
            **self.options,
        )
        self._stopping = False
        self.trained = None
        how = f"fine-tuning {model.name}" if init else "from scratch"
        self.say(f"Training on {dataset.name} ({how}) for up to {float(p.trainMinutes):g} min in a separate process…")
        return True

    def stop(self) -> None:
        if self.busy:
            self.job.cancel()  # type: ignore[union-attr]
            self._stopping = True
            self.say("Stopping the training; the previous model stays as it was.")

    def poll(self) -> bool:
        """Called from the GUI's timer: progress and, once done, the outcome. True while the training runs."""
        job = self.job
        if job is None:
            return False
        if not job.done:
            if not self._stopping:
                self.say(job.progress()[1])
            return True
        try:
            summary: TrainingSummary = job.wait(0)
        except Cancelled:
            self.say("Training stopped; the previous model stays as it was.")
        except SegTruthError as error:
            self.say(str(error), True)
        else:
            self.trained = summary.model
            self.say(f"Trained {summary.describe()}; it is in the Auto-segment model list.")
        self._stopping = False
        return False

    def close(self) -> None:
        """The panel goes away: end a training under way (its worker would otherwise run on unseen)."""
        if self.busy:
            self.job.cancel()  # type: ignore[union-attr]
