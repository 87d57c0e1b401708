"""What to label next: unlabelled cases ordered by the model's uncertainty, labelled ones by its disagreement.

Each case runs once through the model as a ``MirrorPair`` (the network on the image and on its mirror image, in
one pass over the tiles), which gives two measures of doubt in [0, 1]:

- entropy: the mean normalised entropy of the pair's mean probabilities, over the voxels the model does not
  call background with 90 % confidence (the whole image would drown the structures in confident background);
- disagreement: 1 - the mean Dice, over the labels either answer holds, of the two answers' label maps.

Unlabelled cases come first, most uncertain first (score: the mean of the two). Labelled cases follow, those
whose labels agree least with the model first (score: 1 - mean Dice of the model's answer against the labels,
on the annotated axial slices only with ``sparse``): they are the likely label errors to review before the next
training, as in "select the best masks".
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..core.errors import Cancelled, SegTruthError
from ..core.geometry import move_array
from ..core.labels import LabelTable
from ..core.metrics import dice
from ..core.progress import CancelToken, ProgressCallback, report
from ..dataset.case_sources import find_cases
from ..dataset.cases import CaseVoxels, read_case
from ..dataset.manifest import CaseEntry
from ..inference.catalog import load_model
from ..inference.engine import blend, output_labels
from ..inference.model import LoadedModel
from ..inference.preprocessing import oriented_grid
from ..scene.segmentation_io import names_its_segments
from ..scene.session import Session
from .data import ORIENTATION, annotated_slices

FOREGROUND_DOUBT = 0.1  # a voxel counts for the entropy when the model gives it at least this chance of a label


@dataclass
class CaseRank:
    """One case's scores; ``error`` says why a case could not be scored (it is listed last)."""

    case: str
    labelled: bool
    where: str = ""
    score: float = math.nan
    entropy: float = math.nan
    disagreement: float = math.nan
    label_dice: dict[str, float] = field(default_factory=dict)  # labelled cases: model against labels, per label
    predicted_ml: float = 0.0
    error: str | None = None

    @property
    def kind(self) -> str:
        if self.error is not None:
            return "failed"
        return "labelled" if self.labelled else "unlabelled"


@dataclass
class Ranking:
    """Cases in the order to look at them: unlabelled by uncertainty, labelled by disagreement, failed last."""

    cases: list[CaseRank]
    model: str

    @property
    def unlabelled(self) -> list[CaseRank]:
        return [c for c in self.cases if c.kind == "unlabelled"]

    @property
    def labelled(self) -> list[CaseRank]:
        return [c for c in self.cases if c.kind == "labelled"]

    @property
    def failed(self) -> list[CaseRank]:
        return [c for c in self.cases if c.kind == "failed"]

    def label_names(self) -> list[str]:
        return sorted({name for case in self.cases for name in case.label_dice})

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        names = self.label_names()
        writer.writerow(["rank", "case", "kind", "score", "entropy", "disagreement", "predicted_ml"]
                        + [f"dice {name}" for name in names] + ["error"])  # fmt: skip
        for number, case in enumerate(self.cases, 1):
            writer.writerow(
                [number, case.case, case.kind, _number(case.score), _number(case.entropy),
                 _number(case.disagreement), _number(case.predicted_ml, 1)]
                + [_number(case.label_dice.get(name, math.nan)) for name in names] + [case.error or ""]
            )  # fmt: skip
        return out.getvalue()

    def format(self) -> str:
        """The ranking as a table for a terminal."""
        lines = [f"{'#':>3}  {'case':<24} {'kind':<10} {'score':>6} {'entropy':>8} {'mirror':>7} {'dice':>6}"]
        for number, case in enumerate(self.cases, 1):
            if case.error is not None:
                lines.append(f"{number:>3}  {case.case:<24} {'failed':<10} {case.error}")
                continue
            mean_dice = _mean(case.label_dice.values()) if case.labelled else math.nan
            lines.append(
                f"{number:>3}  {case.case:<24} {case.kind:<10} {_number(case.score):>6} {_number(case.entropy):>8} "
                f"{_number(case.disagreement):>7} {_number(mean_dice):>6}"
            )
        return "\n".join(lines)


def _number(value: float, digits: int = 4) -> str:
    return "" if math.isnan(value) else f"{value:.{digits}f}"


def _mean(values) -> float:
    values = list(values)
    return float(np.mean(values)) if values else math.nan


def _probabilities(model: LoadedModel, output: torch.Tensor) -> torch.Tensor:
    """Per-channel probabilities of a blended output; one channel or sigmoid outputs are independent classes."""
    kind = model.card.inference.output
    if kind == "probabilities":
        return output.clamp(0, 1)
    if kind == "sigmoid" or output.shape[0] == 1:
        return torch.sigmoid(output)
    return torch.softmax(output, dim=0)


def _entropy(model: LoadedModel, probabilities: torch.Tensor) -> float:
    """Mean normalised entropy over the voxels the model gives at least ``FOREGROUND_DOUBT`` of a label."""
    p = probabilities.clamp(1e-7, 1 - 1e-7)
    independent = model.card.inference.output == "sigmoid" or p.shape[0] == 1
    if independent:  # each channel a yes/no question
        per_channel = -(p * p.log() + (1 - p) * (1 - p).log()) / math.log(2)
        entropy, doubt = per_channel.max(dim=0).values, p.max(dim=0).values >= FOREGROUND_DOUBT
    else:
        entropy = -(p * p.log()).sum(dim=0) / math.log(p.shape[0])
        doubt = p[0] <= 1 - FOREGROUND_DOUBT
    if not bool(doubt.any()):
        return 0.0
    return float(entropy[doubt].mean())


