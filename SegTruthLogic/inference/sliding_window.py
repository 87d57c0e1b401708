"""Sliding-window inference with Gaussian blending, device memory bounded by the tile, and an OOM fallback chain.

The volume stays on the CPU; only a batch of tiles goes to the device at a time. Blended outputs accumulate on
the device when they fit in a quarter of its free memory, else on the CPU, so device memory depends on the
tile and not on the volume. When the device runs out of memory anyway, the run restarts with a smaller batch,
then with CPU accumulation, then on the CPU, and says so through the progress callback. Tiles are visited in
a fixed order and accumulated in float32: the same input gives the same output.
Tile positions and the Gaussian follow nnU-Net v2 (steps of half a patch spread evenly; sigma = patch / 8).

In a precision that refines (``auto`` in bfloat16 on the CPU), a second pass recomputes in float32 every tile
that touches a voxel whose two best classes are within ``near_tie`` of each other, and those voxels (and all
others whose tiles were all recomputed) get exactly the float32 run's values. Where bfloat16's error is below
``near_tie`` the labels are then float32's everywhere; the cost is the share of tiles touching a near tie.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import torch
from scipy import ndimage
from torch.nn import functional

from ..core.errors import SegTruthError
from ..core.progress import CancelToken, ProgressCallback, report
from .precision import Precision, choose_precision, prepared_network, to_layout

Network = Callable[[torch.Tensor], torch.Tensor]

# Logits. On the test fixture's model (whose noisy phantom is full of near ties) bfloat16 with the image read in
# float32 moved logits by 0.013 at the median; of the labels it changed against float32 on 256x256x160, the
# refinement of tiles touching margins below 0.01 / 0.02 / 0.03 / 0.05 kept 12 / 62 / 69 / 88 % away, and cost
# 19 / 31 / 39 / 45 % of the tiles again in float32; on 512x512x300, 0.02 kept every label's Dice >= 0.999 against
# nnUNetPredictor at a smaller cost than 0.03 (docs/benchmarks.md).
NEAR_TIE = 0.02
FIRST_PASS_SHARE = 0.8  # of the progress bar, when a refinement may follow


def tile_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Tile start positions along one axis: as few as cover the axis with steps <= (1 - overlap) * patch."""
    step = patch * (1.0 - overlap) if overlap < 1 else patch
    count = math.ceil((size - patch) / step) + 1 if size > patch else 1
    if count == 1:
        return [0]
    actual = (size - patch) / (count - 1)
    return [int(np.round(actual * i)) for i in range(count)]


