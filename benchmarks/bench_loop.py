"""The learn-as-you-label loop over a cohort: strokes per case to Dice 0.90 with the model trained on the cases so
far pre-segmenting each new case, against grow from seeds alone.

The cohort: slicerio's chest CT (128x128x34, its 7-segment reference) as case 1, and deformed copies of it as
cases 2..N (a smooth random displacement of up to ``--warp-mm``, a rotation about the long axis of up to 6
degrees, a scaling of up to 6 %, an intensity gain and offset, and noise; images linear, references nearest
neighbour, on the CT's own grid). Deformed copies stand in for a real cohort, which no registry package ships
with this reference: the model meets the same anatomy moved, not new patients.

The annotator is benchmarks/bench_annotator.py's: one scribble per structure, then one correction at a time on the
target (the brush ball at the deepest point of the largest error, kept inside it).

- ``grow alone``: every case is grown from seeds (8 scribbles, then seed corrections), as bench_annotator does.
- ``with the model``: case 1 as grow alone; each later case is pre-segmented by the model trained so far (0
  strokes), then corrected with paint and erase strokes (the same ball); the corrected mask is what the
  annotator saves. After each case the model is trained again on every saved mask, fine-tuning the previous
  model (``--init``) for ``--minutes``.

Prints, case by case, the strokes of both ways and the model's Dice before correction; asserts nothing.

    .venv/bin/python benchmarks/bench_loop.py [--cases 8] [--minutes 3] [--dimensions 2] [--max-strokes 60]
        [--target "thoracic vertebral column"]

The default model is 2D: with 10 mm slices a 3D patch on 2 CPU cores costs about 100 s an epoch, so a few minutes
after each case buy one epoch; a 2D model sees each whole axial slice.
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
from bench_annotator import GOAL, correction, dice, seeded
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Testing"))

from training_support import write_nnunet

from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.core.sample_data import ct_chest_paths
from SegTruthLogic.dataset.cases import read_case
from SegTruthLogic.dataset.manifest import CaseEntry
from SegTruthLogic.inference.catalog import load_model
from SegTruthLogic.inference.engine import predict
from SegTruthLogic.scene.session import Session
from SegTruthLogic.training import train


def reference_case() -> tuple[sitk.Image, np.ndarray, list[str]]:
    """The chest CT as ITK reads it, its reference as one label map (1..7 in segment order), and the names."""
    image_path, segmentation_path = ct_chest_paths()
    case = read_case(Session.new_headless(), CaseEntry("chest", (image_path,), segmentation_path))
    image = sitk.ReadImage(str(image_path))
    names = [label.name for label in case.table.labels]
    return image, case.labels.astype(np.uint8), names


def deformed(image: sitk.Image, labels: np.ndarray, seed: int, warp_mm: float) -> tuple[sitk.Image, np.ndarray]:
    """A smooth random deformation of the image and its labels, on the image's own grid."""
    rng = np.random.default_rng(seed)
    shape = labels.shape  # (k, j, i)
    spacing = np.array(image.GetSpacing())
    sigma = (30.0 / spacing[2], 40.0 / spacing[1], 40.0 / spacing[0])  # a smooth field: tens of mm
    field = np.stack([ndimage.gaussian_filter(rng.normal(size=shape), sigma) for _ in range(3)], axis=-1)
    field *= warp_mm / np.abs(field).max()
    field[..., 2] *= 0.3  # less along the long axis, where the slices are 10 mm apart
    displacement = sitk.GetImageFromArray(field.astype(np.float64), isVector=True)
    displacement.CopyInformation(image)
    warp = sitk.DisplacementFieldTransform(displacement)
    centre = image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in image.GetSize()])
    affine = sitk.Similarity3DTransform()
    affine.SetCenter(centre)
    affine.SetRotation((0.0, 0.0, 1.0), float(np.deg2rad(rng.uniform(-6, 6))))
    affine.SetScale(float(rng.uniform(0.94, 1.06)))
    transform = sitk.CompositeTransform([affine, warp])
    moved = sitk.Resample(image, image, transform, sitk.sitkLinear, -1024.0, sitk.sitkFloat32)
    values = sitk.GetArrayFromImage(moved) * rng.uniform(0.95, 1.05) + rng.uniform(-20, 20)
    values += rng.normal(0.0, 15.0, size=shape)
    out = sitk.GetImageFromArray(values.astype(np.float32))
    out.CopyInformation(image)
    label_image = sitk.GetImageFromArray(labels)
    label_image.CopyInformation(image)
    moved_labels = sitk.Resample(label_image, label_image, transform, sitk.sitkNearestNeighbor, 0)
    return out, sitk.GetArrayFromImage(moved_labels).astype(np.uint8)


