"""A simulated annotator on the chest CT (slicerio's CTChest4 and its 7-segment reference): how many strokes
each way of working needs to reach Dice 0.90 on one structure.

The annotator, for every strategy: one scribble per structure (the brush ball at the deepest point of its
largest island, the point farthest from its boundary, kept inside the structure), then one correction stroke
at a time on the target structure: the brush ball at the deepest point of the largest error (a connected
region of false negatives or false positives), kept inside that error, labelled with what the reference says
there. Strategies:

- ``grow``: grow from seeds (SegTruth's grow-cut, whole image, every structure and the background seeded);
  each correction is one more seed stroke and the grow is updated.
- ``grow+smooth``: the same, with the grown target smoothed (median, 7 mm) before it is scored: one more
  action, counted.
- ``watershed``: the same seeds as markers of a watershed (object scale 2 mm); each correction is one more
  marker stroke and the watershed is run again.
- ``local threshold``: one click at the structure's deepest point, the range from the lowest value within 5 mm
  of it up to the image's maximum (bone is the brightest thing near it), then a closing of 3 mm (one action),
  then paint / erase corrections (each one stroke).

The counts include the scribbles of the other structures only for the seeded strategies (grow, watershed need
them; the local threshold does not). Prints strokes and Dice after each; asserts nothing.
Run: .venv/bin/python benchmarks/bench_annotator.py [--target "thoracic vertebral column"] [--max-strokes 40]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import slicerio
from scipy import ndimage
from slicer.util import arrayFromVolume

from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.scene.case import Case
from SegTruthLogic.scene.segments import add_segment, find_segment, segment_ids, segment_mask, set_segment_mask
from SegTruthLogic.tools.grow import GrowCut
from SegTruthLogic.tools.local_threshold import local_range, local_threshold
from SegTruthLogic.tools.smoothing import smooth, smoothed_mask
from SegTruthLogic.tools.watershed import watershed_labels

GOAL = 0.90
STRATEGIES = ("grow", "grow+smooth", "watershed", "local threshold")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int((a & b).sum()) / total if total else 1.0


def deepest(mask: np.ndarray, spacing_kji) -> tuple[tuple[int, int, int], float]:
    """The voxel of the mask's largest face-connected part farthest from its boundary, and that depth in mm."""
    labels, count = ndimage.label(mask)
    if count == 0:
        raise ValueError("empty mask")
    largest = labels == (np.argmax(np.bincount(labels.ravel())[1:]) + 1)
    depth = ndimage.distance_transform_edt(largest, sampling=spacing_kji)
    index = np.unravel_index(int(np.argmax(depth)), mask.shape)
    return tuple(int(v) for v in index), float(depth[index])  # type: ignore[return-value]


def ball(shape, centre, radius_mm: float, spacing_kji) -> np.ndarray:
    k, j, i = np.ogrid[tuple(slice(0, n) for n in shape)]
    d2 = sum(((axis - c) * s) ** 2 for axis, c, s in zip((k, j, i), centre, spacing_kji))
    return d2 <= radius_mm**2


def correction(pred: np.ndarray, target: np.ndarray, spacing_kji, brush_mm: float):
    """The next correction stroke: the brush ball at the deepest point of the largest error, kept inside that
    error (an annotator paints over the mistake, not beyond it); and whether it adds the target there."""
    labels, _ = ndimage.label(target != pred)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    error = labels == int(np.argmax(sizes))
    centre, _depth = deepest(error, spacing_kji)
    return ball(pred.shape, centre, brush_mm, spacing_kji) & error, bool(target[centre]), centre


def seeded(strategy: str, values, reference, names, target_name, spacing, max_strokes, brush_mm, volume=None):
    """Grow or watershed from one scribble per structure plus the background, then corrections: the history of
    (strokes, Dice) and the target as last predicted.

    ``grow+smooth``: grow, and score the target after a median smoothing of 7 mm (one more action, counted)."""
    spacing_kji = spacing[::-1]
    labels = {name: n for n, name in enumerate(names, start=1)}
    background = len(names) + 1
    truth = np.full(values.shape, background, np.uint16)
    for name in names:
        truth[reference[name]] = labels[name]
    seeds = np.zeros(values.shape, np.uint16)
    strokes = 0
    for value in range(1, background + 1):
        centre, _depth = deepest(truth == value, spacing_kji)
        seeds[ball(values.shape, centre, brush_mm, spacing_kji) & (truth == value)] = value
        strokes += 1
    target = truth == labels[target_name]
    cut = GrowCut(values, spacing, None, margin=None) if strategy.startswith("grow") else None
    history = []
    while True:
        pred_labels = cut.update(seeds) if cut is not None else watershed_labels(values, seeds, spacing, 2.0)
        pred = pred_labels == labels[target_name]
        if strategy == "grow+smooth":
            pred = smoothed_mask(pred, volume, "median", 7.0)
        score = dice(pred, target)
        history.append((strokes + (strategy == "grow+smooth"), score))
        if score >= GOAL or strokes - background >= max_strokes:
            return history, pred
        stroke, _add, _centre = correction(pred_labels == labels[target_name], target, spacing_kji, brush_mm)
        seeds[stroke] = truth[stroke]
        strokes += 1


