"""Smoothing, Hollow, Watershed, Flood fill, Local threshold, Fast Marching and Scissors on a 256^3 region, each
beside its reference run in the same process on the same arrays.

The tool times include reading the segment from the segmentation node and writing the result back through
the Segment Editor's masking (what a user waits for); the references run on bare arrays. Each row also says
whether the two results are equal voxel for voxel (Fast Marching: its arrival times against SimpleITK's).
Run: .venv/bin/python benchmarks/bench_tools.py [--size 256] [--repeats 2] (best of 2: the first run loads the compiled kernels)
"""

from __future__ import annotations

import argparse

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from scipy import ndimage
from timing import best

from SegTruthLogic import Session
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.scene.segments import (
    add_segment,
    image_array,
    new_segmentation,
    oriented_image,
    segment_mask,
    set_segment_mask,
)
from SegTruthLogic.scene.volumes import volume_from_array
from SegTruthLogic.tools import fast_marching as fm
from SegTruthLogic.tools.flood_fill import flood_fill
from SegTruthLogic.tools.hollow import hollow
from SegTruthLogic.tools.local_threshold import local_threshold
from SegTruthLogic.tools.scissors import scissors
from SegTruthLogic.tools.smoothing import joint_smooth, smooth
from SegTruthLogic.tools.watershed import watershed


