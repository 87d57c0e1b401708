"""Training and ranking in a separate process, for the front ends (web app, Slicer panel) that must stay live.

``start_training`` and ``start_ranking`` run ``python -m SegTruthLogic.training.worker`` (inside Slicer: its
``PythonSlicer``) on ``core.jobs.ProcessJob``: the job's ``progress()`` is the worker's (epoch, loss, validation
Dice, ETA), ``cancel()`` stops it (SIGTERM, then SIGKILL after a grace period, to every process it started), and
``wait()`` gives the model folder's ``training.json`` as a ``TrainingSummary`` or the ranking's rows. The model
folder appears whole or not at all, so a stopped training leaves the previous model in place.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import SegTruthError
from ..core.jobs import ProcessJob, worker_error
from ..core.progress import CancelToken, ProgressCallback
from .record import TRAINING_RECORD


@dataclass(frozen=True)
class TrainingSummary:
    """What a finished training reports (read from the model folder's ``training.json``)."""

    model: Path
    epochs: int
    best_epoch: int
    best_dice: float
    seconds: float
    stopped: str

    @classmethod
    def read(cls, model: str | Path) -> TrainingSummary:
        model = Path(model)
        try:
            record = json.loads((model / TRAINING_RECORD).read_text(encoding="utf-8"))
            history = record["history"]
            return cls(
                model,
                len(history),
                int(record["best_epoch"]),
                float(record["best_val_dice"]),
                sum(float(epoch["seconds"]) for epoch in history),
                str(record["stopped"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise SegTruthError(f"{model}: has no readable {TRAINING_RECORD} ({error}).") from None

    def describe(self) -> str:
        return (
            f"{self.model.name}: {self.epochs} epoch(s) in {self.seconds / 60:.1f} min, best validation Dice "
            f"{self.best_dice:.3f} at epoch {self.best_epoch} (stopped by {self.stopped})"
        )


def _flags(options: dict[str, object]) -> list[str]:
    """``{"minutes": 5, "sparse": True, "init": None}`` -> ``["--minutes", "5", "--sparse"]``."""
    out: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            out.append(flag)
        elif isinstance(value, (list, tuple)):
            out += [flag, ",".join(str(v) for v in value)]
        else:
            out += [flag, str(value)]
    return out


def _worker(python: str | None, command: str, arguments: Sequence[str]) -> list[str]:
    return [python or sys.executable, "-m", "SegTruthLogic.training.worker", command, *arguments]


def start_training(
    dataset: str | Path,
    output: str | Path,
    *,
    python: str | None = None,
    env: dict[str, str] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    bootstrap: bool = False,
    **options: object,
) -> ProcessJob:
    """Start ``segtruth train DATASET -o OUTPUT`` (``bootstrap``: ``segtruth bootstrap``) in a worker process.

    ``options`` are the command's flags by name: ``minutes=5, epochs=None, device="cpu", init=path, sparse=True,
    labels=table_path, only=["liver"], overwrite=True, ...``. ``wait()`` returns the ``TrainingSummary``.
    """
    arguments = [str(dataset), "-o", str(output), "--quiet", *_flags(options)]
    command = _worker(python, "bootstrap" if bootstrap else "train", arguments)
    return ProcessJob(
        command,
        "training",
        progress=progress,
        cancel=cancel,
        result=lambda: TrainingSummary.read(output),
        failure=worker_error,
        env=env,
    )


def start_ranking(
    cases: str | Path,
    model: str | Path,
    output: str | Path,
    *,
    python: str | None = None,
    env: dict[str, str] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    **options: object,
) -> ProcessJob:
    """Start ``segtruth rank CASES --model MODEL -o OUTPUT``; ``wait()`` returns the CSV's rows, in rank order.

    A case that could not be scored is a row (last) with its ``error``; the job fails only when no case could be.
    """
    arguments = [str(cases), "--model", str(model), "-o", str(output), "--quiet", *_flags(options)]
    output = Path(output)

    def rows() -> list[dict[str, str]]:
        with output.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    return ProcessJob(
        _worker(python, "rank", arguments),
        "ranking",
        progress=progress,
        cancel=cancel,
        result=rows,
        failure=worker_error,
        env=env,
    )
