"""The grow-from-seeds kernel on arrays (numpy in, numpy out): every unlabelled voxel takes the label of the seed it is cheapest to reach.

The semantics of the FastGrowCut behind Slicer's "Grow from seeds" effect: a path costs the sum of
``|intensity difference|`` between neighbouring voxels (plus, optionally, ``distance_penalty`` per mm
travelled), and all labels compete in one shortest-path run. The work is confined to the seeds' bounding
box plus a margin, as Slicer does, and a ``GrowCut`` keeps its cost and label maps so that added seeds
only relax what they improve (the Segment Editor's live preview after each paint stroke).

Costs are integers, so results are exact and do not depend on processing order: integer images are used
as they are, float images (and the distance penalty) are scaled by a power of two into 16-bit levels.
A voxel's key is ``cost * slots + slot`` where slots are the labels in increasing value: a tie in cost
goes to the smaller label value, in a full run and in an update alike, so an update gives the same
voxels as a full run with all seeds. With integer keys the queue is a ring of buckets (Dial's
algorithm): constant time per voxel, several times faster here than a binary heap on the same keys. A full
run on a large region uses two threads, one per half, which exchange their shared rows until neither improves
the other (``GrowCut._slab_run``): the least keys are unique, so the result is the single-threaded one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait

import numba
import numpy as np
from numba import njit

from ..core.errors import Cancelled, SegTruthError
from ..core.intensities import check_finite
from ..core.progress import CancelToken, ProgressCallback, report
from .prefetch import prefetch

MAX_LABEL = 65535
DEFAULT_MARGIN = 0.15
_LEVEL_BITS = 16
_LEVEL_MASK = (1 << _LEVEL_BITS) - 1
_UNREACHED = (1 << 47) - 1  # key of a voxel no seed has reached; keys stay below it
_CHUNK = 1 << 18  # voxels settled between progress reports and cancel checks
_MAX_VOXELS = (1 << 31) - 1  # int32 voxel indices in the queue
_DONE, _PAUSED, _POOL_FULL, _OVERFLOW = 0, 1, 2, 3
# Full runs on regions of at least this many voxels use two threads (one per half) where numba may use two.
PARALLEL_MIN_VOXELS = 1 << 21


# -- the shortest-path core ------------------------------------------------------------------------------------
# ``cells`` packs each voxel as ``key << 16 | level``: key 0 = blocked (masked out or padding), a key below
# ``slots`` = a seed, ``_UNREACHED`` = not reached yet. The queue is a ring of buckets indexed by key, each a
# linked list of entries (voxel, next) drawn from a pool; an entry whose voxel has since got a smaller key
# is stale and skipped. ``state`` = [current key, entries queued, free-list head, entries used, voxels settled].
# Settling order scatters voxels over the volume, so ``_run`` prefetches the neighbourhood (``near``: the
# offsets of its rows) of the voxel two entries ahead in the bucket, and the queue entries of the third.
@njit(cache=True, nogil=True)
def _plant(cells, nodes, keys, head, entry_node, entry_next, state):
    """Give ``nodes`` their seed ``keys`` and queue them (blocked voxels stay blocked)."""
    ring = head.shape[0] - 1
    count, free, used = state[1], state[2], state[3]
    for n in range(nodes.shape[0]):
        node = nodes[n]
        key = keys[n]
        cell = cells[node]
        old = cell >> _LEVEL_BITS
        if old == 0 or old == key:
            continue
        cells[node] = (key << _LEVEL_BITS) | (cell & _LEVEL_MASK)
        if free >= 0:
            entry = free
            free = entry_next[entry]
        else:
            entry = used
            used += 1
        entry_node[entry] = node
        bucket = key & ring
        entry_next[entry] = head[bucket]
        head[bucket] = entry
        count += 1
    state[0] = 0
    state[1], state[2], state[3] = count, free, used


@njit(cache=True, nogil=True)
def _run(cells, offsets, near, steps, slots, head, entry_node, entry_next, state, arrivals, arrival_keys, max_pops):
    """Settle voxels in key order until the queue is empty or ``max_pops`` were settled; returns a code.

    ``arrivals`` (voxels) with ``arrival_keys`` (ascending) are offered keys from outside, from a
    neighbouring slab (see ``_slab_run``): each is queued, if it improves its voxel, once the current key
    comes within the ring's reach of it, so the ring only ever holds keys in [current, current + ring).
    ``state[5]`` is the next arrival to offer.
    """
    ring = head.shape[0] - 1
    span = head.shape[0]
    capacity = entry_node.shape[0]
    n_offsets = offsets.shape[0]
    n_near = near.shape[0]
    n_arrivals = arrivals.shape[0]
    current, count, free, used, offered = state[0], state[1], state[2], state[3], state[5]
    bucket = current & ring
    pops = 0
    code = _DONE
    while True:
        if capacity - count < n_offsets + 1:
            code = _POOL_FULL
            break
        if offered < n_arrivals:
            if count == 0 and arrival_keys[offered] != current:
                current = arrival_keys[offered]  # nothing queued: go to the next arrival (lower at a round's start)
                bucket = current & ring
            if arrival_keys[offered] - current < span:
                node = arrivals[offered]
                key = arrival_keys[offered]
                offered += 1
                cell = cells[node]
                packed = (key << _LEVEL_BITS) | (cell & _LEVEL_MASK)
                if packed < cell:
                    cells[node] = packed
                    if free >= 0:
                        entry = free
                        free = entry_next[entry]
                    else:
                        entry = used
                        used += 1
                    entry_node[entry] = node
                    target = key & ring
                    entry_next[entry] = head[target]
                    head[target] = entry
                    count += 1
                continue
        if count == 0:
            break
        if pops >= max_pops:
            code = _PAUSED
            break
        entry = head[bucket]
        while entry < 0:
            current += 1
            bucket = (bucket + 1) & ring
            entry = head[bucket]
        following = entry_next[entry]
        head[bucket] = following
        node = entry_node[entry]
        entry_next[entry] = free
        free = entry
        count -= 1
        if following >= 0:
            second = entry_next[following]
            ahead = entry_node[following] if second < 0 else entry_node[second]
            for m in range(n_near):
                prefetch(cells, ahead + near[m])
            if second >= 0 and entry_next[second] >= 0:
                prefetch(entry_node, entry_next[second])
                prefetch(entry_next, entry_next[second])
        cell = cells[node]
        if (cell >> _LEVEL_BITS) != current:
            continue  # stale: the voxel was reached more cheaply after this entry was queued
        pops += 1
        base = current + slots if current < slots else current  # leaving a seed costs one unit
        level = cell & _LEVEL_MASK
        for n in range(n_offsets):
            neighbour = node + offsets[n]
            other = cells[neighbour]
            other_level = other & _LEVEL_MASK
            key = base + (abs(level - other_level) + steps[n]) * slots
            packed = (key << _LEVEL_BITS) | other_level
            if packed < other:
                if key >= _UNREACHED:
                    code = _OVERFLOW
                    break
                cells[neighbour] = packed
                if free >= 0:
                    entry = free
                    free = entry_next[entry]
                else:
                    entry = used
                    used += 1
                entry_node[entry] = neighbour
                target = key & ring
                entry_next[entry] = head[target]
                head[target] = entry
                count += 1
        if code == _OVERFLOW:
            break
    state[0], state[1], state[2], state[3], state[5] = current, count, free, used, offered
    state[4] += pops
    return code


@njit(cache=True, nogil=True)
def _count_reached(cells):
    """Voxels with a key from a seed (not blocked, not unreached): what a full run settles."""
    total = 0
    for n in range(cells.shape[0]):
        key = cells[n] >> _LEVEL_BITS
        if key != 0 and key != _UNREACHED:
            total += 1
    return total


@njit(cache=True, nogil=True)
def _fill(cells, values, allowed, has_mask, low, scale, exact):
    """Pack the region's intensity levels into ``cells`` (inside its padding), all unreached or blocked."""
    depth, rows, cols = values.shape
    for k in range(depth):
        for j in range(rows):
            for i in range(cols):
                if exact:
                    level = np.int64(values[k, j, i]) - np.int64(low)
                else:
                    level = np.int64(np.rint((np.float64(values[k, j, i]) - low) * scale))
                key = 0 if has_mask and not allowed[k, j, i] else _UNREACHED
                cells[k + 1, j + 1, i + 1] = (key << _LEVEL_BITS) | level


