"""The built-in trainer: a planned DynUNet learns a dataset, and becomes a model folder ``segment`` loads.

    from SegTruthLogic.training import train
    result = train("Dataset001_Lungs", "lungs-model", minutes=10)     # or epochs=..., seed=..., init=...

Training is deterministic for a seed: the network starts from the seed, and each epoch's patches come from a
generator seeded by the seed and the epoch number. Each epoch ends with a checkpoint (``OUTPUT.training/
checkpoint.pt``, written atomically); running the same command again after an interruption resumes from it and
ends with the same weights as an uninterrupted run. A time budget stops at the end of the budget, dropping the
unfinished epoch, and the model keeps the epoch with the best validation Dice. The model folder is written
whole or not at all (a cancel or an error leaves none), and the checkpoint folder is removed once it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional

from ..core.atomic import atomic_folder, check_output_folder
from ..core.errors import SegTruthError
from ..core.labels import LabelTable
from ..core.progress import CancelToken, ProgressCallback, report
from ..core.textfile import parse_json, read_text
from ..inference.card import card_from_dict
from ..inference.checkpoint import load_weights
from ..inference.engine import resolve_device
from ..inference.formats.monai_network import build_monai_network, fit_weights, load_state_dict
from ..inference.preprocessing import prepare
from ..inference.resampling import resize_to
from .augment import Sampler, TrainingVolume
from .data import Dataset, annotated_slices, read_dataset
from .plan import ANISOTROPY, Plan, card_dict, make_plan
from .record import TRAINING_RECORD

CHECKPOINT = "checkpoint.pt"
FOREGROUND_SAMPLE = 20_000  # labelled voxels kept per case to centre foreground patches on
HOLD_OUT_FROM = 5  # with fewer cases the best epoch is chosen on the training cases themselves


@dataclass
class Settings:
    """How long and how to train; part of what a checkpoint must match to be resumed."""

    epochs: int | None = None
    minutes: float | None = None
    iterations: int = 50  # batches per epoch
    seed: int = 0
    learning_rate: float = 3e-3
    weight_decay: float = 3e-5
    validation_patches: int = 16

    def signature(self) -> dict[str, Any]:
        """What changes the weights (the time budget does not; it only says where to stop)."""
        data = asdict(self)
        data.pop("minutes")
        return data


@dataclass
class TrainingResult:
    """What came out: the model folder, its plan, and each epoch's loss and validation Dice."""

    model: Path
    plan: Plan
    history: list[dict[str, float]]
    best_epoch: int
    best_dice: float
    seconds: float
    stopped: str  # "epochs", "time" or "converged"
    resumed_from: int = 0
    notes: list[str] = field(default_factory=list)


# -- preparing the cases ------------------------------------------------------------------------------------------
def prepare_volumes(dataset: Dataset, plan: Plan, card, cancel: CancelToken | None = None) -> list[TrainingVolume]:
    """Each case through the inference engine's own preprocessing (so training and inference see the same input)."""
    lookup = {label.value: index for index, label in enumerate(sorted(dataset.table, key=lambda lb: lb.value), 1)}
    volumes = []
    for number, case in enumerate(dataset.cases):
        if cancel is not None:
            cancel.raise_if_cancelled("training")
        prepared = prepare(card, case.channels, case.grid)
        shape = tuple(prepared.image.shape[1:])
        values = case.laid_out_labels()
        classes = np.zeros(values.shape, np.int64)
        for value, index in lookup.items():
            classes[values == value] = index
        known = np.broadcast_to(annotated_slices(values, plan.sparse)[:, None, None], values.shape)
        stacked = torch.from_numpy(np.stack([classes, known]).astype(np.float32))
        stacked = resize_to(stacked, shape, "nearest")
        labels, known_t = stacked[0].to(torch.int64), stacked[1] > 0.5
        generator = np.random.default_rng(number)
        points = np.argwhere((labels > 0).numpy() & known_t.numpy())
        if len(points) > FOREGROUND_SAMPLE:
            points = points[np.sort(generator.choice(len(points), FOREGROUND_SAMPLE, replace=False))]
        slices = np.nonzero(known_t.numpy().reshape(shape[0], -1).any(axis=1))[0]
        volumes.append(TrainingVolume(case.case, prepared.image.contiguous(), labels, known_t, points, slices))
    return volumes