def local_then_paint(case: Case, reference, target_name, spacing, max_strokes, brush_mm):
    """A local-threshold click, a closing, then paint / erase corrections."""
    session, segmentation, volume = case.session, case.segmentation, case.volume
    spacing_kji = spacing[::-1]
    target = reference[target_name]
    for sid in segment_ids(segmentation):
        segmentation.GetSegmentation().RemoveSegment(sid)
    sid = add_segment(segmentation, "work")
    centre, _depth = deepest(target, spacing_kji)
    grid = Grid.from_node(volume)
    ras = (grid.ijk_to_ras @ np.array([centre[2], centre[1], centre[0], 1.0]))[:3]
    low, _ = local_range(volume, ras, 5.0)
    high = float(values_max(volume))
    local_threshold(session, segmentation, volume, "work", ras, low, high, 3.0)
    strokes = 1
    history = [(strokes, dice(segment_mask(session, segmentation, sid, volume), target))]
    smooth(session, segmentation, volume, "work", "closing", 3.0)
    strokes += 1
    while True:
        pred = segment_mask(session, segmentation, sid, volume)
        score = dice(pred, target)
        history.append((strokes, score))
        if score >= GOAL or strokes - 2 >= max_strokes:
            return history, (low, high)
        stroke, add, _centre = correction(pred, target, spacing_kji, brush_mm)
        set_segment_mask(session, segmentation, sid, (pred | stroke) if add else (pred & ~stroke), volume)
        strokes += 1


def values_max(volume) -> float:
    return float(arrayFromVolume(volume).max())


def report(name: str, history) -> None:
    strokes, score = history[-1]
    reached = score >= GOAL
    steps = " ".join(f"{s}:{d:.3f}" for s, d in history[:: max(1, len(history) // 12)])
    verdict = f"Dice {score:.3f} after {strokes} strokes" + ("" if reached else f" (did not reach {GOAL})")
    print(f"{name:18s} {verdict}\n{'':18s} strokes:Dice {steps}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", action="append", help="reference segment(s) (default: spine, ribs)")
    parser.add_argument("--max-strokes", type=int, default=40, help="corrections after the first strokes")
    parser.add_argument("--strategy", action="append", choices=STRATEGIES, help="default: all")
    parser.add_argument("--brush-mm", type=float, default=6.0, help="the widest correction ball's radius")
    args = parser.parse_args()
    data = os.path.join(os.path.dirname(slicerio.__file__), "data")
    case = Case.open(os.path.join(data, "CTChest4.nrrd"), os.path.join(data, "Segmentation.seg.nrrd"))
    session, segmentation, volume = case.session, case.segmentation, case.volume
    values = arrayFromVolume(volume).copy()
    spacing = tuple(float(s) for s in Grid.from_node(volume).spacing)
    names = [segmentation.GetSegmentation().GetSegment(s).GetName() for s in segment_ids(segmentation)]
    reference = {n: segment_mask(session, segmentation, find_segment(segmentation, n), volume) for n in names}
    targets = args.target or ["thoracic vertebral column", "ribs"]
    print(f"CTChest4 {values.shape[::-1]} voxels, spacing {spacing} mm; goal Dice {GOAL}; brush <= {args.brush_mm} mm")
    for target in targets:
        print(f"\n== {target} ({int(reference[target].sum())} voxels)")
        for strategy in args.strategy or STRATEGIES:
            if strategy == "local threshold":
                history, used = local_then_paint(case, reference, target, spacing, args.max_strokes, args.brush_mm)
                report(strategy, history)
                print(f"{'':18s} (range {used[0]:g}..{used[1]:g} from the click)")
            else:
                history, _pred = seeded(
                    strategy, values, reference, names, target, spacing, args.max_strokes, args.brush_mm, volume
                )
                report(strategy, history)
        case = Case.open(os.path.join(data, "CTChest4.nrrd"), os.path.join(data, "Segmentation.seg.nrrd"))


if __name__ == "__main__":
    main()
