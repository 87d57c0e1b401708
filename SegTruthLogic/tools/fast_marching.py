"""Fast Marching: a front grown from a segment's painted voxels, fastest through intensities like theirs; the
segment is then the first N voxels the front reached, N chosen afterwards without marching again.

The algorithm (SegmentEditorExtraEffects' Fast Marching runs vtkPichonFastMarching; this is SegTruth's own):

- speed: with mu and s the mean and standard deviation of the source volume under the seeds (s at least
  ``MIN_SIGMA``), a voxel of value v has speed F = exp(-((v - mu) / (k s))^2 / 2), k = ``sigma_factor``
  (default 2): 1 at the seeds' mean, ~0.6 two standard deviations away, ~0.04 five away, never 0 (at least
  ``MIN_SPEED``). Voxels the Segment Editor's masking forbids have speed 0: the front never enters them.
- arrival time: the first-order Fast Marching solution of |grad T| = 1 / F on the voxel grid, with the
  spacing in mm (T in mm / speed): seeds at T = 0; the voxel with the smallest tentative time is frozen next,
  and its face neighbours are updated with the upwind quadratic over the frozen neighbours along each axis.
  The freezing order is the arrival order.
- the march stops once ``max_volume_percent`` of the image's voxels are frozen (Slicer's maximum volume).

``FastMarchingResult`` keeps the arrival order and times: ``mask(n)`` is exactly the first n voxels to
arrive, so sliding the segment volume (``set_marched_volume``) costs one write and no march. On a uniform
image the front from one voxel is a ball (first-order: up to a few % flatter along the diagonals); a wall
of other intensities holds it until the region before the wall is filled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from slicer.util import arrayFromVolume

from ..core.errors import SegTruthError
from ..core.geometry import Grid
from ..core.progress import CancelToken, ProgressCallback, report
from ..scene.editing import DEFAULT_OPTIONS, EditOptions, apply_mask
from ..scene.masking import forbidden_voxels
from ..scene.segments import find_segment, segment_mask
from ..scene.session import Session

DEFAULT_MAX_VOLUME_PERCENT = 5.0
DEFAULT_SIGMA_FACTOR = 2.0
MIN_SIGMA = 1.0  # intensity units: seeds of one value still let the front through near-equal values
MIN_SPEED = 1e-6
CHUNK = 1 << 16  # voxels frozen between progress reports / cancel checks


@numba.njit(cache=True)
def _sift_up(heap, pos, times, n):
    item = heap[n]
    t = times[item]
    while n > 0:
        parent = (n - 1) >> 1
        other = heap[parent]
        if times[other] <= t:
            break
        heap[n] = other
        pos[other] = n
        n = parent
    heap[n] = item
    pos[item] = n


@numba.njit(cache=True)
def _sift_down(heap, pos, times, n, size):
    item = heap[n]
    t = times[item]
    while True:
        child = 2 * n + 1
        if child >= size:
            break
        if child + 1 < size and times[heap[child + 1]] < times[heap[child]]:
            child += 1
        other = heap[child]
        if times[other] >= t:
            break
        heap[n] = other
        pos[other] = n
        n = child
    heap[n] = item
    pos[item] = n


@numba.njit(cache=True)
def _solve(times, frozen, speed, index, shape, strides, h):
    """Upwind first-order arrival time at ``index`` from its frozen face neighbours."""
    k = index // strides[0]
    j = (index // strides[1]) % shape[1]
    i = index % shape[2]
    coords = (k, j, i)
    ts = np.empty(3)
    hs = np.empty(3)
    m = 0
    for a in range(3):
        best = np.inf
        c = coords[a]
        if c > 0:
            other = index - strides[a]
            if frozen[other] and times[other] < best:
                best = times[other]
        if c < shape[a] - 1:
            other = index + strides[a]
            if frozen[other] and times[other] < best:
                best = times[other]
        if best < np.inf:
            # insertion in ascending order of time
            p = m
            while p > 0 and ts[p - 1] > best:
                ts[p] = ts[p - 1]
                hs[p] = hs[p - 1]
                p -= 1
            ts[p] = best
            hs[p] = h[a]
            m += 1
    inv_f2 = 1.0 / (speed[index] * speed[index])
    result = np.inf
    qa = 0.0
    qb = 0.0
    qc = 0.0
    for n in range(m):
        w = 1.0 / (hs[n] * hs[n])
        qa += w
        qb -= 2.0 * ts[n] * w
        qc += ts[n] * ts[n] * w
        disc = qb * qb - 4.0 * qa * (qc - inv_f2)
        if disc < 0:
            break
        t = (-qb + math.sqrt(disc)) / (2.0 * qa)
        if n + 1 < m and t > ts[n + 1]:
            result = t
            continue
        result = t
        break
    return result


@numba.njit(cache=True)
def _march(speed, shape, h, times, frozen, heap, pos, state, order, budget):
    """Freeze up to ``budget`` voxels (state: [heap size, frozen count, limit]); returns how many were frozen."""
    strides = (shape[1] * shape[2], shape[2], 1)
    size = state[0]
    count = state[1]
    limit = state[2]
    done = 0
    while size > 0 and count < limit and done < budget:
        index = heap[0]
        size -= 1
        pos[index] = -1
        if size > 0:
            heap[0] = heap[size]
            pos[heap[0]] = 0
            _sift_down(heap, pos, times, 0, size)
        frozen[index] = True
        order[count] = index
        count += 1
        done += 1
        k = index // strides[0]
        j = (index // strides[1]) % shape[1]
        i = index % shape[2]
        coords = (k, j, i)
        for a in range(3):
            for step in (-1, 1):
                c = coords[a] + step
                if c < 0 or c >= shape[a]:
                    continue
                other = index + step * strides[a]
                if frozen[other] or speed[other] <= 0.0:
                    continue
                t = _solve(times, frozen, speed, other, shape, strides, h)
                if t < times[other]:
                    times[other] = t
                    if pos[other] < 0:
                        heap[size] = other
                        pos[other] = size
                        size += 1
                    _sift_up(heap, pos, times, pos[other])
    state[0] = size
    state[1] = count
    return done


def seed_speed(values: np.ndarray, seeds: np.ndarray, sigma_factor: float = DEFAULT_SIGMA_FACTOR) -> np.ndarray:
    """The speed image (k, j, i float64) from the seeds' intensity statistics (see the module's rule)."""
    if not math.isfinite(sigma_factor) or sigma_factor <= 0:
        raise SegTruthError(f"Fast Marching's sigma factor must be a positive number, not {sigma_factor!r}.")
    under = values[seeds].astype(np.float64)
    mean, sigma = float(under.mean()), max(float(under.std()), MIN_SIGMA)
    z = (values.astype(np.float64) - mean) / (sigma_factor * sigma)
    return np.maximum(np.exp(-0.5 * z * z), MIN_SPEED)


def arrival(
    speed: np.ndarray,
    seeds: np.ndarray,
    spacing,
    max_voxels: int,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Arrival order (flat k, j, i indices, seeds first) of at most ``max_voxels`` voxels, and their times.

    ``speed`` 0 marks voxels the front may not enter; ``spacing`` is (i, j, k) in mm.
    """
    shape = np.array(speed.shape, dtype=np.int64)
    flat_speed = np.ascontiguousarray(speed, dtype=np.float64).ravel()
    start = np.flatnonzero(np.asarray(seeds).ravel() & (flat_speed > 0))
    if not len(start):
        raise SegTruthError("Fast Marching needs seed voxels inside the editable area; paint some into the segment.")
    total = flat_speed.size
    limit = max(int(max_voxels), len(start))
    times = np.full(total, np.inf)
    frozen = np.zeros(total, dtype=np.bool_)
    heap = np.empty(total, dtype=np.int64)
    pos = np.full(total, -1, dtype=np.int64)
    times[start] = 0.0
    heap[: len(start)] = start  # all at time 0: already a heap
    pos[start] = np.arange(len(start))
    state = np.array([len(start), 0, min(limit, total)], dtype=np.int64)
    order = np.empty(min(limit, total), dtype=np.int64)
    h = np.array(spacing, dtype=np.float64)[::-1].copy()  # k, j, i
    while True:
        done = _march(flat_speed, shape, h, times, frozen, heap, pos, state, order, CHUNK)
        report(progress, state[1] / state[2], "Fast Marching")
        if cancel is not None:
            cancel.raise_if_cancelled("Fast Marching")
        if done < CHUNK:
            break
    order = order[: state[1]]
    return order, times[order]


