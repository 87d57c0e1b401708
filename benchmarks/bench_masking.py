"""Writing an edit into a segment: SegTruth's numpy masking (Slicer 5.8/5.9) beside vtkSlicerSegmentEditorLogic.

A 256^3 volume with six segments (shared layers, as painted in Slicer) and a ball-shaped edit; for each
setting, seconds (best of N, scene rebuild excluded) for both and their ratio, measured in the same run, and
a check that both give the same voxels. Asserts nothing. Run: .venv/bin/python benchmarks/bench_masking.py
"""

from __future__ import annotations

import argparse

import numpy as np
from timing import best

from SegTruthLogic import Session
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.scene.editing import EditOptions, modify_with_editor_logic
from SegTruthLogic.scene.masking import modify_segment
from SegTruthLogic.scene.segments import add_segment, new_segmentation, segment_mask, set_segment_mask
from SegTruthLogic.scene.volumes import volume_from_array

SETTINGS = {
    "add, everywhere, overwrite all": ("add", EditOptions()),
    "set, outside all segments, overwrite none": ("set", EditOptions(editable_area="outside_all", overwrite="none")),
    "add, intensity range, overwrite visible": ("add", EditOptions(intensity_range=(50, 150), overwrite="visible")),
    "remove, inside all segments": ("remove", EditOptions(editable_area="inside_all")),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.size
    shape = (n, n, n)
    rng = np.random.default_rng(2)
    intensity = rng.integers(0, 200, size=shape, dtype=np.int16)
    k, j, i = np.ogrid[:n, :n, :n]

    def ball(center, radius):
        return (k - center[0]) ** 2 + (j - center[1]) ** 2 + (i - center[2]) ** 2 <= radius**2

    centers = [
        (n * a // 8, n * b // 8, n * c // 8)
        for a, b, c in ((2, 2, 2), (6, 2, 2), (2, 6, 2), (2, 2, 6), (6, 6, 6), (4, 4, 4))
    ]
    segments = [ball(c, n / 8) for c in centers]
    edit = ball((n // 2, n // 2, n // 2), n / 4)
    grid = Grid((n, n, n), np.diag([0.8, 0.8, 1.2, 1.0]))

    def scene():
        session = Session.new_headless()
        volume = volume_from_array(session, intensity, grid, "image")
        segmentation = new_segmentation(session, volume)
        ids = [add_segment(segmentation, f"s{number}") for number in range(len(segments))]
        for sid, mask in zip(ids, segments):
            set_segment_mask(session, segmentation, sid, mask, volume)
        segmentation.GetSegmentation().CollapseBinaryLabelmaps(False)
        return session, segmentation, volume, ids

    print(f"{n}^3 volume, {len(segments)} segments, edit of {int(edit.sum())} voxels; best of {args.repeats}")
    print(f"{'setting':45s} {'Slicer logic':>12s} {'numpy':>9s} {'numpy / Slicer':>15s} same voxels")
    for name, (mode, options) in SETTINGS.items():
        timings, results = {}, {}
        for label, write in (("slicer", modify_with_editor_logic), ("numpy", modify_segment)):
            seconds = []
            for _ in range(args.repeats):  # a fresh scene each time, built outside the timing
                session, segmentation, volume, ids = scene()
                arguments = (session, segmentation, ids[-1], volume, edit, mode, options)
                seconds.append(best(lambda w=write, a=arguments: w(*a), 1))
            timings[label] = min(seconds)
            results[label] = [segment_mask(session, segmentation, sid, volume) for sid in ids]
        same = all(np.array_equal(a, b) for a, b in zip(results["slicer"], results["numpy"]))
        ratio = timings["numpy"] / timings["slicer"]
        print(f"{name:45s} {timings['slicer']:11.2f}s {timings['numpy']:8.2f}s {ratio:14.2f}x {same}")


if __name__ == "__main__":
    main()