@njit(cache=True, nogil=True)
def _decode(cells, lookup, slots, out):
    """Label values of the region's voxels (0 where blocked or unreached) into ``out``."""
    depth, rows, cols = out.shape
    for k in range(depth):
        for j in range(rows):
            for i in range(cols):
                key = cells[k + 1, j + 1, i + 1] >> _LEVEL_BITS
                out[k, j, i] = 0 if key == 0 or key == _UNREACHED else lookup[key & (slots - 1)]


@njit(cache=True, nogil=True)
def _reslot(cells, remap, old_slots, new_slots):
    """Re-key every voxel for a new slot count and order (keeps costs, blocked and unreached voxels)."""
    for n in range(cells.shape[0]):
        key = cells[n] >> _LEVEL_BITS
        if key != 0 and key != _UNREACHED:
            key = (key // old_slots) * new_slots + remap[key & (old_slots - 1)]
            cells[n] = (key << _LEVEL_BITS) | (cells[n] & _LEVEL_MASK)


@njit(cache=True, nogil=True)
def _scan(seeds, present, first, last):
    """One pass over a seed map: which labels occur, and the bounding box (k, j, i) of all seeds."""
    depth, rows, cols = seeds.shape
    for k in range(depth):
        for j in range(rows):
            for i in range(cols):
                value = seeds[k, j, i]
                if value != 0:
                    present[value] = True
                    first[0] = min(first[0], k)
                    first[1] = min(first[1], j)
                    first[2] = min(first[2], i)
                    last[0] = max(last[0], k)
                    last[1] = max(last[1], j)
                    last[2] = max(last[2], i)


# -- seed maps -------------------------------------------------------------------------------------------------
def _as_seed_map(seeds: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Seeds as uint16 labels on the image's shape; a clear error for anything else."""
    seeds = np.asarray(seeds)
    if seeds.shape != tuple(shape):
        raise SegTruthError(
            f"The seed map has shape {seeds.shape} (k, j, i) but the image has shape {tuple(shape)}; "
            "seeds must be on the image's grid."
        )
    if seeds.dtype == bool:
        return seeds.astype(np.uint16)
    if seeds.dtype.kind not in "ui":
        raise SegTruthError(f"The seed map must hold integer label values, not {seeds.dtype}.")
    if seeds.size and (seeds.min() < 0 or seeds.max() > MAX_LABEL):
        raise SegTruthError(f"Seed labels must be 0 (unknown) to {MAX_LABEL}; found {seeds.min()}..{seeds.max()}.")
    return seeds.astype(np.uint16, copy=False)


def _scan_seeds(seeds: np.ndarray, margin: float | None) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """The seed labels present, and the region to compute: the seeds' bounding box grown by ``margin``
    times its size on each side and clipped to the image (k, j, i; end exclusive), or the whole image."""
    present = np.zeros(MAX_LABEL + 1, dtype=bool)
    first = np.array(seeds.shape, dtype=np.int64)
    last = np.full(3, -1, dtype=np.int64)
    _scan(seeds, present, first, last)
    labels = np.flatnonzero(present)
    if len(labels) < 2:
        found = "no seeds" if len(labels) == 0 else f"only label {int(labels[0])}"
        raise SegTruthError(f"Grow from seeds needs seeds of at least two labels; the seed map has {found}.")
    if margin is None:
        return labels, tuple((0, n) for n in seeds.shape)
    box = []
    for axis in range(3):
        low, high = int(first[axis]), int(last[axis]) + 1
        grow = int(np.ceil((high - low) * margin))
        box.append((max(low - grow, 0), min(high + grow, seeds.shape[axis])))
    return labels, tuple(box)


def _next_pow2(n: int) -> int:
    return 1 << max(int(n - 1).bit_length(), 0)


def _slot_count(n_labels: int) -> int:
    """Slots per cost unit: a power of two above the label count, with room for a few new labels."""
    return max(4, _next_pow2(n_labels + 1))


def _intensity_scale(span: float, integer: bool, penalty: float, slots: int) -> float:
    """Levels per intensity unit: 1 for integer images (exact), else a power of two filling 16 bits."""
    if integer and penalty == 0 and span <= _LEVEL_MASK:
        scale = 1.0
    else:
        scale = float(2.0 ** np.floor(np.log2(_LEVEL_MASK / span))) if span > 0 else 1.0
    # Beyond 255 labels, coarser levels keep the bucket ring (slots x levels) at a sane size.
    return scale / 2.0 ** max(0, slots.bit_length() - 9)


class _Restart(Exception):
    """An update that only a full run gets exactly right."""


class GrowCut:
    """Grow-from-seeds state on one image: give it more seeds and only the voxels they win change.

    intensity: (k, j, i) image. spacing: voxel size in mm along i, j, k (Slicer/ITK order). mask: where
    growing is allowed (True), e.g. the Segment Editor's editable area; seeds outside it are ignored.
    connectivity: 6 (faces) or 26 (as Slicer's FastGrowCut). distance_penalty: extra cost per mm, which
    keeps labels near their seeds (Slicer's "seed locality"). margin: fraction of the seeds' box size
    added on each side of the computed region; None computes on the whole image.
    """

    def __init__(
        self,
        intensity: np.ndarray,
        spacing: Sequence[float] = (1.0, 1.0, 1.0),
        mask: np.ndarray | None = None,
        *,
        connectivity: int = 26,
        distance_penalty: float = 0.0,
        margin: float | None = DEFAULT_MARGIN,
    ) -> None:
        intensity = np.asarray(intensity)
        if intensity.ndim != 3 or intensity.dtype.kind not in "uif":
            raise SegTruthError(f"Grow from seeds needs a 3D scalar image, not {intensity.dtype} of {intensity.shape}.")
        check_finite(intensity, "The image")  # arrays given here directly (volumes from files are checked on load)
        spacing = tuple(float(s) for s in spacing)
        if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
            raise SegTruthError(f"Spacing {spacing} must be three positive numbers (mm along i, j, k).")
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != intensity.shape:
                raise SegTruthError(f"The mask has shape {mask.shape} but the image has shape {intensity.shape}.")
        if connectivity not in (6, 26):
            raise SegTruthError(f"Connectivity must be 6 or 26, not {connectivity!r}.")
        if not (np.isfinite(distance_penalty) and distance_penalty >= 0):
            raise SegTruthError(f"The distance penalty must be zero or positive, not {distance_penalty!r}.")
        if margin is not None and not (np.isfinite(margin) and margin >= 0):
            raise SegTruthError(f"The margin must be zero or a positive fraction of the seeds' box, not {margin!r}.")
        self.intensity = intensity
        self.spacing = spacing
        self.mask = mask
        self.connectivity = connectivity
        self.distance_penalty = float(distance_penalty)
        self.margin = margin
        self.last_update: str | None = None  # "full", "incremental" or "unchanged"
        self.reset()

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.intensity.shape  # type: ignore[return-value]

    def reset(self) -> None:
        """Forget the previous result; the next update starts over."""
        self._seeds: np.ndarray | None = None
        self._cells: np.ndarray | None = None
        self._box: tuple[tuple[int, int], ...] | None = None
        self._labels = np.zeros(0, dtype=np.int64)  # label value of slot 1, 2, ...
        self._slots = _slot_count(0)
        self._scale = 1.0
        self._shrink = 0  # halvings of the scale after a key overflow (needs absurd images)

    # -- results --------------------------------------------------------------------------------------------
    @property
    def box(self) -> tuple[slice, slice, slice] | None:
        """The computed region (k, j, i slices) of the last result."""
        return None if self._box is None else tuple(slice(lo, hi) for lo, hi in self._box)  # type: ignore[return-value]

    def _keys(self) -> np.ndarray:
        return self._cells[1:-1, 1:-1, 1:-1] >> _LEVEL_BITS  # type: ignore[index]

    @property
    def labels(self) -> np.ndarray:
        """The result on the whole image: each label's grown region; 0 outside the computed region."""
        dtype = np.uint8 if len(self._labels) == 0 or self._labels.max() <= 255 else np.uint16
        out = np.zeros(self.shape, dtype=dtype)
        if self._cells is not None:
            lookup = np.zeros(self._slots, dtype=dtype)
            lookup[1 : len(self._labels) + 1] = self._labels
            _decode(self._cells, lookup, self._slots, out[self.box])
        return out

    @property
    def costs(self) -> np.ndarray:
        """Cost of the cheapest path from a seed (intensity units, float32); inf where nothing was grown."""
        out = np.full(self.shape, np.inf, dtype=np.float32)
        if self._cells is not None:
            keys = self._keys()
            cost = ((keys // self._slots) - 1).clip(min=0) / self._scale
            cost[(keys == 0) | (keys == _UNREACHED)] = np.inf
            out[self.box] = cost
        return out

    @property
    def settled(self) -> int:
        """Voxels the last update settled (all of the region for a full run, fewer for an update)."""
        return int(self._queue.state[4]) if self._cells is not None else 0

    @property
    def region(self) -> np.ndarray:
        """The voxels the last result decided: inside the computed region and allowed by the mask."""
        out = np.zeros(self.shape, dtype=bool)
        if self._box is not None:
            out[self.box] = True if self.mask is None else self.mask[self.box]
        return out

    # -- updates --------------------------------------------------------------------------------------------
    def add_seeds(
        self, seeds: np.ndarray, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
    ) -> np.ndarray:
        """Add the non-zero voxels of ``seeds`` to the current seeds (the new label wins on a clash)."""
        seeds = _as_seed_map(seeds, self.shape)
        merged = seeds if self._seeds is None else np.where(seeds != 0, seeds, self._seeds)
        return self.update(merged, progress, cancel)

    def update(
        self, seeds: np.ndarray, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
    ) -> np.ndarray:
        """Grow from ``seeds`` (all of them; 0 = unknown) and return ``labels``.

        When every old seed is still there and the region is the same, only the new seeds are relaxed;
        otherwise (a seed removed or relabelled, or seeds beyond the region) it starts over. Either way
        the result is that of a full run. Cancelling raises ``Cancelled`` and forgets the previous result.
        """
        seeds = _as_seed_map(seeds, self.shape)
        labels, box = _scan_seeds(seeds, self.margin)
        report(progress, 0.0, "Growing from seeds")
        voxels = int(np.prod([hi - lo + 2 for lo, hi in box]))
        if voxels > _MAX_VOXELS:
            raise SegTruthError(f"The region to grow has {voxels} voxels; at most {_MAX_VOXELS} are supported.")
        try:
            while True:
                try:
                    if self._can_update(seeds, box, labels):
                        try:
                            self._update(seeds, labels, progress, cancel)
                        except _Restart:
                            self._full(seeds, box, labels, progress, cancel)
                    else:
                        self._full(seeds, box, labels, progress, cancel)
                    break
                except OverflowError:
                    self._shrink += 1
                    self._cells = None
        except Cancelled:
            self.reset()
            raise
        self._seeds = seeds.copy()
        report(progress, 1.0, "Grow from seeds done")
        return self.labels

    def _can_update(self, seeds: np.ndarray, box, labels: np.ndarray) -> bool:
        if self._cells is None or self._seeds is None or box != self._box:
            return False
        union = np.union1d(self._labels, labels)
        if _slot_count(len(union)) > 256 and _slot_count(len(union)) != self._slots:
            return False  # more slots would change the intensity scale
        region = self.box
        old, new = self._seeds[region], seeds[region]
        return not np.any((old != 0) & (new != old))  # a seed removed or relabelled: costs can rise

    def _full(self, seeds, box, labels, progress, cancel) -> None:
        region = tuple(slice(lo, hi) for lo, hi in box)
        values = self.intensity[region]
        low, high = float(values.min()), float(values.max())
        integer = values.dtype.kind in "ui"
        self._set_labels(labels)
        scale = _intensity_scale(high - low, integer, self.distance_penalty, self._slots) / 2.0**self._shrink
        offsets, lengths, rows = self._neighbours(box)
        self._offsets, self._near = offsets, rows
        self._steps = np.rint(self.distance_penalty * lengths * scale).astype(np.int64)
        self._width = int(np.rint((high - low) * scale)) + int(self._steps.max())
        cells = np.zeros(tuple(hi - lo + 2 for lo, hi in box), dtype=np.int64)  # the padding is blocked
        allowed = self.mask[region] if self.mask is not None else np.ones((1, 1, 1), dtype=bool)
        _fill(cells, values, allowed, self.mask is not None, low, scale, integer and scale == 1.0)
        self._cells, self._box, self._scale = cells, box, scale
        self._total = values.size if self.mask is None else int(np.count_nonzero(allowed))
        self._new_queue()
        self._plant_and_run(seeds[region], None, progress, cancel)
        self.last_update = "full"

    def _update(self, seeds, labels, progress, cancel) -> None:
        region = self.box
        new = seeds[region]
        added = (new != 0) & (self._seeds[region] == 0)  # type: ignore[index]
        if not added.any():
            self.last_update = "unchanged"
            return
        if not np.isin(labels, self._labels).all():
            self._relabel(np.union1d(self._labels, labels))
        self._plant_and_run(new, added, progress, cancel)
        self.last_update = "incremental"

    def _set_labels(self, labels: np.ndarray) -> None:
        self._labels = np.asarray(labels, dtype=np.int64)
        self._slots = _slot_count(len(labels))

    def _relabel(self, labels: np.ndarray) -> None:
        """Re-slot the keys after new label values appeared (slots follow label order)."""
        old_slots, old_labels = self._slots, self._labels
        self._set_labels(labels)
        remap = np.zeros(old_slots, dtype=np.int64)
        remap[1 : len(old_labels) + 1] = np.searchsorted(self._labels, old_labels) + 1
        _reslot(self._cells.reshape(-1), remap, old_slots, self._slots)  # type: ignore[union-attr]
        self._new_queue()

    def _neighbours(self, box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat index offsets of the neighbours in the padded region, their distances in mm, and the offsets
        of the rows they lie on (what ``_run`` prefetches)."""
        dims = [hi - lo + 2 for lo, hi in box]
        strides = np.array([dims[1] * dims[2], dims[2], 1], dtype=np.int64)  # k, j, i
        moves = np.array(
            [
                (dk, dj, di)
                for dk in (-1, 0, 1)
                for dj in (-1, 0, 1)
                for di in (-1, 0, 1)
                if (dk, dj, di) != (0, 0, 0) and (self.connectivity == 26 or abs(dk) + abs(dj) + abs(di) == 1)
            ],
            dtype=np.int64,
        )
        lengths = np.sqrt(((moves * np.array(self.spacing[::-1])) ** 2).sum(axis=1))
        rows = np.unique(moves[:, :2] @ strides[:2])
        return moves @ strides, lengths, rows

    def _new_queue(self) -> None:
        """An empty ring of buckets wider than the largest key step, and a pool of queue entries."""
        self._queue = _Queue(self._ring_size(), self._cells.size)  # type: ignore[union-attr]

    def _ring_size(self) -> int:
        return _next_pow2(self._slots * (self._width + 1) + 1)

    def _plant_and_run(self, seeds: np.ndarray, added: np.ndarray | None, progress, cancel) -> None:
        """Queue the seeds (only ``added`` ones in an update) and run the queue dry in chunks."""
        kk, jj, ii = np.nonzero(seeds if added is None else added)
        dims = self._cells.shape  # type: ignore[union-attr]
        nodes = ((kk + 1) * dims[1] + (jj + 1)) * dims[2] + (ii + 1)
        slot_of = np.zeros(MAX_LABEL + 1, dtype=np.int64)
        slot_of[self._labels] = np.arange(1, len(self._labels) + 1)
        keys = slot_of[seeds[kk, jj, ii]]
        flat = self._cells.reshape(-1)  # type: ignore[union-attr]
        if added is not None:
            # A new seed on a voxel that a smaller label reached at zero cost cuts paths along which that
            # label won ties downstream; only a full run reassigns those exactly.
            old = flat[nodes] >> _LEVEL_BITS
            if np.any((old >= self._slots) & (old < 2 * self._slots) & ((old & (self._slots - 1)) < keys)):
                raise _Restart
        elif _use_slabs(dims, len(nodes)):
            self._slab_run(nodes, keys, progress, cancel)
            return
        queue = self._queue
        queue.plant(flat, nodes, keys)
        queue.state[4] = 0
        while True:
            if cancel is not None:
                cancel.raise_if_cancelled("grow from seeds")
            if queue.step(flat, self._offsets, self._near, self._steps, self._slots):
                return
            report(progress, float(queue.state[4]) / max(self._total, 1), "Growing from seeds")

    def _slab_run(self, nodes: np.ndarray, keys: np.ndarray, progress, cancel) -> None:
        """A full run on two threads: each half of the region (along k) grows from its own seeds, then the
        halves offer each other the keys of their two shared rows until neither improves the other.

        Every key is the cost of a real path and, when both halves are done, no edge of the region can lower
        a key: the keys are the unique least ones (cost, then label slot), so the labels, costs and settled
        count are those of the single-threaded run, voxel for voxel.
        """
        cells = self._cells  # type: ignore[union-attr]
        depth = cells.shape[0]
        plane = cells.shape[1] * cells.shape[2]
        split = depth // 2  # the upper half owns rows 1 .. split-1, the lower half rows split .. depth-2
        # each half holds its own rows, the other's first row beside them and a blocked row after that: the
        # upper half works in place (its last two rows are overwritten by the lower half's at the end), the
        # lower half on a copy
        upper = _Slab(cells[: split + 2], 0, self._ring_size())
        lower = _Slab(cells[split - 2 :].copy(), split - 2, self._ring_size())
        upper.cells[split + 1] &= _LEVEL_MASK
        lower.cells[0] &= _LEVEL_MASK
        rows = nodes // plane
        for slab, chosen in ((upper, rows <= split), (lower, rows >= split - 1)):
            slab.queue.plant(slab.flat, nodes[chosen] - slab.first * plane, keys[chosen])
        shared_upper = slice(split - 1, split + 1)  # global rows split-1 and split in the upper copy
        shared_lower = slice(1, 3)  # the same rows in the lower copy
        total = 0
        while True:
            total += _run_both((upper, lower), self, progress, cancel, total)
            a = upper.cells[shared_upper].reshape(-1)
            b = lower.cells[shared_lower].reshape(-1)
            better_b = (b >> _LEVEL_BITS) < (a >> _LEVEL_BITS)  # blocked voxels are blocked in both copies
            better_a = (a >> _LEVEL_BITS) < (b >> _LEVEL_BITS)
            if not better_a.any() and not better_b.any():
                break
            base = (split - 1) * plane
            upper.offer(base + np.flatnonzero(better_b), b[better_b] >> _LEVEL_BITS)
            lower.offer(plane + np.flatnonzero(better_a), a[better_a] >> _LEVEL_BITS)
        cells[split:] = lower.cells[2:]
        self._new_queue()
        self._queue.state[4] = _count_reached(cells.reshape(-1))


def _use_slabs(dims: tuple[int, ...], seeds: int) -> bool:
    """Two threads for a full run on a region big enough to pay for them, where two cores are free."""
    if numba.get_num_threads() < 2 or dims[0] < 8 or int(np.prod(dims)) < PARALLEL_MIN_VOXELS:
        return False
    return seeds > 0


class _Queue:
    """A ring of buckets (linked lists of entries drawn from a pool) and its state, for ``_run``.

    ``state`` = [current key, entries queued, free-list head, entries used, voxels settled, arrivals offered].
    """

    def __init__(self, ring: int, voxels: int) -> None:
        self.head = np.full(ring, -1, dtype=np.int32)
        self.entry_node = np.empty(max(1 << 16, voxels // 16), dtype=np.int32)
        self.entry_next = np.empty_like(self.entry_node)
        self.state = np.array([0, 0, -1, 0, 0, 0], dtype=np.int64)
        self.arrivals = np.zeros(0, dtype=np.int64)
        self.arrival_keys = np.zeros(0, dtype=np.int64)

    def grow_pool(self, needed: int) -> None:
        if needed <= len(self.entry_node):
            return
        size = max(needed, 2 * len(self.entry_node))
        for name in ("entry_node", "entry_next"):
            old = getattr(self, name)
            new = np.empty(size, dtype=np.int32)
            new[: len(old)] = old
            setattr(self, name, new)

    def plant(self, flat: np.ndarray, nodes: np.ndarray, keys: np.ndarray) -> None:
        self.grow_pool(int(self.state[1]) + len(nodes))
        _plant(flat, nodes, keys, self.head, self.entry_node, self.entry_next, self.state)

    def offer(self, nodes: np.ndarray, keys: np.ndarray) -> None:
        """Keys from outside for ``nodes``, queued by ``_run`` in ascending order (the queue is empty now)."""
        order = np.argsort(keys, kind="stable")
        self.arrivals, self.arrival_keys = nodes[order].astype(np.int64), keys[order].astype(np.int64)
        self.state[5] = 0

    def step(self, flat, offsets, near, steps, slots: int) -> bool:
        """Settle up to ``_CHUNK`` voxels; True when the queue and the arrivals are used up."""
        code = _run(
            flat, offsets, near, steps, slots, self.head, self.entry_node, self.entry_next, self.state,
            self.arrivals, self.arrival_keys, _CHUNK,
        )  # fmt: skip
        if code == _POOL_FULL:
            self.grow_pool(2 * len(self.entry_node))
        elif code == _OVERFLOW:
            raise OverflowError
        return code == _DONE


class _Slab:
    """A copy of consecutive rows of the padded region, from row ``first``, with its own queue."""

    def __init__(self, cells: np.ndarray, first: int, ring: int) -> None:
        self.cells = cells
        self.flat = cells.reshape(-1)
        self.first = first
        self.queue = _Queue(ring, cells.size)

    def offer(self, nodes: np.ndarray, keys: np.ndarray) -> None:
        self.queue.offer(nodes, keys)


def _run_both(slabs, cut: GrowCut, progress, cancel, before: int) -> int:
    """Run both slabs' queues dry, one thread each; the voxels they settled. Cancel and errors stop both."""
    stop = threading.Event()

    def work(slab: _Slab) -> None:
        slab.queue.state[4] = 0
        try:
            while not stop.is_set():
                if cancel is not None and cancel.cancelled:
                    return
                if slab.queue.step(slab.flat, cut._offsets, cut._near, cut._steps, cut._slots):
                    return
        except BaseException:
            stop.set()
            raise

    with ThreadPoolExecutor(max_workers=len(slabs)) as pool:
        futures = [pool.submit(work, slab) for slab in slabs]
        while not all(f.done() for f in futures):
            wait(futures, timeout=0.25)
            settled = before + sum(int(slab.queue.state[4]) for slab in slabs)
            report(progress, min(settled / max(cut._total, 1), 0.99), "Growing from seeds")
        for future in futures:
            future.result()
    if cancel is not None:
        cancel.raise_if_cancelled("grow from seeds")
    return sum(int(slab.queue.state[4]) for slab in slabs)


def grow_labels(
    intensity: np.ndarray,
    seeds: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    mask: np.ndarray | None = None,
    *,
    connectivity: int = 26,
    distance_penalty: float = 0.0,
    margin: float | None = DEFAULT_MARGIN,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Grow ``seeds`` (k, j, i labels, 0 = unknown) over ``intensity`` once; see ``GrowCut``."""
    cut = GrowCut(intensity, spacing, mask, connectivity=connectivity, distance_penalty=distance_penalty, margin=margin)
    return cut.update(seeds, progress, cancel)
