"""The training plan: network, patch, spacing and normalisation read off the dataset's fingerprint.

The rules are nnU-Net v2's published heuristics, reimplemented:

- target spacing: the median spacing of the cases per axis; when that is anisotropic (largest over smallest > 3)
  the low-resolution axis takes the 10th percentile of its spacings instead, so thin-slice cases are not thrown
  away. A 2D model keeps each image's own spacing across slices (0 in the card: "keep").
- patch: the median shape after resampling, shrunk along its longest axis (in mm) until it fits the voxel budget,
  then rounded up so that every pooling divides it.
- network: a U-Net (MONAI's DynUNet) that pools an axis while its feature map stays >= 8 voxels and its spacing
  is at most twice the finest one (so anisotropic axes wait), 3x3(x3) kernels (1 along an axis still far coarser),
  filters doubling from the base up to 320 (3D) or 512 (2D).
- normalisation: CT channels are clipped to the 0.5th-99.5th percentile of the labelled voxels' intensities over
  the whole dataset and z-scored with their mean and standard deviation; every other channel is z-scored per image.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..core.labels import LabelTable
from .data import ORIENTATION, Dataset

ANISOTROPY = 3.0
MIN_FEATURE_MAP = 4  # an axis pools while its feature map is at least twice this
MAX_POOLINGS = 5
PATCH_BUDGET = {2: 256 * 256, 3: 64 * 64 * 64}  # voxels of one patch on a CPU; a GPU takes more (see plan())
BATCH_BUDGET_2D = 8 * 128 * 128  # voxels of one 2D batch on a CPU

LATERAL = re.compile(r"\b(left|right)\b", re.IGNORECASE)  # a label of one side of the body


@dataclass
class Plan:
    """Everything the trainer and the model card need; saved with the model (``training.json``)."""

    dimensions: int
    channels: int
    classes: int  # output channels: background + one per label
    spacing: tuple[float, ...]  # (k, j, i) mm; 0 keeps the image's own spacing along that axis
    patch: tuple[int, ...]  # (j, i) in 2D, (k, j, i) in 3D
    kernels: list[list[int]]
    strides: list[list[int]]
    filters: list[int]
    batch_size: int
    normalization: list[dict[str, Any]]
    median_shape: tuple[int, ...] = ()
    sparse: bool = False
    notes: list[str] = field(default_factory=list)
    mirror_axes: tuple[int, ...] | None = None  # mirrored in training and test-time mirroring; None: every axis

    @property
    def mirrors(self) -> tuple[int, ...]:
        """The axes of a patch that augmentation and test-time mirroring flip."""
        return tuple(range(self.dimensions)) if self.mirror_axes is None else self.mirror_axes

    def network_args(self) -> dict[str, Any]:
        """DynUNet's arguments, as the model card stores them (``monai_network`` format)."""
        return {
            "spatial_dims": self.dimensions,
            "in_channels": self.channels,
            "out_channels": self.classes,
            "kernel_size": self.kernels,
            "strides": self.strides,
            "upsample_kernel_size": self.strides[1:],
            "filters": self.filters,
            "norm_name": "instance",
            "res_block": False,
        }

    @property
    def divisor(self) -> tuple[int, ...]:
        """What every patch axis must be a multiple of: the product of its pooling strides."""
        return tuple(int(np.prod([s[a] for s in self.strides])) for a in range(len(self.patch)))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        data = dict(data)
        for key in ("spacing", "patch", "median_shape"):
            data[key] = tuple(data.get(key, ()))
        if data.get("mirror_axes") is not None:
            data["mirror_axes"] = tuple(data["mirror_axes"])
        return cls(**data)


def target_spacing(spacings: np.ndarray) -> np.ndarray:
    """Median spacing per axis; the 10th percentile along a low-resolution axis of an anisotropic dataset."""
    target = np.median(spacings, axis=0)
    worst = int(np.argmax(target))
    others = [a for a in range(len(target)) if a != worst]
    if target[worst] > ANISOTROPY * min(target[others]):
        target[worst] = max(np.percentile(spacings[:, worst], 10), max(target[others]) * 1.0)
    return target


def poolings(patch: list[int], spacing: list[float]) -> tuple[list[list[int]], list[list[int]]]:
    """Kernels and strides per stage (first stage stride 1) for a patch at a spacing."""
    size = [float(p) for p in patch]
    current = [float(s) for s in spacing]
    kernels = [[3 if current[a] <= 2 * min(current) else 1 for a in range(len(patch))]]
    strides = [[1] * len(patch)]
    for _ in range(MAX_POOLINGS):
        finest = (
            min(current[a] for a in range(len(patch)) if size[a] >= 2 * MIN_FEATURE_MAP)
            if any(s >= 2 * MIN_FEATURE_MAP for s in size)
            else None
        )
        if finest is None:
            break
        pool = [1 if size[a] >= 2 * MIN_FEATURE_MAP and current[a] <= 2 * finest else 0 for a in range(len(patch))]
        if not any(pool):
            break
        for a in range(len(patch)):
            if pool[a]:
                size[a] /= 2
                current[a] *= 2
        strides.append([2 if p else 1 for p in pool])
        kernels.append([3 if current[a] <= 2 * min(current) else 1 for a in range(len(patch))])
    return kernels, strides