def phantom(n: int) -> tuple[np.ndarray, np.ndarray]:
    """A CT-like int16 volume: a body (40 HU) with two 'lungs' (-800) and a 'spine' (400), noise sigma 20;
    and a ragged mask of the spine (what a threshold leaves)."""
    rng = np.random.default_rng(0)
    k, j, i = np.ogrid[:n, :n, :n]
    c = n / 2
    values = np.full((n, n, n), -1000.0, np.float32)
    body = ((i - c) / (0.45 * n)) ** 2 + ((j - c) / (0.35 * n)) ** 2 <= 1
    values[np.broadcast_to(body, values.shape)] = 40
    for side in (-1, 1):
        lung = ((i - c - side * 0.2 * n) / (0.13 * n)) ** 2 + ((j - c) / (0.2 * n)) ** 2 + (
            (k - c) / (0.4 * n)
        ) ** 2 <= 1
        values[lung] = -800
    spine = ((i - c) / (0.06 * n)) ** 2 + ((j - c - 0.22 * n) / (0.06 * n)) ** 2 <= 1
    values[np.broadcast_to(spine, values.shape)] = 400
    values += rng.normal(0, 20, values.shape).astype(np.float32)
    ragged = (values > 250) & (rng.random(values.shape) > 0.02)
    return values.astype(np.int16), ragged


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    n, repeats = args.size, args.repeats
    values, ragged = phantom(n)
    session = Session.new_headless()
    volume = volume_from_array(session, values, Grid((n, n, n), np.eye(4)))
    seg = new_segmentation(session, volume)
    spine = add_segment(seg, "spine")
    rows: list[tuple[str, float, float, str]] = []

    def reset(mask=ragged, sid=spine) -> None:
        set_segment_mask(session, seg, sid, mask, volume)

    def result(sid=spine) -> np.ndarray:
        return segment_mask(session, seg, sid, volume)

    def vtk_run(filter_) -> np.ndarray:
        filter_.Update()
        return image_array(filter_.GetOutput()) != 0

    # -- smoothing: median 3 mm and opening 3 mm vs the effect's VTK filters on the array -----------------
    for method in ("median", "opening"):
        reset_time = best(reset, repeats)
        ours = best(lambda m=method: (reset(), smooth(session, seg, volume, "spine", m, 3.0)), repeats) - reset_time
        got = result()

        def reference(m=method) -> np.ndarray:
            f = vtk.vtkImageMedian3D() if m == "median" else vtk.vtkImageOpenClose3D()
            if m != "median":
                f.SetOpenValue(1)
                f.SetCloseValue(0)
            f.SetInputData(oriented_image(ragged.astype(np.uint8), volume))
            f.SetKernelSize(3, 3, 3)
            return vtk_run(f)

        ref = best(reference, repeats)
        rows.append((f"smooth {method} 3 mm", ours, ref, "equal" if np.array_equal(got, reference()) else "DIFFER"))

    # -- joint smoothing of spine + body, no reference (Slicer's joint smoothing is a surface pipeline) ------
    tissue = add_segment(seg, "tissue")
    body_mask = (values > -100) & (values < 250)
    reset_time = best(lambda: (reset(), reset(body_mask, tissue)), repeats)
    ours = best(lambda: (reset(), reset(body_mask, tissue), joint_smooth(session, seg, volume, None, 1.0)), repeats)
    rows.append(("joint smooth 2 segments, sigma 1 mm", ours - reset_time, float("nan"), "no gaps/overlaps"))
    seg.GetSegmentation().RemoveSegment(tissue)

    # -- hollow 3 mm vs vtkITKImageMargin on the array ---------------------------------------------------------
    reset_time = best(reset, repeats)
    ours = best(lambda: (reset(), hollow(session, seg, volume, "spine", 3.0, "outside_surface")), repeats) - reset_time
    got = result()

    def hollow_reference() -> np.ndarray:
        f = slicer.vtkITKImageMargin()
        f.SetInputData(oriented_image(ragged.astype(np.uint8), volume))
        f.CalculateMarginInMMOn()
        f.SetInnerMarginMM(1.0 - 3.0)
        f.SetOuterMarginMM(0.0)
        return vtk_run(f)

    ref = best(hollow_reference, repeats)
    rows.append(("hollow 3 mm", ours, ref, "equal" if np.array_equal(got, hollow_reference()) else "DIFFER"))

    # -- watershed, 3 markers, object scale 2 mm vs SimpleITK on the array ------------------------------------
    markers = np.zeros(values.shape, np.uint16)
    c = n // 2
    markers[c - 4 : c + 4, int(0.72 * n) - 2 : int(0.72 * n) + 2, c - 2 : c + 2] = 1  # spine
    markers[c - 4 : c + 4, c - 4 : c + 4, int(0.3 * n) - 2 : int(0.3 * n) + 2] = 2  # a lung
    markers[:2, :2, :] = 3  # outside
    ids = [spine, add_segment(seg, "lung"), add_segment(seg, "outside")]
    for label, sid in enumerate(ids, start=1):
        set_segment_mask(session, seg, sid, markers == label, volume)
    state = {s: segment_mask(session, seg, s, volume) for s in ids}

    def reset_markers() -> None:
        for s in ids:
            set_segment_mask(session, seg, s, state[s], volume)

    reset_time = best(reset_markers, repeats)
    ours = best(lambda: (reset_markers(), watershed(session, seg, volume, object_scale_mm=2.0)), repeats) - reset_time
    got = np.zeros(values.shape, np.uint16)
    for label, sid in enumerate(ids, start=1):
        got[result(sid)] = label

    def watershed_reference() -> np.ndarray:
        image = sitk.GetImageFromArray(values)
        feature = sitk.GradientMagnitudeRecursiveGaussian(image, 2.0)
        marks = sitk.GetImageFromArray(markers)
        marks.CopyInformation(feature)
        flood = sitk.MorphologicalWatershedFromMarkers(feature, marks, markWatershedLine=False, fullyConnected=False)
        return sitk.GetArrayFromImage(flood)

    ref = best(watershed_reference, repeats)
    rows.append(
        ("watershed 3 markers, 2 mm", ours, ref, "equal" if np.array_equal(got, watershed_reference()) else "DIFFER")
    )
    for s in ids[1:]:
        seg.GetSegmentation().RemoveSegment(s)

    # -- flood fill in a lung, tolerance 100, no neighbourhood vs SimpleITK ConnectedThreshold ----------------
    seed = (c, c, int(0.3 * n))
    ras = [float(seed[2]), float(seed[1]), float(seed[0])]  # identity IJK-to-RAS
    empty = np.zeros(values.shape, bool)
    reset_time = best(lambda: reset(empty), repeats)
    ours = best(lambda: (reset(empty), flood_fill(session, seg, volume, "spine", ras, 100, 0.0)), repeats) - reset_time
    got = result()
    value = float(values[seed])

    def fill_reference() -> np.ndarray:
        out = sitk.ConnectedThreshold(sitk.GetImageFromArray(values), [seed[::-1]], value - 100, value + 100)
        return sitk.GetArrayFromImage(out) != 0

    ref = best(fill_reference, repeats)
    rows.append(
        ("flood fill, tolerance 100", ours, ref, "equal" if np.array_equal(got, fill_reference()) else "DIFFER")
    )

    # -- local threshold at the spine, 3 mm minimum diameter vs the same rule on SciPy ------------------------
    spine_ras = [float(c), float(int(0.72 * n)), float(c)]
    reset_time = best(lambda: reset(empty), repeats)
    ours = best(
        lambda: (reset(empty), local_threshold(session, seg, volume, "spine", spine_ras, 250, 3000, 3.0)), repeats
    )
    ours -= reset_time
    got = result()

    def local_reference() -> np.ndarray:
        in_range = (values >= 250) & (values <= 3000)
        r = np.arange(3) - 1
        kk, jj, ii = np.meshgrid(r, r, r, indexing="ij")
        ball = (kk**2 + jj**2 + ii**2) / 1.5**2 <= 1
        labels, _ = ndimage.label(ndimage.binary_erosion(in_range, ball))
        sizes = np.bincount(labels.ravel())
        islands = (labels > 0) & (sizes[labels] >= 125)
        island_labels, _ = ndimage.label(islands)
        click = (c, int(0.72 * n), c)
        selected = island_labels == island_labels[click]
        r5 = np.arange(5) - 2
        kk, jj, ii = np.meshgrid(r5, r5, r5, indexing="ij")
        others = ndimage.binary_dilation(islands & ~selected, (kk**2 + jj**2 + ii**2) / 2.5**2 <= 1)
        region, _ = ndimage.label(in_range & ~others)
        return region == region[click]

    ref = best(local_reference, repeats)
    rows.append(
        ("local threshold (SciPy rule)", ours, ref, "equal" if np.array_equal(got, local_reference()) else "DIFFER")
    )

    # -- fast marching from the spine marker to 2 % of the image vs SimpleITK FastMarching (same speed) ------
    spine_seed = markers == 1
    reset_time = best(lambda: reset(spine_seed), repeats)
    ours = best(lambda: (reset(spine_seed), fm.fast_marching(session, seg, volume, "spine", 2.0)), repeats) - reset_time
    reset(spine_seed)
    march = fm.march(session, seg, volume, "spine", 2.0)
    speed = fm.seed_speed(values, spine_seed)
    stop = float(march.times[-1])
    trial = [tuple(int(v) for v in p[::-1]) for p in np.argwhere(spine_seed)]

    def march_reference() -> np.ndarray:
        f = sitk.FastMarchingImageFilter()
        f.SetTrialPoints(trial)
        f.SetStoppingValue(stop)
        image = sitk.GetImageFromArray(speed)
        return sitk.GetArrayFromImage(f.Execute(image)).ravel()

    ref = best(march_reference, repeats)
    reference_times = march_reference()[march.order]
    close = np.allclose(march.times, reference_times, rtol=1e-6, atol=1e-6)
    rows.append((f"fast marching to 2 % ({march.voxels} voxels)", ours, ref, "times equal" if close else "DIFFER"))
    slide = best(lambda: fm.set_marched_volume(session, seg, volume, "spine", march, march.voxels // 2), repeats)
    rows.append(("  the volume slider (no march)", slide, float("nan"), f"{slide / ours:.2f} of a march"))

    # -- scissors: an octagon through the whole volume vs NumPy's even-odd test on the array ------------------
    angles = np.linspace(0, 2 * np.pi, 9)[:-1]
    octagon = [[c + 0.3 * n * np.cos(a), c + 0.3 * n * np.sin(a), float(c)] for a in angles]
    full = np.ones(values.shape, bool)
    reset_time = best(lambda: reset(full), repeats)
    ours = best(lambda: (reset(full), scissors(session, seg, volume, "spine", octagon, "erase_inside", "all")), repeats)
    ours -= reset_time
    got = result()

    def scissors_reference() -> np.ndarray:
        jj, ii = np.mgrid[:n, :n].astype(float)
        inside = np.zeros((n, n), bool)
        px, py = np.array(octagon)[:, 0], np.array(octagon)[:, 1]
        for a in range(len(px)):
            b = (a + 1) % len(px)
            crosses = (py[a] > jj) != (py[b] > jj)
            x = (px[b] - px[a]) * (jj - py[a]) / np.where(py[b] == py[a], 1, py[b] - py[a]) + px[a]
            inside ^= crosses & (ii < x)
        return ~np.broadcast_to(inside, values.shape)

    ref = best(scissors_reference, repeats)
    rows.append(
        (
            "scissors octagon, whole volume",
            ours,
            ref,
            "equal" if np.array_equal(got, scissors_reference()) else "DIFFER",
        )
    )

    print(f"{n}^3 int16, best of {repeats}; tool = SegTruth with its MRML read/write, reference on bare arrays")
    print(f"{'tool':44s} {'SegTruth s':>10s} {'reference s':>11s} {'ratio':>6s}  check")
    for name, ours_s, ref_s, check in rows:
        ratio = f"{ours_s / ref_s:6.2f}" if ref_s == ref_s else "     -"
        ref_text = f"{ref_s:11.2f}" if ref_s == ref_s else f"{'-':>11s}"
        print(f"{name:44s} {ours_s:10.2f} {ref_text} {ratio}  {check}")


if __name__ == "__main__":
    main()