def _label_dice(a: np.ndarray, b: np.ndarray, names: dict[int, str]) -> dict[str, float]:
    """Dice per label value present in either map."""
    present = sorted((set(np.unique(a)) | set(np.unique(b))) - {0})
    return {names.get(int(v), str(int(v))): dice(a == v, b == v) for v in present}


def score_case(
    model: LoadedModel,
    channels: Sequence[np.ndarray],
    grid,
    labels: np.ndarray | None = None,
    sparse: bool = False,
    device: str = "auto",
    cancel: CancelToken | None = None,
    case: str = "",
) -> CaseRank:
    """Score one case given as (k, j, i) arrays on ``grid`` (the image file's grid), with its labels if it has them."""
    card = model.card
    mirrored = bool(card.inference.mirror_axes)
    blended = blend(model, channels, grid, device, cancel=cancel, mirror_pair=mirrored)
    output = blended.output.float()
    count = output.shape[0] // 2 if mirrored else output.shape[0]
    plain, other = output[:count], output[count:] if mirrored else None
    probabilities = _probabilities(model, plain)
    if other is not None:
        probabilities = (probabilities + _probabilities(model, other)) / 2
    entropy = _entropy(model, probabilities)
    names = {label.value: label.name for label in card.labels}
    answer = output_labels(model, plain if other is None else (plain + other) / 2, blended.prepared)
    disagreement = math.nan
    if other is not None:
        first, second = output_labels(model, plain, blended.prepared), output_labels(model, other, blended.prepared)
        disagreement = 1.0 - _mean(_label_dice(first, second, names).values() or [1.0])
    volume_ml = float(np.count_nonzero(answer)) * float(np.prod(grid.spacing)) / 1000.0
    rank = CaseRank(case, labels is not None, entropy=entropy, disagreement=disagreement, predicted_ml=volume_ml)
    if labels is None:
        rank.score = _mean([v for v in (entropy, disagreement) if not math.isnan(v)])
        return rank
    layout = oriented_grid(grid, ORIENTATION)
    drawn, predicted = move_array(labels, grid, layout), move_array(answer.astype(labels.dtype), grid, layout)
    kept = annotated_slices(drawn, sparse)
    if not kept.any():
        raise SegTruthError("its labels hold no labelled voxel; label it or list it without a segmentation.")
    rank.label_dice = _label_dice(drawn[kept], predicted[kept], names)
    rank.score = 1.0 - _mean(rank.label_dice.values() or [1.0])
    return rank


def in_model_values(voxels: CaseVoxels, model_labels: LabelTable) -> np.ndarray:
    """A labelled case's label array in the model's values, matched by name; segments the model lacks -> 0."""
    assert voxels.labels is not None and voxels.table is not None
    out = np.zeros_like(voxels.labels)
    for label in model_labels:
        own = voxels.table.by_name(label.name)
        if own is not None:
            out[voxels.labels == own.value] = label.value
    if not out.any() and voxels.labels.any():
        raise SegTruthError(
            f"its segments ({', '.join(lb.name for lb in voxels.table)}) hold none of the model's labels "
            f"({', '.join(lb.name for lb in model_labels)})."
        )
    return out


def rank_cases(
    cases: str | Path | Sequence[CaseEntry],
    model: str | Path | LoadedModel,
    *,
    device: str = "auto",
    sparse: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Ranking:
    """Score every case (a folder, manifest, glob or list of entries) with ``model``; the ranking.

    Labelled cases are compared by label name where their files name segments: the segments of the model's labels
    count, any others (the ribs of a case ranked by a lungs model) are background to the model; a labelmap image's
    values are the model's.
    A case that cannot be read or scored is listed last with its error; if none can be scored, the first error
    is raised.
    """
    entries = list(cases) if not isinstance(cases, (str, Path)) else find_cases(cases)
    if not entries:
        raise SegTruthError(f"{cases}: lists no case to rank.")
    loaded = load_model(model, cancel=cancel)
    session = Session.new_headless()
    ranked: list[CaseRank] = []
    for number, entry in enumerate(entries):
        if cancel is not None:
            cancel.raise_if_cancelled("ranking")
        report(progress, number / len(entries), f"scoring case {entry.case} ({number + 1}/{len(entries)})")
        try:
            if entry.problem is not None:
                raise SegTruthError(f"{entry.describe()}: {entry.problem}")
            by_name = entry.segmentation is not None and names_its_segments(entry.segmentation)
            voxels = read_case(session, entry, None if by_name else loaded.card.labels)
            labels = in_model_values(voxels, loaded.card.labels) if by_name else voxels.labels
            rank = score_case(loaded, voxels.channels, voxels.grid, labels, sparse, device, cancel, entry.case)
        except Cancelled:
            raise
        except SegTruthError as error:
            text = str(error)
            rank = CaseRank(
                entry.case, entry.labelled, error=text if text.startswith("Case ") else f"{entry.describe()}: {text}"
            )
        rank.where = entry.where
        ranked.append(rank)
    report(progress, 1.0, "ranked")
    if not any(case.error is None for case in ranked):
        raise SegTruthError(ranked[0].error or "no case could be scored.")
    order = {"unlabelled": 0, "labelled": 1, "failed": 2}
    ranked.sort(key=lambda c: (order[c.kind], -c.score if not math.isnan(c.score) else 0.0))
    return Ranking(ranked, loaded.card.name)