@dataclass
class FastMarchingResult:
    """One march: the arrival order of the frozen voxels (flat k, j, i indices) and their arrival times."""

    shape: tuple[int, int, int]
    order: np.ndarray
    times: np.ndarray

    @property
    def voxels(self) -> int:
        """How many voxels the front reached (the largest segment volume the slider can choose)."""
        return len(self.order)

    def mask(self, n_voxels: int | None = None) -> np.ndarray:
        """The first ``n_voxels`` voxels to arrive (all reached voxels by default), as a (k, j, i) mask."""
        n = self.voxels if n_voxels is None else int(n_voxels)
        if n < 0:
            raise SegTruthError(f"A segment volume is a voxel count >= 0, not {n_voxels!r}.")
        out = np.zeros(int(np.prod(self.shape)), dtype=bool)
        out[self.order[: min(n, self.voxels)]] = True
        return out.reshape(self.shape)

    def voxels_for_fraction(self, fraction: float) -> int:
        """The voxel count at ``fraction`` (0..1) of the march, as the segment-volume slider reads it."""
        if not math.isfinite(fraction) or not 0 <= fraction <= 1:
            raise SegTruthError(f"The segment volume is a fraction from 0 to 1 of the march, not {fraction!r}.")
        return round(fraction * self.voxels)


