"""``segtruth train --backend nnunet``: nnU-Net v2's own planning, preprocessing and training, where it is installed.

SegTruth never imports nnunetv2: it needs PyPI's default (CUDA) torch, which does not load beside SegTruth's, so
it lives in an environment of its own. SegTruth runs that environment's ``nnUNetv2_plan_and_preprocess`` and
``nnUNetv2_train`` (the interpreter given by ``--nnunet-python`` or ``$SEGTRUTH_NNUNET_PYTHON``, else the
``nnUNetv2_train`` on PATH) on private ``nnUNet_raw``/``nnUNet_preprocessed``/``nnUNet_results`` folders in
``MODEL.training``, so nothing of the person's own nnU-Net folders is touched, and publishes nnU-Net's results
folder (``dataset.json``, ``plans.json``, ``fold_N/checkpoint_final.pth``) as MODEL, whole or not at all:
``segtruth segment --model MODEL`` loads it as any nnU-Net results folder.

nnU-Net's trainer has no time budget: ``--epochs`` picks one of nnunetv2's fixed-length trainers
(``nnUNetTrainer_Nepochs``; 1000 epochs without it). Running the same command again after an interruption
continues from nnU-Net's latest checkpoint (``nnUNetv2_train --c``); ``--restart`` starts afresh.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.atomic import atomic_folder, check_output_folder
from ..core.errors import SegTruthError
from ..core.jobs import ProcessJob
from ..core.progress import CancelToken, ProgressCallback, report

EPOCH_TRAINERS = (1, 5, 10, 20, 50, 100, 250, 500, 750, 2000, 4000, 8000)  # nnunetv2's nnUNetTrainer_Nepochs
DEFAULT_EPOCHS = 1000  # nnUNetTrainer's own
DATASET_NAME = re.compile(r"^Dataset(\d{3})_[A-Za-z0-9_\-]+$")
PYTHON_VARIABLE = "SEGTRUTH_NNUNET_PYTHON"
_EPOCH = re.compile(r": Epoch (\d+)\s*$")
_LOSS = re.compile(r": train_loss (-?[\d.]+(?:e-?\d+)?)")
_DICE = re.compile(r": Pseudo dice \[(.*)\]")
_TIME = re.compile(r": Epoch time: ([\d.]+) s")


@dataclass
class NnunetTraining:
    """What nnU-Net reported, epoch by epoch (from its log lines), and where the model went."""

    model: Path
    trainer: str
    configuration: str
    folds: tuple[str, ...]
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)

    def describe(self) -> str:
        last = self.history[-1] if self.history else {}
        dice = f", last pseudo Dice {last['pseudo_dice']:.3f}" if "pseudo_dice" in last else ""
        seconds = sum(epoch.get("seconds", 0.0) for epoch in self.history)
        return (
            f"wrote {self.model}: nnU-Net {self.configuration} ({self.trainer}), folds {', '.join(self.folds)}, "
            f"{len(self.history)} epoch(s) in {seconds / 60:.1f} min{dice}"
        )


def nnunet_bin(python: str | os.PathLike | None = None) -> Path:
    """The folder holding nnunetv2's commands: beside ``python``, ``$SEGTRUTH_NNUNET_PYTHON``, or on PATH."""
    given = python or os.environ.get(PYTHON_VARIABLE)
    if given:
        folder = Path(given).expanduser().parent
        where = f"{given} (--nnunet-python)" if python else f"{given} (${PYTHON_VARIABLE})"
    else:
        found = shutil.which("nnUNetv2_train")
        if found is None:
            raise SegTruthError(
                "--backend nnunet needs nnunetv2: install it in an environment of its own (pip install nnunetv2; it "
                "needs PyPI's torch) and give that environment's python with --nnunet-python."
            )
        folder, where = Path(found).parent, found
    for command in ("nnUNetv2_plan_and_preprocess", "nnUNetv2_train"):
        if not (folder / command).is_file():
            raise SegTruthError(f"{where}: has no {command} beside it; is nnunetv2 installed in that environment?")
    return folder


