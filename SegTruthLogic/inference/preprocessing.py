"""Card-driven preprocessing and its exact inverse for TorchScript and MONAI models.

Orientation changes only permute and flip axes (exact, via the geometry module); the one interpolation is the
resize to the card's spacing or shape, and the output is resized back onto the very same voxels, so masks land
where the image is whatever the file's orientation, handedness or obliquity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from ..core.errors import SegTruthError
from ..core.geometry import Grid, move_array
from .card import ModelCard
from .resampling import resize_to
from .sliding_window import fits_on_device


@dataclass
class Prepared:
    """The network's input, (channels, *spatial) float32 on the CPU, and what is needed to map the output back."""

    image: torch.Tensor
    context: dict[str, Any] = field(default_factory=dict)


_TARGET_AXES = {"RAS": np.eye(3), "LPS": np.diag([-1.0, -1.0, 1.0])}


def oriented_grid(grid: Grid, orientation: str) -> Grid:
    """The same voxels as ``grid`` with axes permuted and flipped to be closest to RAS or LPS (no interpolation)."""
    if orientation == "file":
        return grid
    target_axes = _TARGET_AXES[orientation]
    directions = grid.direction_ras
    # each target axis takes the source axis best aligned with it (a permutation, as nibabel's io_orientation)
    score = np.abs(target_axes.T @ directions)  # rows: target axis, cols: source axis
    order = [-1, -1, -1]
    for _ in range(3):
        t, s = np.unravel_index(np.argmax(np.where(score >= 0, score, -1)), score.shape)
        order[t] = int(s)
        score[t, :] = -2
        score[:, s] = -2
    matrix = np.eye(4)
    size = []
    for t, s in enumerate(order):
        sign = 1.0 if float(target_axes[:, t] @ directions[:, s]) >= 0 else -1.0
        matrix[:3, t] = grid.ijk_to_ras[:3, s] * sign
        size.append(grid.size[s])
    # origin: the voxel that becomes index 0 along every axis
    corner = np.zeros(4)
    corner[3] = 1.0
    for t, s in enumerate(order):
        if float(target_axes[:, t] @ directions[:, s]) < 0:
            corner[s] = grid.size[s] - 1
    matrix[:, 3] = grid.ijk_to_ras @ corner
    return Grid((size[0], size[1], size[2]), matrix)


def _normalize(image: torch.Tensor, steps, where: str, stats: dict[str, torch.Tensor]) -> torch.Tensor:
    """Apply the card's normalization steps to one channel.

    Percentiles are computed once, on the first image normalized (the whole image, or a two-stage model's
    coarse view of it), and kept in ``stats`` for later crops of the same image.
    """
    for index, step in enumerate(steps):
        op = step["op"]
        if op == "clip":
            image = image.clamp(float(step["lower"]), float(step["upper"]))
        elif op == "percentile_rescale":
            key = f"percentiles {index}"
            if key not in stats:
                values = image.flatten()
                if values.numel() > 2**24:  # torch.quantile's limit; a strided sample keeps it exact enough
                    values = values[:: int(np.ceil(values.numel() / 2**24))]
                stats[key] = torch.stack(
                    [
                        torch.quantile(values, float(step.get("lower", 0.5)) / 100.0),
                        torch.quantile(values, float(step.get("upper", 99.5)) / 100.0),
                    ]
                )
            low, high = stats[key]
            image = (image - low) / torch.clamp(high - low, min=1e-8)
            if step.get("clip", True):
                image = image.clamp(0.0, 1.0)
        elif op == "zscore":
            mask = image != 0 if step.get("nonzero") else torch.ones_like(image, dtype=torch.bool)
            values = image[mask]
            mean, std = values.mean(), values.std()
            image = torch.where(mask, (image - mean) / torch.clamp(std, min=1e-8), image)
        elif op == "ct":
            image = image.clamp(float(step["lower"]), float(step["upper"]))
            image = (image - float(step["mean"])) / max(float(step["std"]), 1e-8)
        elif op == "affine":
            image = image * float(step.get("scale", 1.0)) + float(step.get("shift", 0.0))
        else:  # validated in the card; kept for cards built in code
            raise SegTruthError(f"{where}: unknown normalization step {op!r}.")
    return image


def _network_input(card: ModelCard, data: torch.Tensor, shape, stats) -> torch.Tensor:
    resized = resize_to(data, shape, card.preprocessing.interpolation)
    return torch.stack([_normalize(c, card.preprocessing.normalization, card.name, stats) for c in resized]).float()