def make_plan(
    dataset: Dataset,
    dimensions: int | None = None,
    base_filters: int = 16,
    patch_budget: int | None = None,
    batch_size: int | None = None,
    sparse: bool = False,
) -> Plan:
    """The plan for ``dataset``; ``dimensions`` 2 trains on axial slices of 3D cases as well."""
    dims = dimensions or dataset.dimensions
    notes = []
    spacings = np.array([case.spacing for case in dataset.cases], dtype=float)  # (n, 3) k, j, i
    shapes = np.array([case.shape for case in dataset.cases], dtype=float)
    if dims == 2:
        in_plane = np.median(spacings[:, 1:], axis=0)
        spacing = (0.0, float(in_plane[0]), float(in_plane[1]))
        resampled = shapes[:, 1:] * spacings[:, 1:] / in_plane
        plane_spacing = [float(s) for s in in_plane]
    else:
        target = target_spacing(spacings)
        spacing = tuple(float(s) for s in target)
        resampled = shapes * spacings / target
        plane_spacing = [float(s) for s in target]
    median = [max(1, round(float(v))) for v in np.median(resampled, axis=0)]
    budget = patch_budget or PATCH_BUDGET[dims]
    patch = [max(v, 1) for v in median]
    while int(np.prod(patch)) > budget:
        extent = [p * s for p, s in zip(patch, plane_spacing)]
        axis = int(np.argmax(extent))
        patch[axis] = max(8, int(patch[axis] * 0.9))
        if all(p <= 8 for p in patch):
            break
    kernels, strides = poolings(patch, plane_spacing)
    divisor = [int(np.prod([s[a] for s in strides])) for a in range(len(patch))]
    patch = [int(-(-p // d) * d) for p, d in zip(patch, divisor)]
    cap = 512 if dims == 2 else 320
    filters = [min(base_filters * 2**n, cap) for n in range(len(strides))]
    if batch_size is None:
        batch_size = 2 if dims == 3 else int(max(2, min(16, BATCH_BUDGET_2D // int(np.prod(patch)))))
    normalization = _normalization(dataset, notes)
    mirror_axes = _mirror_axes(dataset, dims, notes)
    return Plan(
        dimensions=dims,
        channels=len(dataset.channel_names),
        classes=len(dataset.table) + 1,
        spacing=spacing,
        patch=tuple(patch),
        kernels=kernels,
        strides=strides,
        filters=filters,
        batch_size=batch_size,
        normalization=normalization,
        median_shape=tuple(median),
        sparse=sparse,
        notes=notes,
        mirror_axes=mirror_axes,
    )


def _mirror_axes(dataset: Dataset, dims: int, notes: list[str]) -> tuple[int, ...]:
    """Every axis, except left-right when a label names a side: a mirrored left lung looks like a right one, so
    mirroring across that axis teaches the network to confuse them (nnU-Net's advice: no mirroring there)."""
    sided = [label.name for label in dataset.table if LATERAL.search(label.name)]
    if not sided:
        return tuple(range(dims))
    notes.append(f"labels name a side ({', '.join(sided)}): no mirroring across the left-right axis")
    return tuple(range(dims - 1))  # the last axis (i) is left-right in the RAS layout


def _normalization(dataset: Dataset, notes: list[str]) -> list[dict[str, Any]]:
    """CT statistics from the labelled voxels of all cases when every channel is CT, else a per-image z-score."""
    ct = [name.strip().upper() == "CT" for name in dataset.channel_names]
    if not all(ct):
        if any(ct):
            notes.append("channels mix CT with other images: every channel is z-scored per image")
        return [{"op": "zscore"}]
    values = []
    for case in dataset.cases:
        mask = case.labels > 0
        for channel in case.channels:
            found = channel[mask]
            step = max(1, found.size // 100_000)  # an even sample of each case, as large cases would dominate
            values.append(found[::step])
    sample = np.concatenate(values).astype(np.float64)
    lower, upper = np.percentile(sample, [0.5, 99.5])
    return [
        {"op": "ct", "lower": float(lower), "upper": float(upper), "mean": float(sample.mean()),
         "std": float(max(sample.std(), 1e-8))}
    ]  # fmt: skip


def card_dict(plan: Plan, table: LabelTable, channel_names: list[str], name: str, description: str) -> dict[str, Any]:
    """The model card of a trained model (``monai_network`` format: a DynUNet state dict)."""
    labels = []
    for channel, label in enumerate(sorted(table, key=lambda lb: lb.value), start=1):
        labels.append({**label.as_dict(), "channel": channel})
    return {
        "name": name,
        "format": "monai_network",
        "description": description,
        "source": "trained by segtruth train",
        "input": {"channels": plan.channels, "modality": list(channel_names), "dimensions": plan.dimensions},
        "preprocessing": {
            "orientation": ORIENTATION,
            "axes": "kji",
            "spacing": list(plan.spacing),
            "interpolation": "linear",
            "normalization": plan.normalization,
        },
        "inference": {
            "patch_size": list(plan.patch),
            "overlap": 0.5,
            "gaussian": True,
            "mirror_axes": list(plan.mirrors),
            "output": "logits",
            "output_interpolation": "linear",
            "divisible_by": max(plan.divisor),
        },
        "labels": labels,
        "weights": {"file": "model.pt"},
        "network": {"name": "DynUNet", "args": plan.network_args()},
    }
