"""Islands on a 256^3 segment: SegTruth's tools beside SimpleITK's connected components on the same mask.

Prints seconds (best of N) and ratios measured in the same run; asserts nothing, but checks that both
give the same islands. Run: .venv/bin/python benchmarks/bench_islands.py
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from timing import best

from SegTruthLogic import Session
from SegTruthLogic.scene.segments import add_segment, find_segment, new_segmentation, segment_mask, set_segment_mask
from SegTruthLogic.scene.volumes import load_volume
from SegTruthLogic.tools.islands import keep_largest_island, remove_small_islands


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.size
    rng = np.random.default_rng(1)
    # A large blob plus 2000 specks of 1-60 voxels: what a threshold of bone or air leaves behind.
    k, j, i = np.ogrid[:n, :n, :n]
    mask = (k - n / 2) ** 2 + (j - n / 2) ** 2 + (i - n / 2) ** 2 <= (n / 3) ** 2
    for _ in range(2000):
        c = rng.integers(2, n - 6, size=3)
        d = rng.integers(1, 5, size=3)
        mask[c[0] : c[0] + d[0], c[1] : c[1] + d[1], c[2] : c[2] + d[2]] = True
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "image.nrrd"
        sitk.WriteImage(sitk.GetImageFromArray(mask.astype(np.int16)), str(path))
        session = Session.new_headless()
        volume = load_volume(session, path)
        seg = new_segmentation(session, volume)
        sid = add_segment(seg, "bone")

        def reset() -> None:
            set_segment_mask(session, seg, sid, mask, volume)

        def ours_largest() -> None:
            reset()
            keep_largest_island(session, seg, volume, "bone")

        def ours_small() -> None:
            reset()
            remove_small_islands(session, seg, volume, "bone", min_voxels=20)

        reset_time = best(reset, args.repeats)
        largest = best(ours_largest, args.repeats) - reset_time
        ours_largest()
        our_largest_mask = segment_mask(session, seg, find_segment(seg, "bone"), volume)
        small = best(ours_small, args.repeats) - reset_time
        ours_small()
        our_small_mask = segment_mask(session, seg, find_segment(seg, "bone"), volume)

        image = sitk.GetImageFromArray(mask.astype(np.uint8))

        def sitk_components() -> sitk.Image:
            return sitk.RelabelComponent(sitk.ConnectedComponent(image, False), sortByObjectSize=True)

        reference = best(sitk_components, args.repeats)
        labels = sitk.GetArrayFromImage(sitk_components())
        sizes = np.bincount(labels.ravel())
        same_largest = np.array_equal(our_largest_mask, labels == 1)
        same_small = np.array_equal(our_small_mask, np.isin(labels, np.nonzero(sizes >= 20)[0][1:]))
    print(f"{n}^3 mask, {len(sizes) - 1} islands (face connectivity), best of {args.repeats}")
    print(f"SimpleITK ConnectedComponent + RelabelComponent       {reference:6.2f} s")
    print(
        f"SegTruth keep largest island (read, label, write)     {largest:6.2f} s  ({largest / reference:4.2f}x SimpleITK)"
        f"  same voxels: {same_largest}"
    )
    print(
        f"SegTruth remove islands < 20 voxels (read, label, write) {small:6.2f} s  ({small / reference:4.2f}x SimpleITK)"
        f"  same voxels: {same_small}"
    )
    print(f"(writing the mask into the segment, subtracted above: {reset_time:.2f} s)")


if __name__ == "__main__":
    main()
