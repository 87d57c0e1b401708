"""Grow from seeds on a synthetic 256^3 CT-like volume: SegTruth beside Slicer's and ITK's grow-cut.

References, on the same input in the same run: Slicer's ``vtkImageGrowCutSegment`` (slicer-core) on the
whole volume and cropped to the seeds' box plus margin (as Slicer's effect does), and ITK's
``FastGrowCut`` (PyPI ``itk-growcut``, the filter Slicer >= 5 uses). Both use 26 neighbours; SegTruth is
timed with its default 6 and with 26. Prints seconds, ratios and Dice per label; asserts nothing.
Run: .venv/bin/python benchmarks/bench_grow.py
``--against REV`` times this kernel beside the kernel of git revision REV on the same input, interleaved (A B
A B), and checks that labels, costs and settled counts are byte-equal: what a change to the kernel must keep.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

COLD_COMPILE = """
import time, numpy as np
start = time.perf_counter()
from SegTruthLogic.tools.grow import grow_labels
imported = time.perf_counter()
seeds = np.zeros((8, 8, 8), np.uint8); seeds[0, 0, 0], seeds[7, 7, 7] = 1, 2
grow_labels(np.zeros((8, 8, 8), np.int16), seeds)
print(imported - start, time.perf_counter() - imported)
"""


def timed(function, repeats: int) -> tuple[float, float, object]:
    """(best, median) seconds over ``repeats`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), result


def synthetic(size: int) -> np.ndarray:
    """Smooth blobs (1000 and 800 over a 0 background, like tissue in air) plus Gaussian noise, int16."""
    rng = np.random.default_rng(0)
    k, j, i = np.ogrid[:size, :size, :size]
    k, j, i = k / size, j / size, i / size
    image = 1000 * np.exp(-((i - 0.3) ** 2 + (j - 0.4) ** 2 + (k - 0.5) ** 2) / 0.02)
    image = image + 800 * np.exp(-((i - 0.7) ** 2 + (j - 0.6) ** 2 + (k - 0.5) ** 2) / 0.03)
    return np.rint(image + rng.normal(0, 30, (size, size, size))).astype(np.int16)


def ball(seeds: np.ndarray, centre, radius: float, label: int) -> None:
    k, j, i = np.ogrid[tuple(slice(0, n) for n in seeds.shape)]
    seeds[(k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2 <= radius**2] = label


def global_seeds(size: int) -> np.ndarray:
    """A ball in each blob and background balls near the eight corners: the region is the whole volume."""
    seeds = np.zeros((size,) * 3, np.uint8)
    ball(seeds, (0.5 * size, 0.4 * size, 0.3 * size), 4, 1)
    ball(seeds, (0.5 * size, 0.6 * size, 0.7 * size), 4, 2)
    for corner in np.ndindex(2, 2, 2):
        ball(seeds, tuple(0.08 * size + 0.84 * size * c for c in corner), 3, 3)
    return seeds


def correction(size: int) -> np.ndarray:
    """A correction stroke: more of label 2 towards the edge of its blob (a 24-voxel line, radius 2)."""
    seeds = np.zeros((size,) * 3, np.uint8)
    for t in np.linspace(0, 1, 13):
        ball(seeds, (0.5 * size, 0.6 * size + 24 * t, 0.7 * size + 12 * t), 2, 2)
    return seeds


def new_label(size: int) -> np.ndarray:
    """A stroke of a new label (4) through the background: an update that changes much of the volume."""
    seeds = np.zeros((size,) * 3, np.uint8)
    for t in np.linspace(0, 1, 13):
        ball(seeds, (0.5 * size, 0.15 * size, 0.4 * size + 48 * t), 2, 4)
    return seeds


def local_seeds(size: int) -> np.ndarray:
    """Blob 1 and a ring of background balls around it: a region of about half the volume's width."""
    seeds = np.zeros((size,) * 3, np.uint8)
    centre = np.array([0.5, 0.4, 0.3]) * size
    ball(seeds, centre, 4, 1)
    for axis, sign in np.ndindex(3, 2):
        offset = np.zeros(3)
        offset[axis] = (0.2 * size) * (1 if sign else -1)
        ball(seeds, centre + offset, 3, 2)
    return seeds


def dice(a: np.ndarray, b: np.ndarray, labels) -> str:
    scores = []
    for label in labels:
        x, y = a == label, b == label
        scores.append(2 * np.count_nonzero(x & y) / max(np.count_nonzero(x) + np.count_nonzero(y), 1))
    return " ".join(f"{s:.4f}" for s in scores)


# -- references ------------------------------------------------------------------------------------------------
def vtk_image(array: np.ndarray):
    import vtk
    from vtk.util import numpy_support

    image = vtk.vtkImageData()
    image.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True))
    return image


class SlicerGrowCut:
    """slicer.vtkImageGrowCutSegment on a (cropped) region; calling ``update`` again is its quick update."""

    def __init__(self, image: np.ndarray, box) -> None:
        import slicer

        self.box = box
        self.filter = slicer.vtkImageGrowCutSegment()
        self.filter.SetIntensityVolume(vtk_image(image[box]))

    def update(self, seeds: np.ndarray) -> np.ndarray:
        from vtk.util import numpy_support

        self.filter.SetSeedLabelVolume(vtk_image(seeds[self.box]))
        self.filter.Update()
        region = numpy_support.vtk_to_numpy(self.filter.GetOutput().GetPointData().GetScalars())
        out = np.zeros(seeds.shape, np.uint8)
        out[self.box] = region.reshape(seeds[self.box].shape)
        return out


class ItkGrowCut:
    """itk.FastGrowCut on a (cropped) region; updating the seed image and calling Update is its quick update."""

    def __init__(self, image: np.ndarray, box) -> None:
        import itk

        self.itk = itk
        self.box = box
        self.image = np.ascontiguousarray(image[box])
        self.filter = itk.FastGrowCut[itk.Image[itk.SS, 3], itk.Image[itk.UC, 3]].New()
        self.filter.SetInput(itk.image_view_from_array(self.image))

    def update(self, seeds: np.ndarray) -> np.ndarray:
        self.seeds = np.ascontiguousarray(seeds[self.box])
        self.filter.SetSeedImage(self.itk.image_view_from_array(self.seeds))
        self.filter.Update()
        out = np.zeros(seeds.shape, np.uint8)
        out[self.box] = self.itk.array_from_image(self.filter.GetOutput())
        return out


def load_itk() -> str | None:
    try:
        import itk

        itk.FastGrowCut[itk.Image[itk.SS, 3], itk.Image[itk.UC, 3]]
    except Exception as error:  # a missing or broken wheel: say so and go on
        return f"{type(error).__name__}: {error}"
    return None


# -- the run ---------------------------------------------------------------------------------------------------
SLICER, ITK = "Slicer vtkImageGrowCutSegment", "ITK FastGrowCut"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-whole", action="store_true", help="skip the slow whole-volume reference runs in B")
    parser.add_argument("--segtruth-only", action="store_true", help="time SegTruth only (no references)")
    parser.add_argument("--against", metavar="REV", help="only: this kernel vs git revision REV's, A B A B")
    args = parser.parse_args()
    if args.against:
        against(args.against, args.size, args.repeats)
        return
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    warm_up()
    image = synthetic(args.size)
    print(f"volume {args.size}^3 int16, seeds uint8; SegTruth best (median) of {args.repeats}, references timed once")
    references = not args.segtruth_only
    itk_error = load_itk() if references else "not run"
    if references and itk_error:
        print(f"ITK FastGrowCut could not be loaded: {itk_error}")
    scenario_a(image, args.size, args.repeats, references, itk_error is None)
    scenario_b(image, args.size, args.repeats, references, itk_error is None, not args.skip_whole)
    print("\n== end to end on MRML nodes (A's seeds as 3 segments; read seeds, grow, write 3 segments)")
    _mrml(image, global_seeds(args.size), args.repeats)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


def kernel_at(revision: str, folder: Path):
    """grow_kernel.py as it was at ``revision``, imported beside the current one (same package, own name)."""
    source = subprocess.run(
        ["git", "show", f"{revision}:SegTruthLogic/tools/grow_kernel.py"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    path = folder / "grow_kernel_reference.py"
    path.write_bytes(source)
    name = "SegTruthLogic.tools.grow_kernel_reference"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def against(revision: str, size: int, repeats: int) -> None:
    """Scenario A at 26 neighbours (the whole volume is the region): this kernel vs ``revision``'s."""
    import numba

    from SegTruthLogic.tools import grow_kernel

    print(
        f"machine: {os.cpu_count()} cores, numba threads {numba.get_num_threads()}, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    image, seeds = synthetic(size), global_seeds(size)
    with tempfile.TemporaryDirectory() as folder:
        reference = kernel_at(revision, Path(folder))
        kernels = {f"kernel at {revision}": reference, "this kernel": grow_kernel}
        small = synthetic(16), global_seeds(16)
        for module in kernels.values():  # compile (or load from numba's cache) before timing
            module.GrowCut(small[0], connectivity=26, margin=None).update(small[1])
        times: dict[str, list[float]] = {name: [] for name in kernels}
        cpu: dict[str, list[float]] = {name: [] for name in kernels}
        results = {}
        for _ in range(repeats):
            for name, module in kernels.items():
                cut = module.GrowCut(image, connectivity=26, margin=None)
                start, start_cpu = time.perf_counter(), time.process_time()
                labels = cut.update(seeds)
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
                digest = hashlib.sha256(labels.tobytes() + cut.costs.tobytes()).hexdigest()[:16]
                results[name] = (digest, cut.settled)
    print(f"{size}^3, 26 neighbours, first result on the whole volume; {repeats} runs each, interleaved")
    for name, values in times.items():
        runs = " ".join(f"{v:.2f}" for v in values)
        cores = statistics.median(c / w for c, w in zip(cpu[name], values))
        print(f"  {name:<24} CPU time / wall time (median): {cores:.2f} cores busy")
        print(
            f"  {name:<24} median {statistics.median(values):6.2f} s  (runs: {runs})  "
            f"labels+costs sha256 {results[name][0]}, settled {results[name][1]}"
        )
    old, new = (statistics.median(v) for v in times.values())
    same = len({r for r in results.values()}) == 1
    print(f"  ratio (median): {old / new:.2f}x; byte-equal labels, costs and settled count: {same}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


def warm_up() -> None:
    """Compile time with an empty numba cache (a fresh process), then load this process's kernels from cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", COLD_COMPILE], env=env, capture_output=True, text=True, check=True)
        import_s, compile_s = (float(v) for v in out.stdout.split())
    start = time.perf_counter()
    from SegTruthLogic.tools.grow import grow_labels

    imported = time.perf_counter()
    warm = np.zeros((8, 8, 8), np.uint8)
    warm[0, 0, 0], warm[7, 7, 7] = 1, 2
    cropped = np.zeros((16, 16, 16), np.uint8)
    cropped[4:12, 4:12, 4:12] = warm  # a region smaller than the image: non-contiguous views
    for connectivity in (6, 26):
        grow_labels(np.zeros((8, 8, 8), np.int16), warm, connectivity=connectivity)
        grow_labels(np.zeros((16, 16, 16), np.int16), cropped, connectivity=connectivity, margin=0.1)
    print(f"numba compile (empty cache, incl. first 8^3 run): {compile_s:.2f} s (import {import_s:.2f} s)")
    print(f"warm-up from numba's cache: import {imported - start:.2f} s, runs {time.perf_counter() - imported:.2f} s")


def scenario_a(image, size: int, repeats: int, references: bool, with_itk: bool) -> None:
    from SegTruthLogic.tools.grow import GrowCut, grow_labels

    seeds = global_seeds(size)
    more = np.where(correction(size) != 0, correction(size), seeds)
    print(f"\n== A: seeds spread over the volume (labels 1, 2, 3; {np.count_nonzero(seeds)} seed voxels)")
    rows: dict[str, tuple[float, float]] = {}
    results = {}
    for connectivity in (6, 26):
        reps = repeats if connectivity == 6 else 1
        best, median, cut = timed(lambda c=connectivity: _first(GrowCut(image, connectivity=c), seeds), reps)
        rows[f"SegTruth {connectivity}-conn first result"] = (best, median)
        results[connectivity] = cut.labels
        region = cut.box
    print("region (seeds' box + 15 % margin): " + "x".join(str(s.stop - s.start) for s in region))
    for connectivity in (6, 26):
        for name, added in (("+ stroke", more), ("+ new label", np.where(new_label(size) != 0, 4, seeds))):
            times = []
            for _ in range(repeats):
                fresh = _first(GrowCut(image, connectivity=connectivity), seeds)
                start = time.perf_counter()
                updated = fresh.update(added)
                times.append(time.perf_counter() - start)
                assert fresh.last_update == "incremental"
            rows[f"SegTruth {connectivity}-conn update ({name})"] = (min(times), statistics.median(times))
            same = np.array_equal(updated, grow_labels(image, added, connectivity=connectivity))
            print(f"{connectivity}-conn update ({name}) re-settled {fresh.settled} voxels; equals a full run: {same}")
    labels = {}
    if references:
        for name, make in ((SLICER, SlicerGrowCut), (ITK, ItkGrowCut))[: 2 if with_itk else 1]:
            seconds, reference = _time_once(lambda m=make: m(image, region), seeds)
            rows[f"{name} (region = whole)"] = (seconds, seconds)
            labels[name] = reference.update(seeds)
            seconds = _time_update(reference, more)
            rows[f"{name} update (+ stroke)"] = (seconds, seconds)
    _print_rows(rows)
    for ours in ("SegTruth 6-conn first result", "SegTruth 26-conn first result"):
        _ratios(rows, ours, [f"{name} (region = whole)" for name in labels])
    for connectivity in (6, 26):
        _ratios(
            rows, f"SegTruth {connectivity}-conn update (+ stroke)", [f"{name} update (+ stroke)" for name in labels]
        )
    if labels:
        print("Dice per label (1 2 3):")
    for name, reference in labels.items():
        for connectivity in (6, 26):
            print(f"  SegTruth {connectivity:>2}-conn vs {name}: {dice(results[connectivity], reference, (1, 2, 3))}")
    if len(labels) == 2:
        print(f"  {SLICER} vs {ITK}: {dice(labels[SLICER], labels[ITK], (1, 2, 3))}")


def scenario_b(image, size: int, repeats: int, references: bool, with_itk: bool, whole_volume: bool) -> None:
    from SegTruthLogic.tools.grow import GrowCut

    seeds = local_seeds(size)
    print("\n== B: seeds around one blob (labels 1, 2): Slicer crops to the seeds' box + margin")
    rows: dict[str, tuple[float, float]] = {}
    results = {}
    for connectivity in (6, 26):
        best, median, cut = timed(lambda c=connectivity: _first(GrowCut(image, connectivity=c), seeds), repeats)
        rows[f"SegTruth {connectivity}-conn (crops itself)"] = (best, median)
        results[connectivity] = cut.labels
    region = cut.box
    inside = np.zeros(image.shape, bool)
    inside[region] = True
    print("region: " + "x".join(str(s.stop - s.start) for s in region))
    labels = {}
    if references:
        for name, make in ((SLICER, SlicerGrowCut), (ITK, ItkGrowCut))[: 2 if with_itk else 1]:
            for extent, box in (("cropped", region), ("whole volume", (slice(None),) * 3))[: 2 if whole_volume else 1]:
                seconds, reference = _time_once(lambda m=make, b=box: m(image, b), seeds)
                rows[f"{name} {extent}"] = (seconds, seconds)
                labels[f"{name} {extent}"] = reference.update(seeds)
    _print_rows(rows)
    for connectivity in (6, 26):
        _ratios(rows, f"SegTruth {connectivity}-conn (crops itself)", list(labels))
    if labels:
        print("Dice per label (1 2) inside the region:")
    for name, reference in labels.items():
        for connectivity in (6, 26):
            clipped = np.where(inside, reference, 0)
            print(f"  SegTruth {connectivity:>2}-conn vs {name}: {dice(results[connectivity], clipped, (1, 2))}")


def _first(cut, seeds):
    cut.update(seeds)
    return cut


def _time_once(make, seeds) -> tuple[float, object]:
    """Seconds of one first run (references are slow: timed once), and the filter for a later update."""
    reference = make()
    start = time.perf_counter()
    reference.update(seeds)
    return time.perf_counter() - start, reference


def _time_update(reference, seeds) -> float:
    start = time.perf_counter()
    reference.update(seeds)
    return time.perf_counter() - start


def _print_rows(rows: dict[str, tuple[float, float]]) -> None:
    for name, (best, median) in rows.items():
        print(f"  {name:<48} {best:8.2f} s   (median {median:.2f} s)")


def _ratios(rows, ours: str, references) -> None:
    for name in references:
        if name in rows:
            print(f"  {name} / {ours}: {rows[name][0] / rows[ours][0]:.1f}x")


def _mrml(image: np.ndarray, seeds: np.ndarray, repeats: int) -> None:
    from SegTruthLogic import Session
    from SegTruthLogic.core.geometry import Grid
    from SegTruthLogic.scene.segments import add_segment, new_segmentation, set_segment_mask
    from SegTruthLogic.scene.volumes import volume_from_array
    from SegTruthLogic.tools.grow import grow_from_seeds

    session = Session.new_headless()
    grid = Grid(tuple(reversed(image.shape)), np.diag([0.8, 0.8, 1.0, 1.0]))  # type: ignore[arg-type]
    volume = volume_from_array(session, image, grid, "synthetic")

    def run(connectivity: int) -> float:
        segmentation = new_segmentation(session, volume)
        for label in (1, 2, 3):
            set_segment_mask(session, segmentation, add_segment(segmentation, f"label {label}"), seeds == label, volume)
        start = time.perf_counter()
        grow_from_seeds(session, segmentation, volume, connectivity=connectivity)
        seconds = time.perf_counter() - start
        session.remove(segmentation)
        return seconds

    for connectivity in (6, 26):
        times = [run(connectivity) for _ in range(repeats)]
        print(f"  grow_from_seeds {connectivity}-conn: {min(times):.2f} s (median {statistics.median(times):.2f} s)")


if __name__ == "__main__":
    main()
