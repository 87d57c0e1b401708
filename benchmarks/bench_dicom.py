"""DICOM in: a 40-ROI structure set on a 512x512x300 CT, a 500-slice series listed and loaded, 100 series indexed.

1. Structure set: 40 ROIs (star-shaped outlines with 40-160 vertices on every slice an ROI spans, a third of
   them with a hole), 512x512x300 CT series written with pydicom. Times SegTruth's rasteriser
   (``scene.rtstruct.rasterise``, every ROI) beside two independent ones run on the same contours in voxel
   indices: matplotlib's ``Path.contains_points`` on each contour's bounding box, and scikit-image's
   ``draw.polygon`` (C scan conversion, pixel-centre rule), each XOR-ing a slice's contours; reports how many
   voxels differ. Then the whole command, ``segtruth export CT_DIR RS.dcm -o labels.seg.nrrd``.
2. A 512x512x500 series: ``segtruth info DIR`` (headers only) and loading it as a volume node.
3. 100 series of 40 slices (128x128) in one tree: ``index_tree`` from cold, and again (cached).

Prints the figures; asserts nothing. Needs pydicom, matplotlib and scikit-image.
Run: .venv/bin/python benchmarks/bench_dicom.py [--part rois|series|tree] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "Testing"))

from dicom_synthetic import polygon, write_rtstruct, write_series

ROIS = 40


def _seconds(function) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def structure_set(series, slices: int, rng: np.random.Generator) -> list:
    rois = []
    for n in range(ROIS):
        centre = rng.uniform(60, 452, 2)
        radius = rng.uniform(8, 45)
        first = int(rng.integers(0, slices - 20))
        last = min(slices - 1, first + int(rng.integers(10, 120)))
        contours = []
        for k in range(first, last + 1):
            scale = 0.6 + 0.4 * np.sin(np.pi * (k - first + 0.5) / (last - first + 1))
            count = int(rng.integers(40, 160))
            outline = polygon(centre, radius * scale, count, rng, wobble=0.15)
            contours.append(series.lps(np.c_[outline, np.full(count, float(k))]))
            if n % 3 == 0:
                hole = polygon(centre, radius * scale * 0.4, count // 2, rng, wobble=0.1)
                contours.append(series.lps(np.c_[hole, np.full(len(hole), float(k))]))
        rois.append((f"ROI_{n:02d}", tuple(int(c) for c in rng.integers(0, 256, 3)), contours))
    return rois


def independent(roi_contours: list[np.ndarray], index_from_lps: np.ndarray, shape, method: str) -> np.ndarray:
    """One ROI by an independent rasteriser, contours taken to indices with the series geometry (LPS)."""
    from matplotlib.path import Path as PolygonPath
    from skimage.draw import polygon as scan_polygon

    _, rows, columns = shape
    mask = np.zeros(shape, dtype=bool)
    for points in roi_contours:
        index = (index_from_lps @ np.c_[points, np.ones(len(points))].T).T
        k = round(float(index[:, 2].mean()))
        i0, j0 = max(int(np.floor(index[:, 0].min())), 0), max(int(np.floor(index[:, 1].min())), 0)
        i1, j1 = min(int(np.ceil(index[:, 0].max())) + 1, columns), min(int(np.ceil(index[:, 1].max())) + 1, rows)
        if method == "skimage":
            rr, cc = scan_polygon(index[:, 1] - j0, index[:, 0] - i0, shape=(j1 - j0, i1 - i0))
            plane = np.zeros((j1 - j0, i1 - i0), bool)
            plane[rr, cc] = True
            mask[k, j0:j1, i0:i1] ^= plane
            continue
        jj, ii = np.mgrid[j0:j1, i0:i1]
        inside = PolygonPath(index[:, :2]).contains_points(np.c_[ii.ravel(), jj.ravel()]).reshape(jj.shape)
        mask[k, j0:j1, i0:i1] ^= inside
    return mask


def part_rois(work: Path) -> None:
    from SegTruthLogic.core.geometry import LPS_TO_RAS, Grid
    from SegTruthLogic.scene.rtstruct import rasterise, read_structure_set

    rng = np.random.default_rng(40)
    shape = (300, 512, 512)
    seconds, series = _seconds(lambda: write_series(work / "ct300", np.zeros(shape, np.int16), spacing=(0.8, 0.8, 1.5)))
    print(f"wrote a {shape[2]}x{shape[1]}x{shape[0]} series in {seconds:.1f} s")
    rtstruct = write_rtstruct(work / "ct300" / "RS.dcm", series, structure_set(series, shape[0], rng))
    read_seconds, structure = _seconds(lambda: read_structure_set(rtstruct))
    contours = sum(len(roi.contours) for roi in structure.rois)
    points = sum(len(c) for roi in structure.rois for c in roi.contours)
    print(f"structure set: {ROIS} ROIs, {contours} contours, {points} points; read in {read_seconds:.2f} s")
    grid = Grid((shape[2], shape[1], shape[0]), LPS_TO_RAS @ series.ijk_to_lps)
    index_from_lps = np.linalg.inv(series.ijk_to_lps)

    def segtruth() -> list[np.ndarray]:
        masks = []
        for roi in structure.rois:
            block, box = rasterise(roi, grid)
            full = np.zeros(shape, bool)
            full[box] = block
            masks.append(full)
        return masks

    ours_seconds, ours = _seconds(segtruth)
    print(f"SegTruth rasterise: {ours_seconds:.2f} s")
    for method in ("matplotlib", "skimage"):
        start = time.perf_counter()
        theirs = [independent(list(roi.contours), index_from_lps, shape, method) for roi in structure.rois]
        seconds = time.perf_counter() - start
        differ = sum(int((a != b).sum()) for a, b in zip(ours, theirs))
        inside = sum(int(a.sum()) for a in ours)
        print(
            f"{method}: {seconds:.2f} s (SegTruth {seconds / ours_seconds:.2f}x faster); voxels differing "
            f"{differ} of {inside} inside"
        )
    out = work / "labels.seg.nrrd"
    command = [
        sys.executable,
        "-m",
        "SegTruthLogic",
        "export",
        str(work / "ct300"),
        str(rtstruct),
        "-o",
        str(out),
        "-q",
    ]
    seconds, result = _seconds(lambda: subprocess.run(command, capture_output=True, text=True, check=False))
    print(f"segtruth export CT RS.dcm -o labels.seg.nrrd (whole process): {seconds:.1f} s, exit {result.returncode}")
    info = [sys.executable, "-m", "SegTruthLogic", "info", str(work / "ct300")]
    seconds, _ = _seconds(lambda: subprocess.run(info, capture_output=True, text=True, check=False))
    print(f"segtruth info on that folder (whole process): {seconds:.2f} s")


def part_series(work: Path) -> None:
    shape = (500, 512, 512)
    write_series(work / "ct500", np.random.default_rng(1).integers(-1000, 1000, shape).astype(np.int16))
    command = [sys.executable, "-m", "SegTruthLogic", "info", str(work / "ct500")]
    for attempt in range(3):
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        print(
            f"segtruth info, 500 slices (whole process, run {attempt + 1}): {time.perf_counter() - start:.2f} s, "
            f"exit {result.returncode}"
        )
    from SegTruthLogic.scene.dicom import load_dicom_series
    from SegTruthLogic.scene.session import Session

    session = Session.new_headless()
    seconds, _ = _seconds(lambda: load_dicom_series(session, work / "ct500"))
    print(f"load as a volume node (in process, Slicer already imported): {seconds:.2f} s")
    import SimpleITK as sitk

    def itk() -> object:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(work / "ct500")))
        return reader.Execute()

    seconds, _ = _seconds(itk)
    print(f"reference: SimpleITK's GDCM series read of the same files: {seconds:.2f} s")


def part_tree(work: Path) -> None:
    from SegTruthLogic.scene import dicom_index

    rng = np.random.default_rng(2)
    for n in range(100):
        write_series(work / "tree" / f"case{n:03d}", rng.integers(0, 100, (40, 128, 128)).astype(np.int16))
    seconds, entries = _seconds(lambda: dicom_index.index_tree(work / "tree"))
    print(f"index 100 series x 40 slices (4000 files), cold: {seconds:.2f} s; {len(entries)} series")
    seconds, _ = _seconds(lambda: dicom_index.index_tree(work / "tree"))
    print(f"the same, cached (path, mtime, size): {seconds:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("rois", "series", "tree"), action="append")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="segtruth-bench-dicom-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for part in args.part or ("rois", "series", "tree"):
            {"rois": part_rois, "series": part_series, "tree": part_tree}[part](work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