@dataclass
class MarchInputs:
    """What a march needs, read from the scene: speed (0 where forbidden), seeds, spacing (i, j, k), voxel limit."""

    speed: np.ndarray
    seeds: np.ndarray
    spacing: np.ndarray
    max_voxels: int

    def run(self, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> FastMarchingResult:
        """The march itself: arrays only, so a worker thread may run it."""
        order, times = arrival(self.speed, self.seeds, self.spacing, self.max_voxels, progress, cancel)
        return FastMarchingResult(tuple(self.speed.shape), order, times)  # type: ignore[arg-type]


def march_inputs(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    max_volume_percent: float = DEFAULT_MAX_VOLUME_PERCENT,
    sigma_factor: float = DEFAULT_SIGMA_FACTOR,
    options: EditOptions = DEFAULT_OPTIONS,
) -> MarchInputs:
    """The seeds (``segment``'s voxels), the speed and the voxel limit of a march, checked."""
    if not math.isfinite(max_volume_percent) or not 0 < max_volume_percent <= 100:
        raise SegTruthError(
            f"Fast Marching's maximum volume is a percentage of the image in (0, 100], not {max_volume_percent!r}."
        )
    segment_id = find_segment(segmentation_node, segment)
    seeds = segment_mask(session, segmentation_node, segment_id, volume)
    if not seeds.any():
        raise SegTruthError(
            f"Fast Marching grows from the segment's voxels, and {segment!r} is empty; paint seeds first."
        )
    values = arrayFromVolume(volume)
    speed = seed_speed(values, seeds, sigma_factor)
    forbidden = forbidden_voxels(segmentation_node, segment_id, volume, options)
    if forbidden is not None:
        speed[forbidden] = 0.0
    max_voxels = math.ceil(values.size * max_volume_percent / 100.0)
    return MarchInputs(speed, seeds, Grid.from_node(volume).spacing, max_voxels)


def march(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    max_volume_percent: float = DEFAULT_MAX_VOLUME_PERCENT,
    sigma_factor: float = DEFAULT_SIGMA_FACTOR,
    options: EditOptions = DEFAULT_OPTIONS,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> FastMarchingResult:
    """March from ``segment``'s voxels (the seeds) over the volume; writes nothing (see ``fast_marching``)."""
    inputs = march_inputs(session, segmentation_node, volume, segment, max_volume_percent, sigma_factor, options)
    return inputs.run(progress, cancel)


def set_marched_volume(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    result: FastMarchingResult,
    n_voxels: int | None = None,
    options: EditOptions = DEFAULT_OPTIONS,
) -> int:
    """Set ``segment`` to the march's first ``n_voxels`` (default: all) voxels; no march. Returns the count."""
    mask = result.mask(n_voxels)
    apply_mask(session, segmentation_node, find_segment(segmentation_node, segment), volume, mask, "set", options)
    return int(np.count_nonzero(mask))


def fast_marching(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    max_volume_percent: float = DEFAULT_MAX_VOLUME_PERCENT,
    volume_fraction: float = 1.0,
    sigma_factor: float = DEFAULT_SIGMA_FACTOR,
    options: EditOptions = DEFAULT_OPTIONS,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> FastMarchingResult:
    """March from ``segment``'s voxels and set it to the first ``volume_fraction`` of the voxels reached.

    Returns the march; pass it to ``set_marched_volume`` to choose another volume without marching again.
    """
    result = march(
        session, segmentation_node, volume, segment, max_volume_percent, sigma_factor, options, progress, cancel
    )
    set_marched_volume(
        session, segmentation_node, volume, segment, result, result.voxels_for_fraction(volume_fraction), options
    )
    return result