def paint_to_goal(
    pred: np.ndarray, target: np.ndarray, spacing_kji, brush_mm: float, cap: int
) -> tuple[int, np.ndarray]:
    """Paint / erase corrections on a pre-segmentation until Dice >= GOAL: (strokes, the corrected mask)."""
    strokes = 0
    while dice(pred, target) < GOAL and strokes < cap:
        stroke, add, _centre = correction(pred, target, spacing_kji, brush_mm)
        pred = (pred | stroke) if add else (pred & ~stroke)
        strokes += 1
    return strokes, pred


def grow_to_goal(values, truth, names, target_name, spacing, brush_mm, cap) -> tuple[int, np.ndarray]:
    """Grow from seeds, scribbles then corrections, until Dice >= GOAL: (strokes, the grown target)."""
    reference = {name: truth == n for n, name in enumerate(names, start=1)}
    history, grown = seeded("grow", values, reference, names, target_name, spacing, cap, brush_mm)
    return history[-1][0], grown


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=3.0, help="training budget after each case")
    parser.add_argument("--target", default="thoracic vertebral column")
    parser.add_argument("--warp-mm", type=float, default=8.0)
    parser.add_argument("--brush-mm", type=float, default=6.0)
    parser.add_argument("--max-strokes", type=int, default=60, help="corrections at most per case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dimensions", type=int, choices=(2, 3), default=2, help="the model's (2: axial slices)")
    args = parser.parse_args()

    image, truth, names = reference_case()
    value = names.index(args.target) + 1
    spacing = tuple(float(s) for s in image.GetSpacing())
    spacing_kji = spacing[::-1]
    cohort = [(image, truth)] + [deformed(image, truth, args.seed + n, args.warp_mm) for n in range(1, args.cases)]
    print(f"cohort: the chest CT and {args.cases - 1} deformed copies; target {args.target!r}; goal Dice {GOAL}; "
          f"{args.minutes:g} min of training after each case; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(
        "case | grow alone: strokes (Dice) | model's Dice before correction | with the model: strokes (Dice) | training"
    )
    saved: list[tuple[str, sitk.Image, np.ndarray]] = []
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        model = None
        for number, (case_image, case_truth) in enumerate(cohort, start=1):
            values = sitk.GetArrayFromImage(case_image).astype(np.float32)
            target = case_truth == value
            grow_strokes, grown = grow_to_goal(values, case_truth, names, args.target, spacing, args.brush_mm,
                                               args.max_strokes)  # fmt: skip
            grow_dice = dice(grown, target)
            if model is None:  # nothing learnt yet: the first case is grown like the other way
                pre_dice, strokes, mask = float("nan"), grow_strokes, grown
            else:
                loaded = load_model(model)
                pred = predict(loaded, [values], Grid.from_sitk(case_image), device="cpu").labels == 1
                pre_dice = dice(pred, target)
                strokes, mask = paint_to_goal(pred, target, spacing_kji, args.brush_mm, args.max_strokes)
            final_dice = dice(mask, target)
            saved.append((f"case{number:02d}", case_image, mask.astype(np.uint8)))
            training = ""
            if number < len(cohort):
                folder = Path(scratch) / f"round{number}" / "Dataset001_Loop"
                write_nnunet(folder, saved, {"background": 0, "target": 1},
                             table={"labels": [{"name": "target", "value": 1, "color": "#f1d691"}]})  # fmt: skip
                output = Path(scratch) / f"model{number}"
                start = time.perf_counter()
                result = train(folder, output, minutes=args.minutes, device="cpu", init=model, seed=args.seed,
                               dimensions=args.dimensions)  # fmt: skip
                model = output
                training = (
                    f"{len(result.history)} epochs in {time.perf_counter() - start:.0f} s ({result.plan.dimensions}D)"
                )
            rows.append((number, grow_strokes, grow_dice, pre_dice, strokes, final_dice))
            print(f"{number:4d} | {grow_strokes:3d} ({grow_dice:.3f}) | {pre_dice:.3f} | {strokes:3d} ({final_dice:.3f}) | "
                  f"{training}", flush=True)  # fmt: skip
    late = [r for r in rows if r[0] >= 6]
    if late:
        ratio = sum(r[4] for r in late) / max(1, sum(r[1] for r in late))
        print(f"cases 6..{rows[-1][0]}: strokes with the model / grow alone = {ratio:.2f} (goal <= 0.5)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