def _split(volumes: list[TrainingVolume], seed: int, notes: list[str]) -> tuple[list, list]:
    if len(volumes) < HOLD_OUT_FROM:
        notes.append(f"{len(volumes)} case(s): the best epoch is chosen on the training cases (no case held out)")
        return volumes, volumes
    order = np.random.default_rng(seed).permutation(len(volumes))
    held = max(1, round(0.2 * len(volumes)))
    validation = [volumes[i] for i in sorted(order[:held])]
    training = [volumes[i] for i in sorted(order[held:])]
    notes.append(f"validation on {held} held-out case(s): {', '.join(v.case for v in validation)}")
    return training, validation


# -- loss and metric -----------------------------------------------------------------------------------------------
def dice_ce_loss(logits: torch.Tensor, target: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Cross-entropy plus soft Dice (over the batch, foreground classes), both over known voxels only."""
    mask = known.to(logits.dtype)
    count = torch.clamp(mask.sum(), min=1.0)
    ce = (functional.cross_entropy(logits, target, reduction="none") * mask).sum() / count
    probabilities = torch.softmax(logits, dim=1)
    onehot = functional.one_hot(target, logits.shape[1]).movedim(-1, 1).to(logits.dtype)
    weight = mask[:, None]
    axes = (0, *range(2, logits.ndim))
    intersection = (probabilities * onehot * weight).sum(axes)
    total = (probabilities * weight).sum(axes) + (onehot * weight).sum(axes)
    dice = (2 * intersection + 1e-5) / (total + 1e-5)
    return ce + (1 - dice[1:].mean())


def hard_dice(prediction: torch.Tensor, target: torch.Tensor, known: torch.Tensor, classes: int) -> float:
    """Mean Dice of the foreground classes present in target or prediction (known voxels only)."""
    scores = []
    for c in range(1, classes):
        p, t = (prediction == c) & known, (target == c) & known
        total = int(p.sum() + t.sum())
        if total:
            scores.append(2 * int((p & t).sum()) / total)
    return float(np.mean(scores)) if scores else 0.0


# -- checkpoints ------------------------------------------------------------------------------------------------------
def _digest(dataset: Dataset, plan: Plan, settings: Settings, init: str | None) -> str:
    digest = hashlib.sha256()
    digest.update(plan.to_json().encode())
    digest.update(json.dumps(settings.signature(), sort_keys=True).encode())
    digest.update(str(init or "").encode())
    for case in dataset.cases:
        digest.update(case.case.encode())
        digest.update(np.ascontiguousarray(case.labels).tobytes())
        for channel in case.channels:
            digest.update(np.ascontiguousarray(channel).tobytes())
    return digest.hexdigest()


def _save_checkpoint(folder: Path, state: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{CHECKPOINT}.", suffix=".part", dir=folder)
    os.close(handle)
    try:
        torch.save(state, name)
        os.replace(name, folder / CHECKPOINT)
    finally:
        if os.path.exists(name):
            os.unlink(name)


def _load_checkpoint(folder: Path, digest: str, restart: bool) -> dict[str, Any] | None:
    path = folder / CHECKPOINT
    if not path.is_file() or restart:
        return None
    state = load_weights(path, "resuming training")
    if not isinstance(state, dict) or state.get("digest") != digest:
        raise SegTruthError(
            f"{path}: is the checkpoint of another training (other data, plan or settings); give --restart to start "
            "afresh, or another output."
        )
    return state


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


# -- the trainer -------------------------------------------------------------------------------------------------------
def _init_plan(init: str | Path, dataset: Dataset) -> tuple[Plan, dict[str, torch.Tensor]]:
    """Fine-tuning: the earlier model's plan and weights; its labels and channels must be the dataset's."""
    folder = Path(init)
    record = folder / TRAINING_RECORD
    if not record.is_file():
        raise SegTruthError(f"{folder}: is not a model segtruth train wrote (no {TRAINING_RECORD}); --init needs one.")
    data = parse_json(read_text(record, "training record"), str(record))
    plan = Plan.from_dict(data["plan"])
    table = LabelTable.from_json(json.dumps({"labels": data["labels"]}), str(record))
    if [(lb.name, lb.value) for lb in table] != [
        (lb.name, lb.value) for lb in sorted(dataset.table, key=lambda x: x.value)
    ]:
        raise SegTruthError(
            f"{folder}: was trained on labels {[lb.name for lb in table]}, the dataset has "
            f"{[lb.name for lb in dataset.table]}; --init needs the same labels."
        )
    if plan.channels != len(dataset.channel_names):
        raise SegTruthError(
            f"{folder}: takes {plan.channels} channel(s), the dataset's cases have {len(dataset.channel_names)}."
        )
    return plan, load_state_dict(folder / "model.pt", str(folder))


def train(
    dataset: str | Path | Dataset,
    output: str | Path,
    *,
    epochs: int | None = None,
    minutes: float | None = None,
    device: str = "auto",
    init: str | Path | None = None,
    seed: int = 0,
    dimensions: int | None = None,
    sparse: bool = False,
    labels: Sequence[str] | None = None,
    table: LabelTable | None = None,
    channel_names: Sequence[str] | None = None,
    name: str | None = None,
    iterations: int = 50,
    base_filters: int | None = None,
    patch_budget: int | None = None,
    batch_size: int | None = None,
    learning_rate: float = 3e-3,
    overwrite: bool = False,
    restart: bool = False,
    work: str | Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> TrainingResult:
    """Train a model on ``dataset`` and write it to the folder ``output``; returns what happened.

    ``dataset``: an nnU-Net raw folder, a cases folder or manifest, or a read :class:`~.data.Dataset`.
    ``epochs``/``minutes``: stop after that many epochs or that much time (whichever first; 10 minutes when
    neither is given). ``dimensions``: 2 trains on axial slices (2D cases always train 2D). ``sparse``: only
    slices holding a label are annotated (see :mod:`.data`). ``init``: a model this trainer wrote, to fine-tune.
    ``labels``: keep only these label names. ``work``: the checkpoint folder (default ``OUTPUT.training``).
    """
    start = time.monotonic()
    output = Path(output)
    check_output_folder(output, overwrite)
    if epochs is not None and epochs < 1:
        raise SegTruthError(f"--epochs {epochs}: train for at least one epoch.")
    if minutes is not None and minutes <= 0:
        raise SegTruthError(f"--minutes {minutes:g}: give a positive time budget.")
    if iterations < 1:
        raise SegTruthError(f"{iterations} iterations per epoch: give at least one.")
    if minutes is None and epochs is None:
        minutes = 10.0
    target = resolve_device(device)
    if not isinstance(dataset, Dataset):
        dataset = read_dataset(dataset, table, channel_names, labels, _scaled(progress, 0.0, 0.02), cancel)
    if dimensions == 3 and dataset.dimensions == 2:
        raise SegTruthError(f"{dataset.source}: its cases are 2D (one slice thick); they cannot train a 3D model.")
    notes: list[str] = []
    init_state = None
    if init is not None:
        plan, init_state = _init_plan(init, dataset)
        plan.sparse = sparse
    else:
        filters = base_filters or (32 if target.type == "cuda" else 16)
        plan = make_plan(dataset, dimensions, filters, patch_budget, batch_size, sparse)
    if dimensions is not None and plan.dimensions != dimensions:
        raise SegTruthError(f"{init}: is a {plan.dimensions}D model; --init cannot fine-tune it as {dimensions}D.")
    notes.extend(plan.notes)
    model_name = name or output.name
    card_data = card_dict(plan, dataset.table, dataset.channel_names, model_name, f"Trained on {dataset.source.name}.")
    card = card_from_dict(card_data, f"model card of {output}")
    volumes = prepare_volumes(dataset, plan, card, cancel)
    training, validation = _split(volumes, seed, notes)
    anisotropic = plan.dimensions == 3 and max(plan.spacing) > ANISOTROPY * min(plan.spacing)
    sampler = Sampler(training, plan.patch, plan.dimensions, anisotropic, augment=True, mirror_axes=plan.mirrors)
    settings = Settings(epochs, minutes, iterations, seed, learning_rate, validation_patches=16)
    held = Sampler(validation, plan.patch, plan.dimensions, anisotropic, augment=False)
    val_batch = held.draw(
        torch.Generator().manual_seed(seed + 7919), settings.validation_patches, foreground_first=True
    )

    torch.manual_seed(seed)
    network = build_monai_network(card.network, model_name)
    if init_state is not None:
        fit_weights(network, init_state, Path(init) / "model.pt")  # type: ignore[arg-type]
    network.to(target)
    optimizer = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=settings.weight_decay)
    work_folder = Path(work) if work else output.with_name(output.name + ".training")
    digest = _digest(dataset, plan, settings, str(init) if init else None)
    state = _load_checkpoint(work_folder, digest, restart)
    history: list[dict[str, float]] = []
    best_dice, best_epoch, best_state = -1.0, 0, None
    planned = epochs
    epoch = 0
    if state is not None:
        network.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, history = int(state["epoch"]), list(state["history"])
        best_dice, best_epoch, best_state = float(state["best_dice"]), int(state["best_epoch"]), state["best_model"]
        planned = state["planned"]
        notes.append(f"resumed after epoch {epoch}")
    resumed_from = epoch
    budget = minutes * 60.0 if minutes is not None else math.inf
    amp = target.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if amp else None
    stopped = "epochs"
    train_start = time.monotonic()
    epoch_seconds: list[float] = []
    while planned is None or epoch < planned:
        epoch_start = time.monotonic()
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        fraction = epoch / planned if planned else 0.0
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * (1 - min(fraction, 0.999)) ** 0.9
        network.train()
        losses = []
        out_of_time = False
        for _ in range(iterations):
            if cancel is not None:
                cancel.raise_if_cancelled("training")
            if epoch_seconds and time.monotonic() - train_start > budget:
                out_of_time = True
                break
            images, target_labels, known = sampler.draw(generator, plan.batch_size)
            images, target_labels, known = images.to(target), target_labels.to(target), known.to(target)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
                logits = network(images)
                loss = dice_ce_loss(logits.float(), target_labels, known)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(network.parameters(), 12.0)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(network.parameters(), 12.0)
                optimizer.step()
            losses.append(float(loss.detach()))
        if out_of_time:
            stopped = "time"
            break
        dice = _validate(network, val_batch, plan.classes, target)
        epoch += 1
        epoch_seconds.append(time.monotonic() - epoch_start)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val_dice": dice,
                        "seconds": epoch_seconds[-1]})  # fmt: skip
        if dice > best_dice:
            best_dice, best_epoch = dice, epoch
            best_state = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
        if planned is None:  # a time budget alone: the schedule spans the epochs the first one says will fit
            planned = max(1, int(budget // epoch_seconds[0]))
        _save_checkpoint(
            work_folder,
            {"digest": digest, "epoch": epoch, "model": network.state_dict(), "optimizer": optimizer.state_dict(),
             "history": history, "best_dice": best_dice, "best_epoch": best_epoch, "best_model": best_state,
             "planned": planned},
        )  # fmt: skip
        elapsed = time.monotonic() - train_start
        left = min((planned - epoch) * float(np.mean(epoch_seconds)), max(budget - elapsed, 0.0))
        done = max(epoch / planned, elapsed / budget if budget < math.inf else 0.0)
        report(
            _scaled(progress, 0.05, 0.98),
            min(done, 1.0),
            f"epoch {epoch}/{planned}: loss {history[-1]['loss']:.3f}, val Dice {dice:.3f}, ETA {_clock(left)}",
        )
        if time.monotonic() - train_start > budget:
            stopped = "time"
            break
    assert best_state is not None
    record = {
        "plan": asdict(plan),
        "labels": [label.as_dict() for label in sorted(dataset.table, key=lambda lb: lb.value)],
        "settings": asdict(settings),
        "dataset": str(dataset.source),
        "cases": [case.case for case in dataset.cases],
        "history": history,
        "best_epoch": best_epoch,
        "best_val_dice": best_dice,
        "stopped": stopped,
        "device": target.type,
        "notes": notes,
    }
    with atomic_folder(output, overwrite) as folder:
        torch.save(best_state, folder / "model.pt")
        (folder / "model.card.json").write_text(json.dumps(card_data, indent=2) + "\n", encoding="utf-8")
        (folder / "labels.json").write_text(dataset.table.to_json(), encoding="utf-8")
        (folder / TRAINING_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    _remove_work(work_folder)
    report(progress, 1.0, f"model written to {output} (best val Dice {best_dice:.3f} at epoch {best_epoch})")
    return TrainingResult(
        output, plan, history, best_epoch, best_dice, time.monotonic() - start, stopped, resumed_from, notes
    )


def _validate(network: torch.nn.Module, batch, classes: int, device: torch.device) -> float:
    images, target_labels, known = batch
    network.eval()
    with torch.inference_mode():
        predicted = torch.cat([network(images[n : n + 4].to(device)).argmax(1).cpu() for n in range(0, len(images), 4)])
    return hard_dice(predicted, target_labels, known, classes)


def _remove_work(folder: Path) -> None:
    """The checkpoint folder this trainer made, once the model is written (only what it wrote there)."""
    path = folder / CHECKPOINT
    if path.is_file():
        path.unlink()
    with contextlib.suppress(OSError):  # something else is in it: leave it
        folder.rmdir()


def _scaled(progress: ProgressCallback | None, low: float, high: float) -> ProgressCallback | None:
    if progress is None:
        return None
    return lambda fraction, message: progress(low + (high - low) * fraction, message)