def trainer_for(epochs: int | None) -> tuple[str, int]:
    """nnunetv2's trainer class for ``epochs`` (one of its fixed lengths) and the epochs it runs."""
    if epochs is None:
        return "nnUNetTrainer", DEFAULT_EPOCHS
    if epochs not in EPOCH_TRAINERS:
        raise SegTruthError(
            f"--epochs {epochs}: nnU-Net's trainers run {', '.join(map(str, EPOCH_TRAINERS))} or {DEFAULT_EPOCHS} "
            "epochs (nnUNetTrainer_Nepochs); pick one of those."
        )
    return ("nnUNetTrainer_1epoch" if epochs == 1 else f"nnUNetTrainer_{epochs}epochs"), epochs


class _LogReader:
    """nnU-Net's log lines -> progress (fold by fold, epoch by epoch) and the history."""

    def __init__(self, job_fraction: tuple[float, float], epochs: int, fold: str) -> None:
        self.low, self.high = job_fraction
        self.epochs, self.fold = epochs, fold
        self.history: list[dict[str, float]] = []
        self.job: ProcessJob | None = None

    def __call__(self, line: str) -> None:
        if (match := _EPOCH.search(line)) is not None:
            self.history.append({"epoch": int(match.group(1)) + 1})
        elif self.history and (match := _LOSS.search(line)) is not None:
            self.history[-1]["loss"] = float(match.group(1))
        elif self.history and (match := _DICE.search(line)) is not None:
            # "[0.5, 0.25]" or "[np.float32(0.5), ...]": the numbers with a decimal point (not float32's 32)
            values = [float(v) for v in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", match.group(1))]
            if values:
                self.history[-1]["pseudo_dice"] = sum(values) / len(values)
        elif self.history and (match := _TIME.search(line)) is not None:
            epoch = self.history[-1]
            epoch["seconds"] = float(match.group(1))
            if self.job is not None:
                done = epoch["epoch"] / self.epochs
                dice = f", pseudo Dice {epoch['pseudo_dice']:.3f}" if "pseudo_dice" in epoch else ""
                self.job.report(
                    self.low + (self.high - self.low) * done,
                    f"fold {self.fold}, epoch {epoch['epoch']}/{self.epochs}: loss {epoch.get('loss', float('nan')):.3f}"
                    f"{dice}",
                )


def _failure(step: str):
    def failure(code: int, lines: list[str]) -> SegTruthError:
        last = next((line.strip() for line in reversed(lines) if line.strip()), f"exit code {code}")
        return SegTruthError(f"nnU-Net's {step} failed: {last}")

    return failure


def _run(
    command: Sequence[str | Path],
    step: str,
    env: dict[str, str],
    cancel: CancelToken | None,
    reader: _LogReader | None = None,
    progress: ProgressCallback | None = None,
) -> ProcessJob:
    """One nnunetv2 command as a process job (a cancel ends it and all it started); ``reader`` follows its log."""
    job = ProcessJob(
        [str(c) for c in command], step, progress=progress, cancel=cancel, on_line=reader, failure=_failure(step),
        env=env,
    )  # fmt: skip
    if reader is not None:
        reader.job = job
    return job


def train_nnunet(
    dataset: str | Path,
    output: str | Path,
    *,
    epochs: int | None = None,
    configuration: str = "3d_fullres",
    folds: Sequence[str | int] = ("0",),
    device: str = "auto",
    python: str | os.PathLike | None = None,
    overwrite: bool = False,
    restart: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> NnunetTraining:
    """Plan, preprocess and train ``dataset`` (an nnU-Net raw folder) with nnunetv2; the results folder -> ``output``."""
    output, dataset = Path(output), Path(dataset).expanduser().resolve()
    check_output_folder(output, overwrite)
    if not (dataset / "dataset.json").is_file():
        raise SegTruthError(
            f"{dataset}: is not an nnU-Net raw dataset (no dataset.json); segtruth dataset nnunet writes one."
        )
    match = DATASET_NAME.match(dataset.name)
    if match is None:
        raise SegTruthError(f"{dataset}: nnU-Net needs the folder named DatasetNNN_Name (e.g. Dataset501_Chest).")
    trainer, planned = trainer_for(epochs)
    folds = tuple(str(f) for f in folds)
    bin_dir = nnunet_bin(python)
    target = "cuda" if device == "auto" and _has_cuda(bin_dir) else ("cpu" if device == "auto" else device)

    work = output.with_name(output.name + ".training")
    if restart:
        shutil.rmtree(work, ignore_errors=True)
    roots = {key: work / "nnunet" / sub for key, sub in
             (("nnUNet_raw", "raw"), ("nnUNet_preprocessed", "preprocessed"), ("nnUNet_results", "results"))}  # fmt: skip
    for folder in roots.values():
        folder.mkdir(parents=True, exist_ok=True)
    link = roots["nnUNet_raw"] / dataset.name
    if not link.exists():
        link.symlink_to(dataset, target_is_directory=True)  # read only: the person's dataset stays where it is
    env = {**os.environ, **{key: str(path) for key, path in roots.items()}, "PYTHONUNBUFFERED": "1"}
    env.setdefault("nnUNet_n_proc_DA", str(max(1, (os.cpu_count() or 2) - 1)))
    if target == "cpu":
        env["nnUNet_compile"] = "false"

    number = str(int(match.group(1)))
    plans = roots["nnUNet_preprocessed"] / dataset.name / "nnUNetPlans.json"
    if not plans.is_file():
        report(progress, 0.0, "nnU-Net: planning and preprocessing")
        command = [bin_dir / "nnUNetv2_plan_and_preprocess", "-d", number, "-c", configuration,
                   "-np", env["nnUNet_n_proc_DA"], "--verify_dataset_integrity"]  # fmt: skip
        _run(command, "planning and preprocessing", env, cancel).wait()
    results = roots["nnUNet_results"] / dataset.name / f"{trainer}__nnUNetPlans__{configuration}"
    history: list[dict[str, float]] = []
    for index, fold in enumerate(folds):
        share = (0.05 + 0.9 * index / len(folds), 0.05 + 0.9 * (index + 1) / len(folds))
        if (results / f"fold_{fold}" / "checkpoint_final.pth").is_file():
            continue  # finished before an interruption
        reader = _LogReader(share, planned, fold)
        command = [bin_dir / "nnUNetv2_train", number, configuration, fold, "-tr", trainer, "-device", target]
        if (results / f"fold_{fold}" / "checkpoint_latest.pth").is_file():
            command.append("--c")  # continue where the interrupted run left off
        _run(command, f"training of fold {fold}", env, cancel, reader, progress).wait()
        history = reader.history
    if not all((results / f"fold_{fold}" / "checkpoint_final.pth").is_file() for fold in folds):
        raise SegTruthError(f"{results}: nnU-Net finished without a checkpoint_final.pth for every fold.")
    with atomic_folder(output, overwrite) as folder:
        for name in ("dataset.json", "plans.json", "dataset_fingerprint.json"):
            if (results / name).is_file():
                shutil.copy2(results / name, folder / name)
        for fold in folds:
            (folder / f"fold_{fold}").mkdir()
            for name in ("checkpoint_final.pth", "debug.json", "progress.png"):
                if (results / f"fold_{fold}" / name).is_file():
                    shutil.copy2(results / f"fold_{fold}" / name, folder / f"fold_{fold}" / name)
    shutil.rmtree(work, ignore_errors=True)
    report(progress, 1.0, f"nnU-Net model written to {output}")
    return NnunetTraining(output, trainer, configuration, folds, planned, history)


def _has_cuda(bin_dir: Path) -> bool:
    """Whether nnunetv2's environment sees a CUDA device (its torch, not SegTruth's)."""
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    if not python.is_file():
        return False
    try:
        done = subprocess.run(
            [str(python), "-c", "import torch; print(torch.cuda.is_available())"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.stdout.strip() == "True"