@lru_cache(maxsize=4)
def gaussian_weights(patch: tuple[int, ...], sigma_scale: float = 1.0 / 8, peak: float = 10.0) -> torch.Tensor:
    """Importance map peaking at the tile centre (no zeros, so every voxel gets a weight)."""
    impulse = np.zeros(patch)
    impulse[tuple(p // 2 for p in patch)] = 1
    weights = ndimage.gaussian_filter(impulse, [p * sigma_scale for p in patch], 0, mode="constant", cval=0)
    weights = weights / (weights.max() / peak)
    weights[weights == 0] = weights[weights > 0].min()
    return torch.from_numpy(weights.astype(np.float32))


def fits_on_device(tensor: torch.Tensor, shape: tuple[int, ...], budget: int = 1 << 30) -> bool:
    """Whether ``tensor`` (C, ...) resized to ``shape`` may stay where it is: always on the CPU; on a GPU when the
    result and the tensor fit ``budget`` and a quarter of its free memory (the bound that keeps device memory
    independent of the volume)."""
    if tensor.device.type != "cuda":
        return True
    needed = (tensor.numel() + tensor.shape[0] * int(np.prod(shape))) * 4
    free, _total = torch.cuda.mem_get_info(tensor.device)
    return needed < min(free // 4, budget)


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error).lower()
    )


@dataclass(frozen=True)
class Attempt:
    """One way to run: the device for the network, tiles per batch, where blended outputs accumulate."""

    device: torch.device
    batch_size: int
    accumulate_on_device: bool

    def describe(self) -> str:
        where = "device" if self.accumulate_on_device else "CPU"
        return f"{self.device.type}, batch {self.batch_size}, accumulation on {where}"


def fallback_chain(first: Attempt) -> list[Attempt]:
    """Smaller batches, then CPU accumulation, then the CPU: each step needs less device memory than the last."""
    chain = [first]
    batch = first.batch_size
    while batch > 1:
        batch //= 2
        chain.append(replace(first, batch_size=batch))
    if first.accumulate_on_device:
        chain.append(replace(first, batch_size=1, accumulate_on_device=False))
    if first.device.type != "cpu":
        chain.append(Attempt(torch.device("cpu"), 1, False))
    return chain


@dataclass
class SlidingWindow:
    """Run networks over a (C, *spatial) volume tile by tile and blend their outputs.

    ``accumulate``: ``auto`` (device when the accumulators fit the budget), ``device`` or ``cpu``.
    ``precision``: the network's arithmetic (``auto``, ``float32``, ``bfloat16``, ``float16``; None: the
    ``SEGTRUTH_PRECISION`` environment variable, else auto), chosen for each attempt's device; the outputs are
    accumulated in float32 whatever it is. ``used_precision`` says what the last run used.
    ``keep_on_device``: return the blended output where it was accumulated (a GPU, when it fitted there), so
    resampling and argmax can run there too; else on the CPU. ``near_tie``: for outputs decided by argmax, the
    margin between the two best channels below which a precision that refines recomputes in float32 (see
    above); None: no refinement.

    On a GPU whose budget holds the accumulators, the (padded) image goes to the device once as well, so the
    whole blend runs there; otherwise tiles travel from pinned memory on a side stream, the next batch's copy
    overlapping the current batch's network.
    """

    patch_size: tuple[int, ...] | None
    out_channels: int | None = None
    overlap: float = 0.5
    gaussian: bool = True
    mirror_axes: tuple[int, ...] = ()
    batch_size: int = 1
    divisible_by: int = 1
    accumulate: str = "auto"
    device_accumulator_budget: int = 1 << 30
    ram_accumulator_budget: int = 8 << 30
    precision: str | None = None
    progress: ProgressCallback | None = None
    cancel: CancelToken | None = None
    notices: list[str] | None = None
    used_precision: Precision | None = None
    keep_on_device: bool = False
    near_tie: float | None = None
    refined: tuple[int, int] | None = None  # (tiles recomputed in float32, tiles) of the last run's refinement
    _phase: tuple[float, float] = field(default=(0.0, 1.0), init=False, repr=False)  # of the progress bar

    def run(
        self, image: torch.Tensor, members: Callable[[], Iterable[Network]], count: int, device: torch.device
    ) -> torch.Tensor:
        """Average of the members' blended outputs (K, *spatial), float32 on the CPU, with the fallback chain.

        ``members()`` yields the ensemble's networks afresh for each attempt (they may share one module).
        """
        on_device = {"device": device.type != "cpu", "cpu": False}.get(self.accumulate)
        if on_device is None:
            on_device = device.type != "cpu" and self._fits_on_device(image, device)
        first = Attempt(device, self.batch_size, on_device)
        chain = fallback_chain(first)
        for index, attempt in enumerate(chain):
            try:
                return self._run_members(image, members, count, attempt)
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                if index == len(chain) - 1:
                    _free(attempt.device)
                    raise SegTruthError(
                        f"Inference ran out of memory even with {attempt.describe()}; close other programs or use a "
                        "machine with more memory."
                    ) from None
                _free(attempt.device)
                message = f"out of memory with {attempt.describe()}; retrying with {chain[index + 1].describe()}"
                if self.notices is not None:
                    self.notices.append(message)
                report(self.progress, 0.0, message)
        raise SegTruthError("Inference failed.")  # unreachable: the last attempt re-raises

    # -- internals --------------------------------------------------------------------------------------------
    def _fits_on_device(self, image: torch.Tensor, device: torch.device) -> bool:
        """Accumulators (outputs + weights, float32) fit the budget and a quarter of the device's free memory.

        The budget (1 GiB by default) keeps device memory bounded by the tile: a 512x512x800 CT with a few
        labels accumulates on the CPU, a small volume on the device.
        """
        if device.type != "cuda":
            return device.type != "cpu"
        voxels = int(np.prod(image.shape[1:]))
        needed = voxels * 4 * ((self.out_channels or 8) + 1 + image.shape[0])  # outputs, weights and the image
        free, _total = torch.cuda.mem_get_info(device)
        return needed < min(free // 4, self.device_accumulator_budget)

    def _run_members(self, image, members, count: int, attempt: Attempt) -> torch.Tensor:
        self.refined = None
        total = None
        refining = False
        for n, network in enumerate(members()):
            if n == 0:
                module = network if isinstance(network, torch.nn.Module) else None
                self.used_precision = choose_precision(self.precision, attempt.device, module)
                refining = self.near_tie is not None and self.used_precision.refine
                self._phase = (0.0, FIRST_PASS_SHARE if refining else 1.0)
            out = self._run_one(image, network, attempt, n, count, precision=self.used_precision)
            total = out if total is None else total.add_(out)
        assert total is not None
        if count > 1:
            total /= count
        if refining:
            self._phase = (FIRST_PASS_SHARE, 1.0)
            self._refine(image, total, members, count, attempt)
        return total

    def _refine(self, image, total: torch.Tensor, members, count: int, attempt: Attempt) -> None:
        """Give the voxels near a tie in ``total`` (and all whose tiles are theirs) the float32 run's values.

        Every tile that touches a near tie runs again in float32; a voxel all of whose tiles ran again gets
        their blend, which is the float32 run's own value (same tiles, same order, same arithmetic).
        """
        near = near_ties(total, float(self.near_tie or 0.0))
        if not bool(near.any()):
            self.refined = (0, 0)
            return
        patch = self._patch(tuple(image.shape[1:]))
        padded_near, unpad = _pad_to(near[None].float(), patch)
        tiles = self._tiles(tuple(padded_near.shape[1:]), patch)
        chosen = [t for t in tiles if bool(padded_near[(0, *t)].any())]
        exact = (_coverage(chosen, padded_near.shape[1:]) == _coverage(tiles, padded_near.shape[1:]))[unpad]
        exact = exact.to(total.device)
        full = Precision("float32", reason="near ties")
        refined = None
        for n, network in enumerate(members()):
            out = self._run_one(image, network, attempt, n, count, precision=full, tiles=chosen)
            part = out[:, exact]
            refined = part if refined is None else refined.add_(part)
        assert refined is not None
        if count > 1:
            refined /= count
        total[:, exact] = refined
        self.refined = (len(chosen), len(tiles))
        message = f"float32 again for {len(chosen)} of {len(tiles)} tiles, around {int(near.sum())} voxels near a tie"
        if self.notices is not None:
            self.notices.append(message)
        report(self.progress, 1.0, message)

    def _patch(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The tile shape; a 2D patch on a 3D volume is one slice thick (slice by slice along axis 0)."""
        if self.patch_size is None:  # one tile for the whole volume, rounded up to what the poolings divide
            d = max(self.divisible_by, 1)
            return tuple(-(-s // d) * d for s in shape)
        patch = tuple(self.patch_size)
        return (1, *patch) if len(patch) == len(shape) - 1 else patch

    def _tiles(self, shape: tuple[int, ...], patch: tuple[int, ...]) -> list[tuple[slice, ...]]:
        starts = [tile_starts(s, p, self.overlap) for s, p in zip(shape, patch)]
        return [tuple(slice(a, a + p) for a, p in zip(pos, patch)) for pos in itertools.product(*starts)]

    def _run_one(
        self,
        image: torch.Tensor,
        network: Network,
        attempt: Attempt,
        member: int,
        members: int,
        precision: Precision,
        tiles: list[tuple[slice, ...]] | None = None,
    ):
        """One member's blended output in ``precision`` over all tiles, or over ``tiles`` only."""
        device = attempt.device
        patch = self._patch(tuple(image.shape[1:]))
        padded, unpad = _pad_to(image, patch)
        if tiles is None:
            tiles = self._tiles(tuple(padded.shape[1:]), patch)
        weights = gaussian_weights(tuple(patch)) if self.gaussian else torch.ones(patch)
        store = device if attempt.accumulate_on_device else torch.device("cpu")
        weights_store = weights.to(store)
        norm = torch.zeros(padded.shape[1:], dtype=torch.float32, device=store)
        net = network.to(device) if isinstance(network, torch.nn.Module) else network
        if isinstance(net, torch.nn.Module):
            net.eval()
        if attempt.accumulate_on_device and device.type != "cpu":
            padded = padded.to(device)  # the whole image on the device: tiles are cut there
        with prepared_network(net, precision):
            output = self._tiles_loop(
                padded, tiles, net, weights_store, norm, store, precision, attempt, member, members
            )
        output /= norm
        output = output[(slice(None), *unpad)].float()
        return output if self.keep_on_device else output.cpu()

    def _tiles_loop(self, padded, tiles, net, weights_store, norm, store, precision, attempt, member, members):
        """Run the network over the tiles in batches and add the weighted outputs into float32 accumulators."""
        device = attempt.device
        two_d = self.patch_size is not None and len(self.patch_size) == padded.ndim - 2
        output: torch.Tensor | None = None
        starts = list(range(0, len(tiles), attempt.batch_size))
        upload = _Uploader(device)

        def cut(first: int) -> torch.Tensor:
            batch = torch.stack([padded[(slice(None), *t)] for t in tiles[first : first + attempt.batch_size]])
            return batch[:, :, 0] if two_d else batch

        staged = upload.stage(cut(starts[0]))
        for number, first in enumerate(starts):
            if self.cancel is not None:
                self.cancel.raise_if_cancelled("inference")
            batch_tiles = tiles[first : first + attempt.batch_size]
            batch = to_layout(upload.take(staged), precision)
            if number + 1 < len(starts):  # the next copy overlaps this batch's network
                staged = upload.stage(cut(starts[number + 1]))
            with torch.inference_mode(), precision.autocast(device):
                predicted = _predict(net, batch, self.mirror_axes)
            predicted = predicted.float()
            if two_d:
                predicted = predicted[:, :, None]
            if output is None:
                output = self._accumulator((predicted.shape[1], *padded.shape[1:]), store)
                if output.dtype == torch.float16:  # tile-edge weights (~1e-10) would vanish in float16 sums
                    weights_store = weights_store.clamp(min=1e-3)
            predicted = predicted.to(store) * weights_store
            for tile, values in zip(batch_tiles, predicted):
                output[(slice(None), *tile)] += values
                norm[tile] += weights_store
            done = (member + (first + len(batch_tiles)) / len(tiles)) / members
            low, high = self._phase
            what = "float32 near ties, " if low > 0 else ""
            report(
                self.progress,
                low + (high - low) * done,
                f"{what}model {member + 1}/{members}: tile {first + len(batch_tiles)}/{len(tiles)}",
            )
        assert output is not None
        return output

    def _accumulator(self, shape: tuple[int, ...], store: torch.device) -> torch.Tensor:
        """float32, or float16 (as nnU-Net always uses) when float32 would pass the RAM budget (many labels)."""
        size = int(np.prod(shape)) * 4
        if store.type == "cpu" and size > self.ram_accumulator_budget:
            message = f"{size / 2**30:.1f} GiB of outputs: accumulating in float16 to fit in memory"
            if self.notices is not None and message not in self.notices:
                self.notices.append(message)
            return torch.zeros(shape, dtype=torch.float16, device=store)
        return torch.zeros(shape, dtype=torch.float32, device=store)


class _Uploader:
    """Batches to the network's device: as they are when already there (or on the CPU), else copied from
    pinned memory on a side CUDA stream so that a copy overlaps the previous batch's compute."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def stage(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.device.type != "cpu" or self.device.type == "cpu":
            return batch  # cut from the image already on the device (or all on the CPU)
        if self.stream is None:
            return batch.to(self.device)
        pinned = batch.pin_memory()
        with torch.cuda.stream(self.stream):
            return pinned.to(self.device, non_blocking=True)

    def take(self, staged: torch.Tensor) -> torch.Tensor:
        """The staged batch, safe to use on the current stream (waits for its copy there, not on the host)."""
        if self.stream is not None and staged.device.type == "cuda":
            current = torch.cuda.current_stream(self.device)
            current.wait_stream(self.stream)
            staged.record_stream(current)  # its memory is not reused before the current stream is done with it
        return staged


def network_output(network: Network, batch: torch.Tensor) -> torch.Tensor:
    """The network's output for a batch; of a deep-supervision list, the full-resolution first."""
    out = network(batch)
    return out[0] if isinstance(out, (list, tuple)) else out


def batch_axes(mirror_axes: tuple[int, ...], batch: torch.Tensor) -> list[int]:
    """Spatial mirror axes as dimensions of a (batch, channels, *spatial) tensor (those it has)."""
    return [a + 2 for a in mirror_axes if a + 2 < batch.ndim]


def _predict(network: Network, batch: torch.Tensor, mirror_axes: tuple[int, ...]) -> torch.Tensor:
    """The network's output, averaged over all mirrorings of ``mirror_axes`` when given (test-time augmentation)."""
    out = network_output(network, batch)
    if not mirror_axes:
        return out
    out = out.float()
    axes = batch_axes(mirror_axes, batch)
    combos = [c for r in range(1, len(axes) + 1) for c in itertools.combinations(axes, r)]
    for combo in combos:
        out += torch.flip(network_output(network, torch.flip(batch, combo)).float(), combo)
    return out / (len(combos) + 1)


def near_ties(output: torch.Tensor, margin: float, slab: int = 16) -> torch.Tensor:
    """Voxels (a bool mask on the CPU) whose two largest channels of ``output`` (K, *spatial) differ by less than
    ``margin``; computed a few slices at a time so that memory stays near the mask's own."""
    spatial = output.shape[1:]
    mask = torch.zeros(spatial, dtype=torch.bool)
    if output.shape[0] < 2:
        return mask
    for start in range(0, spatial[0], slab):
        top = torch.topk(output[:, start : start + slab].float(), 2, dim=0).values
        mask[start : start + slab] = (top[0] - top[1] < margin).cpu()
    return mask


def _coverage(tiles: list[tuple[slice, ...]], shape) -> torch.Tensor:
    """How many of ``tiles`` cover each voxel of a grid of ``shape``."""
    count = torch.zeros(tuple(shape), dtype=torch.int16)
    for tile in tiles:
        count[tile] += 1
    return count


def _pad_to(image: torch.Tensor, patch: tuple[int, ...]) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Zero-pad each spatial axis to at least the patch (split evenly, the extra voxel after); and the undo slices."""
    spatial = image.shape[1:]
    pads = [max(p - s, 0) for s, p in zip(spatial, patch)]
    if not any(pads):
        return image, tuple(slice(None) for _ in spatial)
    flat = []
    for pad in reversed(pads):
        flat += [pad // 2, pad // 2 + pad % 2]
    padded = functional.pad(image, flat, mode="constant", value=0.0)
    unpad = tuple(slice(p // 2, p // 2 + s) for p, s in zip(pads, spatial))
    return padded, unpad


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
