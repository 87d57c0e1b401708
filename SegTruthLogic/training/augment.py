"""Patches drawn from the training cases with strong augmentation, reproducible from one random generator.

Every random number comes from the ``torch.Generator`` passed in, and the trainer seeds it afresh at each epoch
from the seed and the epoch number, so an epoch draws the same patches whether or not training was interrupted
before it. Spatial augmentation (rotation, scaling, mirroring) samples each patch straight from the whole case
through one affine map, so rotated patches have no empty corners where the case goes on; intensity augmentation
(noise, brightness, contrast, gamma) follows nnU-Net's probabilities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

FOREGROUND_FRACTION = 1.0 / 3.0  # nnU-Net's oversampling: a third of the patches are centred on a labelled voxel


@dataclass
class TrainingVolume:
    """One case as the network sees it: image (C, K, H, W), class indices (K, H, W), known voxels (K, H, W)."""

    case: str
    image: torch.Tensor
    labels: torch.Tensor
    known: torch.Tensor
    foreground: np.ndarray  # (n, 3) voxel indices of known labelled voxels (a sample)
    slices: np.ndarray  # indices of the axial slices holding known voxels


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _chance(generator: torch.Generator, p: float) -> bool:
    return float(torch.rand((), generator=generator)) < p


def _index(generator: torch.Generator, n: int) -> int:
    return int(torch.randint(n, (), generator=generator))


def _rotation(angles: tuple[float, float, float], dims: int) -> torch.Tensor:
    if dims == 2:
        c, s = math.cos(angles[0]), math.sin(angles[0])
        return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    matrix = torch.eye(3, dtype=torch.float64)
    for axis, angle in enumerate(angles):
        c, s = math.cos(angle), math.sin(angle)
        a, b = [x for x in range(3) if x != axis]
        r = torch.eye(3, dtype=torch.float64)
        r[a, a], r[a, b], r[b, a], r[b, b] = c, -s, s, c
        matrix = r @ matrix
    return matrix


def sample_patch(
    image: torch.Tensor,
    labels: torch.Tensor,
    known: torch.Tensor,
    centre: torch.Tensor,
    patch: tuple[int, ...],
    matrix: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A patch around ``centre`` (voxel coordinates) through ``matrix`` (rotation x scale); outside is unknown.

    ``image`` (C, *S), ``labels`` and ``known`` (*S) with len(S) == len(patch). Images interpolate linearly,
    labels and the known mask take the nearest voxel.
    """
    dims = len(patch)
    size = torch.tensor(image.shape[1:], dtype=torch.float64)
    axes = [torch.arange(p, dtype=torch.float64) - (p - 1) / 2 for p in patch]
    offsets = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # (*P, dims)
    if matrix is not None:
        offsets = offsets @ matrix.T
    coords = offsets + centre.to(torch.float64)
    inside = ((coords >= -0.5) & (coords <= size - 0.5)).all(dim=-1)
    normalised = 2 * coords / torch.clamp(size - 1, min=1) - 1
    grid = normalised.flip(-1).to(torch.float32)[None]  # grid_sample wants (x, y[, z]) = last axis first
    img = functional.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0]
    both = torch.stack([labels.to(torch.float32), known.to(torch.float32)])[None]
    nearest = functional.grid_sample(both, grid, mode="nearest", padding_mode="zeros", align_corners=True)[0]
    assert dims == img.ndim - 1
    return img, nearest[0].round().to(torch.int64), (nearest[1] > 0.5) & inside


def intensity(patch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Noise, brightness, contrast and gamma per channel, each with nnU-Net's probability."""
    out = patch.clone()
    for c in range(out.shape[0]):
        x = out[c]
        if _chance(generator, 0.1):
            sigma = _uniform(generator, 0.0, 0.1)
            x = x + sigma * torch.randn(x.shape, generator=generator)
        if _chance(generator, 0.15):
            x = x * _uniform(generator, 0.75, 1.25)
        if _chance(generator, 0.15):
            mean, low, high = x.mean(), x.min(), x.max()
            x = ((x - mean) * _uniform(generator, 0.75, 1.25) + mean).clamp(low, high)
        if _chance(generator, 0.3):
            low, high = x.min(), x.max()
            span = torch.clamp(high - low, min=1e-8)
            x = ((x - low) / span) ** _uniform(generator, 0.7, 1.5) * span + low
        out[c] = x
    return out


@dataclass
class Sampler:
    """Draws training batches: which case (and slice), where, and how it is augmented."""

    volumes: list[TrainingVolume]
    patch: tuple[int, ...]
    dimensions: int
    anisotropic: bool = False
    augment: bool = True
    mirror_axes: tuple[int, ...] | None = None  # patch axes flipped at random; None: every axis

    def _centre(self, generator: torch.Generator, volume: TrainingVolume, foreground: bool) -> tuple[int, torch.Tensor]:
        """(slice or -1, centre in the patch's space)."""
        if foreground and len(volume.foreground):
            point = volume.foreground[_index(generator, len(volume.foreground))]
        else:
            if self.dimensions == 2:
                k = int(volume.slices[_index(generator, len(volume.slices))])
            else:
                k = _index(generator, volume.labels.shape[0])
            point = np.array([k, _index(generator, volume.labels.shape[1]), _index(generator, volume.labels.shape[2])])
        if self.dimensions == 2:
            return int(point[0]), torch.tensor(point[1:], dtype=torch.float64)
        return -1, torch.tensor(point, dtype=torch.float64)

    def _matrix(self, generator: torch.Generator) -> torch.Tensor | None:
        if not self.augment:
            return None
        dims = self.dimensions
        angles = (0.0, 0.0, 0.0)
        if _chance(generator, 0.2):
            if dims == 2:
                angles = (_uniform(generator, -math.pi, math.pi), 0.0, 0.0)
            elif self.anisotropic:  # rotate in plane only: the coarse axis cannot be interpolated across
                angles = (_uniform(generator, -math.pi / 6, math.pi / 6), 0.0, 0.0)
            else:
                angles = tuple(_uniform(generator, -math.pi / 6, math.pi / 6) for _ in range(3))  # type: ignore[assignment]
        scale = _uniform(generator, 0.7, 1.4) if _chance(generator, 0.2) else 1.0
        return _rotation(angles, dims) * scale

    def draw(
        self, generator: torch.Generator, batch_size: int, foreground_first: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A batch: images (B, C, *P), class indices (B, *P), known voxels (B, *P)."""
        images, labels, known = [], [], []
        for n in range(batch_size):
            volume = self.volumes[_index(generator, len(self.volumes))]
            foreground = (foreground_first and n % 2 == 0) or _chance(generator, FOREGROUND_FRACTION)
            k, centre = self._centre(generator, volume, foreground)
            matrix = self._matrix(generator)
            if self.dimensions == 2:
                source = (volume.image[:, k], volume.labels[k], volume.known[k])
            else:
                source = (volume.image, volume.labels, volume.known)
            img, lab, kn = sample_patch(*source, centre, self.patch, matrix)
            if self.augment:
                for axis in range(self.dimensions) if self.mirror_axes is None else self.mirror_axes:
                    if _chance(generator, 0.5):
                        img, lab, kn = img.flip(axis + 1), lab.flip(axis), kn.flip(axis)
                img = intensity(img, generator)
            images.append(img)
            labels.append(lab)
            known.append(kn)
        return torch.stack(images), torch.stack(labels), torch.stack(known)