def _locate(card: ModelCard, data: torch.Tensor, localizer, device: torch.device, stats) -> tuple[slice, ...]:
    """The region a two-stage model's coarse network finds, with the card's margin, in laid-out voxels."""
    spec = card.localizer
    coarse = _network_input(card, data, spec["shape"], stats)
    with torch.inference_mode():
        output = localizer.to(device)(coarse[None].to(device))
    output = (output[0] if isinstance(output, (list, tuple)) else output)[0].float().cpu()
    mask = (output[spec["channel"]] > spec["threshold"]).numpy()
    components, count = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    if count == 0:
        raise SegTruthError(f"Model {card.name!r}: its localizer found nothing to segment in this image.")
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    mask = components == int(np.argmax(sizes))
    box = []
    for axis, full in enumerate(data.shape[1:]):
        other = tuple(a for a in range(3) if a != axis)
        rows = np.nonzero(mask.mean(axis=other) > spec["min_fraction"])[0]
        if rows.size == 0:
            rows = np.nonzero(mask.any(axis=other))[0]
        scale = full / mask.shape[axis]
        centre = round((rows.max() + 1 + rows.min()) / 2 * scale)
        size = round((rows.max() + 1 - rows.min()) * scale * (1 + 2 * spec["margin"]))
        box.append(slice(max(0, int(centre - size / 2)), min(full, int(centre + size / 2))))
    return tuple(box)


def prepare(
    card: ModelCard,
    channels: list[np.ndarray],
    grid: Grid,
    localizer: torch.nn.Module | None = None,
    device: torch.device | None = None,
) -> Prepared:
    """Reorient, lay out, (crop,) resize and normalize (k, j, i) channel arrays on ``grid`` for the network."""
    pre = card.preprocessing
    target = oriented_grid(grid, pre.orientation)
    arrays = [move_array(np.asarray(c, dtype=np.float32), grid, target) for c in channels]
    data = np.stack(arrays)  # (C, k, j, i)
    spacing = target.spacing[::-1]  # k, j, i
    if pre.axes == "ijk":
        data = data.transpose(0, 3, 2, 1)
        spacing = target.spacing
    tensor = torch.nan_to_num(torch.from_numpy(np.ascontiguousarray(data)))
    laid_out = tuple(tensor.shape[1:])
    stats: dict[str, torch.Tensor] = {}
    crop = tuple(slice(0, n) for n in laid_out)
    if localizer is not None and card.localizer:
        crop = _locate(card, tensor, localizer, device or torch.device("cpu"), stats)
        tensor = tensor[(slice(None), *crop)]
    region = tuple(tensor.shape[1:])
    if pre.shape is not None:
        shape = pre.shape
    elif pre.spacing is not None:
        # a spacing of 0 keeps the image's own along that axis (a 2D model's slice axis)
        shape = tuple(max(1, round(float(n * s / t))) if t > 0 else n for n, s, t in zip(region, spacing, pre.spacing))
    else:
        shape = region
    image = _network_input(card, tensor, shape, stats)
    context = {"grid": grid, "target": target, "laid_out": laid_out, "crop": crop, "region": region}
    return Prepared(image.contiguous(), context)


def restore(card: ModelCard, output: torch.Tensor, prepared: Prepared) -> np.ndarray:
    """Output channels -> channel index per voxel, resized back and moved onto the file's grid (k, j, i)."""
    ctx = prepared.context
    if not fits_on_device(output, ctx["laid_out"]):  # on a GPU only while within its memory bound
        output = output.cpu()
    output = resize_to(output.float(), ctx["region"], card.inference.output_interpolation)
    if ctx["region"] != ctx["laid_out"]:  # a two-stage model: outside its region is background
        full = torch.full((output.shape[0], *ctx["laid_out"]), float(output.min()) - 1.0, device=output.device)
        if output.shape[0] > 1 and card.inference.output != "sigmoid":
            full[0] = float(output.max()) + 1.0
        full[(slice(None), *ctx["crop"])] = output
        output = full
    kind = card.inference.output
    if kind == "sigmoid":
        probabilities = torch.sigmoid(output) if output.min() < 0 or output.max() > 1 else output
        best = probabilities.max(dim=0)
        index = torch.where(best.values > card.inference.threshold, best.indices, -1)
        labels = index.cpu().numpy().astype(np.int32) + 1
    elif output.shape[0] == 1:  # one foreground channel, probabilities or logits
        value = torch.sigmoid(output[0]) if kind == "logits" else output[0]
        labels = (value > card.inference.threshold).cpu().numpy().astype(np.int32)
    else:
        labels = torch.argmax(output, dim=0).to(torch.int32).cpu().numpy()
    if card.preprocessing.axes == "ijk":
        labels = labels.transpose(2, 1, 0)
    return move_array(np.ascontiguousarray(labels), ctx["target"], ctx["grid"])


def postprocess(labels: np.ndarray, steps: tuple[str, ...]) -> np.ndarray:
    """Card postprocessing per label: keep the largest 26-connected component, fill enclosed holes."""
    if not steps:
        return labels
    out = labels.copy()
    for value in [int(v) for v in np.unique(labels) if v != 0]:
        mask = labels == value
        if "largest_component" in steps:
            components, count = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
            if count > 1:
                sizes = np.bincount(components.ravel())
                sizes[0] = 0
                mask = components == int(np.argmax(sizes))
        if "fill_holes" in steps:
            mask = ndimage.binary_fill_holes(mask)
        out[(labels == value) & ~mask] = 0
        out[mask & (out == 0)] = value
    return out
