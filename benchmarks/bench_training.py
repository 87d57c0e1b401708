"""Slice bootstrap on a real CT: label every Nth axial slice, train a 2D model on a CPU budget, segment the volume.

Dice on the unlabelled slices against `segtruth fill-between` (ITK's morphological contour interpolation) from
the same slices. The sample chest CT (slicerio's CTChest4, 128x128x34 at 3.05x3.05x10 mm) has only 34 slices,
so "every 32nd" would leave one lung slice; the default is every 8th (slices 2, 10, 18, 26, 34 -> 4 with lungs).

    .venv/bin/python benchmarks/bench_training.py [--every 8] [--minutes 4] [--filters 16] [--seed 0] [--one-label]
    .venv/bin/python benchmarks/bench_training.py --throughput [--device cpu|cuda]

Prints the Dice of both lungs on the unlabelled slices holding lung (and on those between the first and the last
labelled slice, where fill-between can reach), also after keeping each label's largest island, the training
seconds and epochs. ``--one-label`` trains both lungs
as one "lungs" label (mirroring makes the sides look alike) and scores that.

``--throughput``: batches per second of the default 2D and 3D plans on the chest CT (2 epochs of 10 batches after
one warm-up epoch), the patch voxels per second, and the plan each ran.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Testing"))

from training_support import TABLE, chest_lungs, dice, keep_slices, write_nnunet

from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.core.sample_data import ct_chest_paths
from SegTruthLogic.inference.catalog import load_model
from SegTruthLogic.inference.engine import predict
from SegTruthLogic.scene.session import Session
from SegTruthLogic.scene.volumes import load_volume
from SegTruthLogic.tools.fill_between import interpolate_labels
from SegTruthLogic.tools.islands import label_islands
from SegTruthLogic.training import train


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=int, default=8)
    parser.add_argument("--first", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one-label", action="store_true", help="both lungs as one label")
    parser.add_argument("--throughput", action="store_true", help="time the default 2D and 3D plans instead")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.throughput:
        throughput(args.device)
        return

    image, lungs = chest_lungs()
    labelled = [k for k in range(args.first, lungs.shape[0], args.every)]
    if args.one_label:
        lungs = (lungs > 0).astype(lungs.dtype)
    sparse = keep_slices(lungs, labelled)
    with_lung = [k for k in labelled if lungs[k].any()]
    unlabelled = [k for k in range(lungs.shape[0]) if k not in labelled and lungs[k].any()]
    between = [k for k in unlabelled if min(with_lung) < k < max(with_lung)]
    print(f"labelled axial slices {labelled} ({len(with_lung)} with lung); {len(unlabelled)} unlabelled lung slices")

    start = time.perf_counter()
    filled = interpolate_labels(sparse, image.GetSpacing(), axis=2)
    fill_seconds = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as scratch:
        table = LUNGS if args.one_label else TABLE
        labels = {"background": 0, **{label["name"]: label["value"] for label in table["labels"]}}
        folder = write_nnunet(Path(scratch) / "Dataset001_Lungs", [("chest", image, sparse)], labels, table=table)
        start = time.perf_counter()
        result = train(
            folder, Path(scratch) / "model", minutes=args.minutes, dimensions=2, sparse=True, device="cpu",
            base_filters=args.filters, iterations=args.iterations, seed=args.seed,
        )  # fmt: skip
        train_seconds = time.perf_counter() - start
        model = load_model(Path(scratch) / "model")
        start = time.perf_counter()
        array = sitk.GetArrayFromImage(image).astype(np.float32)
        predicted = predict(model, [array], Grid.from_sitk(image), device="cpu").labels
        predict_seconds = time.perf_counter() - start

    def score(labels: np.ndarray, slices: list[int]) -> str:
        both = dice(labels[slices] > 0, lungs[slices] > 0)
        if args.one_label:
            return f"{both:.3f}"
        per = [dice(labels[slices] == v, lungs[slices] == v) for v in (1, 2)]
        return f"{both:.3f} (right {per[0]:.3f}, left {per[1]:.3f})"

    print(f"2D model: {len(result.history)} epochs x {args.iterations} batches, {train_seconds:.0f} s training, "
          f"{predict_seconds:.1f} s segmenting; best validation Dice {result.best_dice:.3f} at epoch {result.best_epoch}")  # fmt: skip
    print(f"fill-between: {fill_seconds:.1f} s")
    print(f"Dice, all {len(unlabelled)} unlabelled lung slices: model {score(predicted, unlabelled)}, "
          f"fill-between {score(filled, unlabelled)}")  # fmt: skip
    print(f"Dice, the {len(between)} between labelled slices: model {score(predicted, between)}, "
          f"fill-between {score(filled, between)}")  # fmt: skip
    kept = largest_islands(predicted)
    print(f"model keeping each label's largest island (SegTruth's Islands): all {len(unlabelled)} "
          f"{score(kept, unlabelled)}, the {len(between)} between {score(kept, between)}")  # fmt: skip


def largest_islands(labels: np.ndarray) -> np.ndarray:
    """Each label's largest island as SegTruth's Islands keeps it (face-connected, on the CT's volume node)."""
    session = Session.new_headless()
    volume = load_volume(session, ct_chest_paths()[0])
    out = np.zeros_like(labels)
    for value in np.unique(labels[labels > 0]):
        out[label_islands(labels == value, volume) == 1] = value  # island 1 is the largest
    return out


LUNGS = {"labels": [{"name": "lungs", "value": 1, "color": "#c9d4e8"}]}


def throughput(device: str) -> None:
    """Seconds per batch of the default plans (2D and 3D) on the chest CT, after a warm-up epoch."""
    import torch

    image, lungs = chest_lungs()
    print(f"machine: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, device {device}, "
          f"load average {os.getloadavg()[0]:.1f} at start")  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        folder = write_nnunet(Path(scratch) / "Dataset001_Lungs", [("chest", image, lungs)])
        for dimensions in (2, 3):
            result = train(folder, Path(scratch) / f"model{dimensions}", epochs=3, iterations=10,
                           dimensions=dimensions, device=device, seed=0)  # fmt: skip
            timed = [epoch["seconds"] for epoch in result.history[1:]]  # the first epoch warms up
            per_batch = sum(timed) / (10 * len(timed))
            plan = result.plan
            voxels = int(np.prod(plan.patch)) * plan.batch_size
            print(f"{dimensions}D: patch {'x'.join(map(str, plan.patch))}, batch {plan.batch_size}, "
                  f"filters {plan.filters[0]}-{plan.filters[-1]}: {per_batch:.3f} s per batch ({1 / per_batch:.2f} batches/s, "
                  f"{voxels / per_batch / 1e6:.2f} M patch voxels/s; validation included)")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
