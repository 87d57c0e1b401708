"""Batch throughput: cases per minute through a recipe with a model, on 1 worker, 2 workers and Ray (local).

The recipe is the issue's shape: auto-segment with a model, clean up with Slicer's tools, export. The model is a
small fixed-weight 3D convolutional network (TorchScript, run by SegTruth's engine in 64^3 tiles), so every case costs real convolution work; the inputs are CT-like int16 volumes written as .nii.gz.
Each configuration starts from an empty output folder and is timed end to end (worker start-up, model load,
every case, the summary). One worker uses all the machine's cores; N workers use cores/N threads each; Ray gets
one CPU per case. Prints cases/min, the speed-up over one worker and the scaling efficiency (speed-up / N), and
whether every configuration wrote byte-identical labelmaps. Asserts nothing.

Run: .venv/bin/python benchmarks/bench_batch.py            # --cases 50 --size 128 --workers 2 --runs 1,N,ray
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from SegTruthLogic.batch import run_batch


class BlurThreshold(torch.nn.Module):
    """Two 3x3x3 convolution layers (1 -> 4 -> 2 channels) with fixed weights: 'smoothed intensity above 300'."""

    def __init__(self) -> None:
        super().__init__()
        self.smooth = torch.nn.Conv3d(1, 4, 3, padding=1)
        self.head = torch.nn.Conv3d(4, 2, 3, padding=1)
        with torch.no_grad():
            self.smooth.weight.fill_(1.0 / 27)
            self.smooth.bias.zero_()
            self.head.weight.zero_()
            self.head.weight[1, :, 1, 1, 1] = 0.25
            self.head.bias.copy_(torch.tensor([0.0, -300.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.smooth(x)))


def write_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(BlurThreshold().eval()).save(str(folder / "model.pt"))
    card = {
        "name": "blur-threshold",
        "format": "torchscript",
        "description": "benchmark model: smoothed intensity above 300",
        "input": {"channels": 1, "modality": "CT", "dimensions": 3},
        "preprocessing": {"orientation": "RAS", "axes": "ijk"},
        "inference": {"patch_size": [64, 64, 64], "overlap": 0.0, "output": "logits"},
        "labels": [{"name": "dense", "value": 1, "channel": 1, "color": "#f1d691"}],
        "weights": {"file": "model.pt"},
    }
    path = folder / "model.card.json"
    path.write_text(json.dumps(card, indent=2))
    return path


def write_cases(folder: Path, count: int, size: int) -> Path:
    """``count`` CT-like volumes: a body ellipse, a dense ball that moves from case to case, specks, noise."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    k, j, i = np.ogrid[:size, :size, :size]
    c = size / 2
    body = np.broadcast_to(((i - c) / (0.42 * size)) ** 2 + ((j - c) / (0.32 * size)) ** 2 <= 1, (size,) * 3)
    rows = ["case,image,segmentation"]
    for n in range(count):
        image = np.full((size,) * 3, -1000, np.int16)
        image[body] = 40
        shift = (n % 10 - 5) * size / 80
        image[((i - c - shift) ** 2 + (j - c) ** 2 + (k - c) ** 2) <= (0.15 * size) ** 2] = 700
        specks = rng.integers(0, size, (20, 3))
        image[specks[:, 0], specks[:, 1], specks[:, 2]] = 1500
        image += rng.normal(0, 20, image.shape).astype(np.int16)
        sitk.WriteImage(sitk.GetImageFromArray(image), str(folder / f"case{n:03d}.nii.gz"))
        rows.append(f"case{n:03d},case{n:03d}.nii.gz,")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


RECIPE = """
labels:
  - {{name: dense, value: 1, color: "#f1d691"}}
  - {{name: air, value: 2}}
steps:
  - segment: {{model: {card}}}
  - keep_largest_island: {{segment: dense}}
  - threshold: {{segment: air, low: -1100, high: -500, options: {{editable_area: outside_all, overwrite: none}}}}
  - remove_small_islands: {{segment: air, min_voxels: 100}}
outputs: [labels.nii.gz]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel runs (default 2)")
    parser.add_argument("--runs", default="1,N,ray", help="which runs, in order: 1, N (--workers), ray")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    root = Path(tempfile.mkdtemp(prefix="segtruth-bench-batch-"))
    try:
        start = time.perf_counter()
        manifest = write_cases(root / "data", args.cases, args.size)
        recipe = root / "recipe.yaml"
        recipe.write_text(RECIPE.format(card=write_model(root / "model")))
        print(f"{args.cases} cases of {args.size}^3 int16 .nii.gz written in {time.perf_counter() - start:.1f} s")
        print(f"machine: {cores} cores, load average {os.getloadavg()[0]:.1f} at the start")
        choices = {
            "1": ("local, 1 worker", dict(workers=1), 1),
            "N": (f"local, {args.workers} workers", dict(workers=args.workers), args.workers),
            "ray": (f"Ray local, {args.workers} CPUs", dict(engine="ray", workers=args.workers), args.workers),
        }
        runs = [choices[key.strip()] for key in args.runs.split(",")]
        results = []
        for name, options, parallel in runs:
            out = root / name.replace(" ", "_").replace(",", "")
            begin = time.perf_counter()
            report = run_batch(recipe, manifest, out, device="cpu", **options)
            wall = time.perf_counter() - begin
            assert len(report.done) == args.cases, report.failed
            seconds = [float(row["seconds"]) for row in report.rows]
            rate = 60.0 * args.cases / wall
            results.append((name, out, parallel, wall, rate, float(np.median(seconds))))
            print(f"  {name}: {wall:.1f} s ({rate:.1f} cases/min; median case {np.median(seconds):.2f} s)")
        base = next((r[4] for r in results if r[2] == 1), results[0][4] / results[0][2])  # one worker's rate
        print()
        print("| run | wall s | cases/min | speed-up | scaling efficiency | median s/case |")
        print("|---|---|---|---|---|---|")
        for name, _, parallel, wall, rate, median in results:
            speedup = rate / base
            print(f"| {name} | {wall:.1f} | {rate:.1f} | {speedup:.2f}x | {speedup / parallel:.0%} | {median:.2f} |")
        reference = results[0][1]
        same = all(
            (out / f"case{n:03d}" / "labels.nii.gz").read_bytes()
            == (reference / f"case{n:03d}" / "labels.nii.gz").read_bytes()
            for _, out, *_ in results[1:]
            for n in range(args.cases)
        )
        print(f"\nlabelmaps byte-identical across runs: {'yes' if same else 'NO'}")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
