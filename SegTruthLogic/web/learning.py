"""Learn as you label in the web app: the served cases train the project's model, which pre-segments and ranks them.

The project is the served folder (the manifest's folder, the DICOM tree's root, the sample folder). Its model is
``PROJECT/segtruth-model``, a model folder like any other (``segtruth segment --model PROJECT/segtruth-model``);
the files a training run reads are written to ``PROJECT/.segtruth/``: the manifest of the saved, labelled cases
(what ``segtruth train`` reads) and the ranking's CSV. Training and ranking run in a worker process
(``training.runner``), so the editor stays live while they run and Stop ends them at once; a stopped or failed
training leaves the previous model as it was.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.atomic import atomic_write_text
from ..core.errors import SegTruthError
from ..core.jobs import ProcessJob
from ..training.runner import TrainingSummary, start_ranking, start_training
from .cases import WebCase

MODEL_FOLDER = "segtruth-model"
WORK_FOLDER = ".segtruth"
DEFAULT_MINUTES = 10.0


@dataclass(frozen=True)
class RankedCase:
    """A case's place in the ranking: ``note`` is what the case list shows under its name."""

    case: str
    kind: str  # unlabelled, labelled or failed
    score: float
    note: str


def rank_note(row: dict[str, str]) -> RankedCase:
    """A ranking CSV row as the case list shows it: label next (most uncertain first), review, or why it failed."""
    kind = row.get("kind", "")
    score = float(row["score"]) if row.get("score") else math.nan
    if kind == "failed":
        note = f"not ranked: {row.get('error', '')}"
    elif kind == "unlabelled":
        note = f"#{row['rank']} to label: model uncertainty {score:.2f}"
    else:
        note = f"#{row['rank']} to review: model disagrees {score:.2f} (1 - Dice)"
    return RankedCase(row.get("case", ""), kind, score, note)


class ProjectLearning:
    """The served cases' training loop: what is labelled, the project's model, and the jobs that make and rank it."""

    def __init__(
        self, cases: Sequence[WebCase], project: Path, python: str | None = None, options: dict | None = None
    ) -> None:
        self.cases = list(cases)
        self.project = Path(project)
        self.model = self.project / MODEL_FOLDER
        self.work = self.project / WORK_FOLDER
        self.python = python
        self.options = dict(options or {})  # more ``segtruth train`` flags by name, e.g. {"iterations": 20}

    def labelled(self) -> list[WebCase]:
        """The cases with an annotation to learn from (saved here, or listed with the case)."""
        return [case for case in self.cases if not case.problem and case.start_from() is not None]

    def has_model(self) -> bool:
        return (self.model / "model.card.json").is_file()

    def summary(self) -> str:
        """One line about the project's model, or that there is none yet."""
        if not self.has_model():
            return "No model yet: label and save a few cases, then train."
        try:
            return TrainingSummary.read(self.model).describe()
        except SegTruthError:  # a model folder not written by the trainer (copied in by hand): still usable
            return f"{self.model.name}: a model folder"

    def _manifest(self, name: str, cases: Sequence[WebCase]) -> Path:
        """A ``case,image,segmentation`` manifest of ``cases`` in the work folder (every channel of each)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        channels = max(len(case.entry.images) for case in cases)
        header = ["case", "image"] if channels == 1 else ["case", *[f"image_{n:04d}" for n in range(channels)]]
        writer.writerow([*header, "segmentation"])
        for case in cases:
            start = case.start_from()
            writer.writerow(
                [case.case, *[str(p.resolve()) for p in case.entry.images], str(start.resolve()) if start else ""]
            )
        try:
            self.work.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SegTruthError(f"{self.work}: cannot make the project's work folder ({error.strerror}).") from None
        path = self.work / name
        atomic_write_text(path, out.getvalue())
        return path

    def start_training(
        self,
        minutes: float = DEFAULT_MINUTES,
        sparse: bool = False,
        fine_tune: bool = True,
        dimensions: int = 2,
        device: str = "auto",
    ) -> ProcessJob:
        """Train the project's model on the labelled cases (fine-tuning the current one unless ``fine_tune`` is off).

        ``dimensions`` 2 (the default: fast on a CPU, and it learns from a few labelled slices) segments slice by
        slice; 3 trains a 3D model, better with whole labelled cases and time (or a GPU).
        """
        labelled = self.labelled()
        if not labelled:
            raise SegTruthError(
                "No case is labelled and saved yet: label a case (or a few slices of it), Save, then train."
            )
        if not minutes or minutes <= 0:
            raise SegTruthError(f"Give the training a positive number of minutes, not {minutes!r}.")
        manifest = self._manifest("train.csv", labelled)
        init = self.model if fine_tune and self.has_model() else None
        return start_training(
            manifest,
            self.model,
            python=self.python,
            minutes=minutes,
            sparse=sparse,
            init=init,
            dimensions=dimensions,
            device=device,
            overwrite=True,  # the project's own model folder, written by the trainer
            restart=True,  # the cases changed since a stopped run: its checkpoint is not this training's
            **self.options,
        )

    def start_ranking(self, sparse: bool = False, device: str = "auto") -> ProcessJob:
        """Rank every case with the project's model: unlabelled by uncertainty, labelled by disagreement."""
        if not self.has_model():
            raise SegTruthError("Train the project's model first: the ranking is the model's.")
        cases = [case for case in self.cases if not case.problem]
        if not cases:
            raise SegTruthError("No case can be opened, so none can be ranked.")
        manifest = self._manifest("rank-cases.csv", cases)
        return start_ranking(
            manifest, self.model, self.work / "rank.csv", python=self.python, sparse=sparse, device=device
        )
