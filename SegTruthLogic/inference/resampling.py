"""Resampling rules of nnU-Net v2 (reimplemented) and generic resizes for model cards.

nnU-Net resizes images with cubic splines (order 3, edge mode, clipped to the input's range) and logits with
linear interpolation; when the spacing is anisotropic (largest over smallest > 3) it resizes each slice in
plane and then picks nearest slices along the low-resolution axis. Matching these rules is what makes
SegTruth's output equal nnunetv2's own; linear resizes run in torch (multi-threaded), cubic ones in scipy.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch.nn import functional

ANISOTROPY_THRESHOLD = 3.0


def new_shape(shape, spacing, target) -> tuple[int, ...]:
    """nnU-Net's output shape: each size scaled by spacing ratio, rounded half to even as Python rounds."""
    return tuple(round(float(s) / float(t) * n) for n, s, t in zip(shape, spacing, target))


def separate_axis(current, target, force: bool | None = None) -> int | None:
    """The low-resolution axis to treat separately, or None (nnU-Net's determine_do_sep_z_and_axis)."""

    def lowres(spacing) -> list[int]:
        spacing = np.asarray(spacing, dtype=float)
        return [int(a) for a in np.where(spacing.max() / spacing == 1)[0]]

    def anisotropic(spacing) -> bool:
        return bool(np.max(spacing) / np.min(spacing) > ANISOTROPY_THRESHOLD)

    if force is not None:
        axes = lowres(current) if force else None
    elif anisotropic(current):
        axes = lowres(current)
    elif anisotropic(target):
        axes = lowres(target)
    else:
        axes = None
    return axes[0] if axes is not None and len(axes) == 1 else None


def _spline(image: np.ndarray, shape, order: int) -> np.ndarray:
    """skimage's resize(mode='edge', anti_aliasing=False): ndimage zoom on the pixel grid, clipped to the input range."""
    zoom = [n / o for n, o in zip(shape, image.shape)]
    out = ndimage.zoom(image, zoom, order=order, mode="nearest", grid_mode=True)
    if order > 0:
        np.clip(out, image.min(), image.max(), out=out)
    return out


def _linear(data: torch.Tensor, shape) -> torch.Tensor:
    """Linear resize of (C, *spatial) with pixel-centre alignment; equals order-1 splines with edge mode."""
    mode = "trilinear" if len(shape) == 3 else "bilinear"
    return functional.interpolate(data[None], size=tuple(int(s) for s in shape), mode=mode, align_corners=False)[0]


def _nearest_index(old: int, new: int) -> np.ndarray:
    """Source index of each output position for order-0 resampling along one axis (pixel centres, edge mode)."""
    coords = float(old) / new * (np.arange(new) + 0.5) - 0.5
    return np.clip(np.floor(coords + 0.5).astype(np.int64), 0, old - 1)


def resize_linear(data: torch.Tensor, shape, axis: int | None = None) -> torch.Tensor:
    """nnU-Net's order-1 resize of (C, *spatial) in torch, on the tensor's own device (CPU or GPU), float32.

    ``axis``: resize slices across this axis bilinearly and pick nearest slices along it.
    """
    shape = tuple(int(s) for s in shape)
    tensor = data.float()
    current = tuple(tensor.shape[1:])
    if current == shape:
        return tensor
    if axis is None:
        return _linear(tensor, shape)
    plane = tuple(s for a, s in enumerate(shape) if a != axis)
    moved = tensor.movedim(axis + 1, 1)  # (C, slices, a, b): slices become the batch of a 2D resize
    flat = moved.reshape(-1, 1, *moved.shape[2:])
    resized = functional.interpolate(flat, size=plane, mode="bilinear", align_corners=False)
    in_plane = resized.reshape(moved.shape[0], moved.shape[1], *plane).movedim(1, axis + 1)
    if current[axis] == shape[axis]:
        return in_plane
    index = torch.from_numpy(_nearest_index(current[axis], shape[axis])).to(in_plane.device)
    return torch.index_select(in_plane, axis + 1, index)


def resize(data, shape, order: int, axis: int | None = None) -> np.ndarray:
    """Resize (C, *spatial) float data to ``shape`` as nnU-Net does (order 3 for images, 1 for logits).

    ``axis``: resize slices across this axis in plane with ``order`` and pick nearest slices along it.
    Returns float32 numpy (order 1 runs in torch: see ``resize_linear``).
    """
    shape = tuple(int(s) for s in shape)
    if order == 1:
        source = data if isinstance(data, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(data, np.float32))
        return np.ascontiguousarray(resize_linear(source, shape, axis).cpu().numpy())
    array = data.float().cpu().numpy() if isinstance(data, torch.Tensor) else data
    current = tuple(array.shape[1:])
    if current == shape:
        return array.astype(np.float32, copy=False)
    if axis is None:
        return np.stack([_spline(np.asarray(c, np.float32), shape, order) for c in array]).astype(np.float32)
    plane = tuple(s for a, s in enumerate(shape) if a != axis)
    in_plane = np.stack(
        [
            np.stack(
                [_spline(np.take(c, i, axis=axis).astype(np.float32), plane, order) for i in range(c.shape[axis])],
                axis=axis,
            )
            for c in array
        ]
    )
    if current[axis] == shape[axis]:
        return in_plane.astype(np.float32, copy=False)
    index = _nearest_index(current[axis], shape[axis])
    return np.take(in_plane, index, axis=axis + 1).astype(np.float32, copy=False)


def resize_to(data: torch.Tensor, shape, interpolation: str) -> torch.Tensor:
    """Generic resize of (C, *spatial) for model cards: nearest (pixel centres), linear or cubic."""
    shape = tuple(int(s) for s in shape)
    if tuple(data.shape[1:]) == shape:
        return data
    if interpolation == "nearest":
        return functional.interpolate(data[None], size=shape, mode="nearest-exact")[0]
    if interpolation == "linear":
        return _linear(data.float(), shape)
    return torch.from_numpy(resize(data.float().cpu().numpy(), shape, 3)).to(data.device)
