"""Grow from seeds on two threads gives the single-threaded kernel's result byte for byte.

The digests below were taken from the kernel before it used two threads (commit 5a9fc5b), on a fixed
synthetic image: any change to the kernel must keep them. The two-slab run is also compared with the
single-threaded one on inputs chosen to make the halves correct each other many times (seeds in one half
only, masks, float images, distance penalties, many labels, thin slabs).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from SegTruthLogic import Cancelled
from SegTruthLogic.core.progress import CancelToken
from SegTruthLogic.tools import grow_kernel
from SegTruthLogic.tools.grow_kernel import GrowCut


def synthetic(size: int) -> np.ndarray:
    """benchmarks/bench_grow.py's image: two smooth blobs over a 0 background plus Gaussian noise, int16."""
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
    """benchmarks/bench_grow.py's scenario A: a ball in each blob, background balls near the eight corners."""
    seeds = np.zeros((size,) * 3, np.uint8)
    ball(seeds, (0.5 * size, 0.4 * size, 0.3 * size), 4, 1)
    ball(seeds, (0.5 * size, 0.6 * size, 0.7 * size), 4, 2)
    for corner in np.ndindex(2, 2, 2):
        ball(seeds, tuple(0.08 * size + 0.84 * size * c for c in corner), 3, 3)
    return seeds


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


@pytest.fixture(params=["one thread", "two slabs"])
def threads(request, monkeypatch):
    monkeypatch.setattr(grow_kernel, "PARALLEL_MIN_VOXELS", 0 if request.param == "two slabs" else 1 << 62)
    return request.param


# the kernel of commit 5a9fc5b on synthetic(96) with global_seeds(96), margin None
BEFORE = {
    26: ("a722d972ac8ee86c", "269ba42367a4ed36", 884736),
    6: ("1d6f3d1ed18952e0", "cb6e62eb87504296", 884736),
}


@pytest.mark.parametrize("connectivity", [26, 6])
def test_results_are_byte_equal_to_the_kernel_before(threads, connectivity):
    cut = GrowCut(synthetic(96), connectivity=connectivity, margin=None)
    labels = cut.update(global_seeds(96))
    assert (digest(labels), digest(cut.costs), cut.settled) == BEFORE[connectivity]


def _both(image, seeds, monkeypatch, **options) -> tuple[GrowCut, GrowCut]:
    cuts = []
    for minimum in (1 << 62, 0):
        monkeypatch.setattr(grow_kernel, "PARALLEL_MIN_VOXELS", minimum)
        cut = GrowCut(image, **options)
        cut.update(seeds)
        cuts.append(cut)
    return cuts[0], cuts[1]


def _assert_same(one: GrowCut, two: GrowCut) -> None:
    assert np.array_equal(one.labels, two.labels)
    assert one.labels.dtype == two.labels.dtype
    assert np.array_equal(one.costs, two.costs)
    assert one.settled == two.settled


@pytest.mark.parametrize("case", range(6))
def test_two_slabs_equal_one_thread_where_the_halves_must_correct_each_other(monkeypatch, case):
    rng = np.random.default_rng(case)
    shape = [(9, 23, 17), (20, 14, 30), (31, 12, 12), (8, 40, 40), (16, 16, 16), (25, 19, 21)][case]
    image = rng.normal(100, 40, shape)
    image = image.astype(np.float32) if case % 2 else np.rint(image).astype(np.int16)
    seeds = np.zeros(shape, np.uint16)
    upper = shape[0] // 3  # most seeds in the upper half: the lower half is grown from across the split
    for label in range(1, 3 + case):
        for _ in range(3):
            seeds[rng.integers(0, upper + 1), rng.integers(0, shape[1]), rng.integers(0, shape[2])] = label * 7
    seeds[-1, 0, 0] = 7  # one seed deep in the lower half, so both halves start with something
    mask = rng.random(shape) > 0.15 if case in (1, 4) else None
    options = {
        "spacing": (0.7, 1.1, 2.5) if case in (2, 5) else (1.0, 1.0, 1.0),
        "mask": mask,
        "connectivity": 6 if case == 3 else 26,
        "distance_penalty": 3.0 if case in (2, 4) else 0.0,
        "margin": None,
    }
    one, two = _both(image, seeds, monkeypatch, **options)
    _assert_same(one, two)
    assert one.settled == (image.size if mask is None else int(mask.sum()))


def test_updates_after_a_two_slab_run_equal_full_runs(monkeypatch):
    image = synthetic(40)
    seeds = global_seeds(40)
    monkeypatch.setattr(grow_kernel, "PARALLEL_MIN_VOXELS", 0)
    cut = GrowCut(image, connectivity=26, margin=None)
    cut.update(seeds)
    more = seeds.copy()
    more[30:33, 5:9, 20:26] = 4  # a new label
    more[18:20, 24:27, 27:29] = 2
    updated = cut.update(more)
    assert cut.last_update == "incremental"
    monkeypatch.setattr(grow_kernel, "PARALLEL_MIN_VOXELS", 1 << 62)
    fresh = GrowCut(image, connectivity=26, margin=None)
    assert np.array_equal(updated, fresh.update(more))
    assert np.array_equal(cut.costs, fresh.costs)


def test_two_slab_runs_report_progress_and_cancel(monkeypatch):
    monkeypatch.setattr(grow_kernel, "PARALLEL_MIN_VOXELS", 0)
    monkeypatch.setattr(grow_kernel, "_CHUNK", 1 << 10)  # chunks small enough to see the cancel between them
    image, seeds = synthetic(48), global_seeds(48)
    seen: list[float] = []
    GrowCut(image, margin=None).update(seeds, progress=lambda fraction, message: seen.append(fraction))
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    token = CancelToken()
    token.cancel()
    cut = GrowCut(image, margin=None)
    with pytest.raises(Cancelled):
        cut.update(seeds, cancel=token)
    assert cut.settled == 0 and not cut.labels.any()  # a cancelled run forgets everything
