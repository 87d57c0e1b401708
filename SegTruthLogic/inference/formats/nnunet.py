"""nnU-Net v2 results folders, read without a card and run exactly as nnunetv2's own predictor does.

A results folder is ``dataset.json`` + ``plans.json`` + ``fold_N/checkpoint_final.pth`` (one trainer/plans/
configuration folder, or the dataset folder holding several: 3d_fullres is preferred, then 2d). Preprocessing
follows the plans: the image file's own voxel order (nnU-Net's readers do not reorient), ``transpose_forward``,
crop to the non-zero region, normalization per channel, resampling to the configuration's spacing; the
logits of each fold are averaged, resampled back, cropped back and transposed back.
Checkpoints load with ``torch.load(weights_only=True)``: no code from the file runs.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from ...core.errors import SegTruthError
from ...core.geometry import Grid
from ...core.labels import Label, LabelTable, default_color
from ..card import Inference, ModelCard, Preprocessing
from ..checkpoint import load_weights
from ..model import LoadedModel
from ..preprocessing import Prepared
from ..resampling import new_shape, resize, resize_linear, separate_axis
from ..sliding_window import fits_on_device
from .nnunet_network import build_network

# nnU-Net's training log holds numpy scalars; rebuilding a number from its dtype and bytes runs no code. The
# checkpoint names the function as the numpy that saved it did (numpy._core in 2.x, numpy.core in 1.x, which
# Slicer 5.8 ships), so it is allowed under both names.
_SCALAR = importlib.import_module("numpy._core.multiarray").scalar
_NUMPY_SCALARS = [
    (_SCALAR, "numpy._core.multiarray.scalar"),
    (_SCALAR, "numpy.core.multiarray.scalar"),
    np.dtype,
    *(getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")),
]
CONFIGURATION_PREFERENCE = ("3d_fullres", "2d", "3d_lowres")
CHECKPOINT = "checkpoint_final.pth"


def is_nnunet_folder(path: Path) -> bool:
    return path.is_dir() and (
        (path / "plans.json").is_file() or any((p / "plans.json").is_file() for p in path.glob("*__*__*"))
    )


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SegTruthError(f"{path}: not found; an nnU-Net results folder needs dataset.json and plans.json.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SegTruthError(f"{path}: not valid JSON ({error}).") from None
    if not isinstance(data, dict):
        raise SegTruthError(f"{path}: expected a JSON object.")
    return data


def _trainer_folder(path: Path, configuration: str | None) -> Path:
    """The trainer__plans__configuration folder to run."""
    if (path / "plans.json").is_file():
        return path
    folders = {p.name.split("__")[-1]: p for p in sorted(path.glob("*__*__*")) if (p / "plans.json").is_file()}
    if configuration is not None:
        if configuration not in folders:
            raise SegTruthError(f"{path}: has no {configuration!r} model (found {', '.join(folders) or 'none'}).")
        return folders[configuration]
    for name in CONFIGURATION_PREFERENCE:
        if name in folders:
            return folders[name]
    raise SegTruthError(f"{path}: has no runnable nnU-Net configuration (found {', '.join(folders) or 'none'}).")


def _configuration(plans: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    """A configuration with its ``inherits_from`` chain resolved."""
    configurations = plans.get("configurations", {})
    if name not in configurations:
        raise SegTruthError(f"{where}: plans.json has no configuration {name!r}.")
    entry = dict(configurations[name])
    seen = {name}
    while "inherits_from" in entry:
        parent = entry.pop("inherits_from")
        if parent in seen or parent not in configurations:
            raise SegTruthError(f"{where}: configuration {name!r} inherits from a missing or circular {parent!r}.")
        seen.add(parent)
        entry = {**configurations[parent], **entry}
    return entry


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's contents, unpickled with ``weights_only=True`` (tensors and plain data only)."""
    data = load_weights(path, "the nnU-Net model folder", _NUMPY_SCALARS)
    if not isinstance(data, dict):
        raise SegTruthError(f"{path}: is not an nnU-Net checkpoint (no dictionary inside).")
    return data


def _labels(dataset: dict[str, Any], where: str) -> tuple[LabelTable, dict[int, int]]:
    labels = dataset.get("labels")
    if not isinstance(labels, dict):
        raise SegTruthError(f"{where}: dataset.json has no 'labels' mapping.")
    if any(isinstance(v, (list, tuple)) for v in labels.values()) or "regions_class_order" in dataset:
        raise SegTruthError(f"{where}: region-based nnU-Net models are not supported yet.")
    values = {name: int(v) for name, v in labels.items() if name != "ignore" and int(v) != 0}
    if sorted(values.values()) != list(range(1, len(values) + 1)):
        raise SegTruthError(f"{where}: dataset.json labels must be consecutive from 1 (got {sorted(values.values())}).")
    table = LabelTable([Label(n, v, default_color(v)) for n, v in values.items()], f"labels of {where}")
    return table, {v: v for v in values.values()}


@dataclass
class NNUNetModel(LoadedModel):
    """A loaded nnU-Net configuration: its plans, its network and one parameter set per fold."""

    plans: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)

    # -- preprocessing (DefaultPreprocessor.run_case_npy) --------------------------------------------------------
    def prepare(self, channels: list[np.ndarray], grid: Grid, device: torch.device | None = None) -> Prepared:
        forward = list(self.plans.get("transpose_forward", [0, 1, 2]))
        data = np.stack([c.astype(np.float32) for c in channels])  # (C, k, j, i), the file's voxel order
        data = data.transpose([0, *[a + 1 for a in forward]])
        spacing_kji = [float(s) for s in grid.spacing[::-1]]
        spacing = [spacing_kji[a] for a in forward]
        shape_before = data.shape[1:]
        nonzero = ndimage.binary_fill_holes(np.any(data != 0, axis=0))
        bbox = _bbox(nonzero)
        crop = tuple(slice(lo, hi) for lo, hi in bbox)
        data = data[(slice(None), *crop)]
        mask = nonzero[crop]
        target = [float(s) for s in self.config["spacing"]]
        if len(target) < data.ndim - 1:  # 2d configuration: keep the slice spacing
            target = [spacing[0], *target]
        shape = new_shape(data.shape[1:], spacing, target)
        data = self._normalize(data, mask)
        kwargs = self.config.get("resampling_fn_data_kwargs", {})
        axis = separate_axis(spacing, target, kwargs.get("force_separate_z"))
        data = resize(data, shape, int(kwargs.get("order", 3)), axis)
        context = {
            "shape_before": shape_before,
            "bbox": bbox,
            "cropped": mask.shape,
            "spacing": spacing,
            "target": target,
        }
        return Prepared(torch.from_numpy(np.ascontiguousarray(data)), context)

    def _normalize(self, data: np.ndarray, mask: np.ndarray) -> np.ndarray:
        schemes = self.config.get("normalization_schemes", [])
        use_mask = self.config.get("use_mask_for_norm", [False] * len(schemes))
        properties = self.plans.get("foreground_intensity_properties_per_channel", {})
        for c in range(data.shape[0]):
            image = data[c]
            scheme = schemes[c]
            if scheme == "CTNormalization":
                p = properties[str(c)]
                np.clip(image, p["percentile_00_5"], p["percentile_99_5"], out=image)
                image -= p["mean"]
                image /= max(p["std"], 1e-8)
            elif scheme == "ZScoreNormalization":
                if use_mask[c]:
                    mean, std = image[mask].mean(), image[mask].std()
                    image[mask] = (image[mask] - mean) / max(std, 1e-8)
                else:
                    mean, std = image.mean(), image.std()
                    image -= mean
                    image /= max(std, 1e-8)
            elif scheme == "RescaleTo01Normalization":
                image -= image.min()
                image /= np.clip(image.max(), a_min=1e-8, a_max=None)
            elif scheme == "RGBTo01Normalization":
                image /= 255.0
            elif scheme != "NoNormalization":
                raise SegTruthError(f"{self.card.name}: unknown nnU-Net normalization {scheme!r}.")
        return data

    # -- export (convert_predicted_logits_to_segmentation_with_correct_shape) ----------------------------------------
    def restore(self, logits: torch.Tensor, prepared: Prepared) -> np.ndarray:
        ctx = prepared.context
        kwargs = self.config.get("resampling_fn_probabilities_kwargs", {})
        axis = separate_axis(ctx["target"], ctx["spacing"], kwargs.get("force_separate_z"))
        order = int(kwargs.get("order", 1))
        dtype = np.uint8 if logits.shape[0] < 256 else np.uint16
        if order == 1:  # in torch, on the logits' device (they stay on a GPU when they fit there)
            logits = logits if fits_on_device(logits, ctx["cropped"]) else logits.cpu()
            index = torch.argmax(resize_linear(logits, ctx["cropped"], axis), dim=0)
            labels = index.to(torch.int32).cpu().numpy().astype(dtype)
        else:
            labels = np.argmax(resize(logits, ctx["cropped"], order, axis), axis=0).astype(dtype)
        full = np.zeros(ctx["shape_before"], dtype=labels.dtype)
        full[tuple(slice(lo, hi) for lo, hi in ctx["bbox"])] = labels
        return full.transpose(list(self.plans.get("transpose_backward", [0, 1, 2])))


def _bbox(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open bounding box of the mask per axis; the whole extent when the mask is empty (as nnU-Net)."""
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.nonzero(mask.any(axis=other))[0]
        box.append((int(hits[0]), int(hits[-1]) + 1) if hits.size else (0, mask.shape[axis]))
    return box


def load_nnunet(
    path: str | Path, folds: tuple[int | str, ...] | None = None, configuration: str | None = None
) -> NNUNetModel:
    """Load an nnU-Net v2 results folder (all folds found, or ``folds``) into a runnable model."""
    path = Path(path)
    if not path.is_dir():
        raise SegTruthError(f"{path}: nnU-Net results folder not found.")
    folder = _trainer_folder(path, configuration)
    plans = _read_json(folder / "plans.json")
    dataset = _read_json(folder / "dataset.json")
    if folds is None:
        found = sorted(p.name[len("fold_") :] for p in folder.glob("fold_*") if (p / CHECKPOINT).is_file())
        folds = tuple(int(f) if f.isdigit() else f for f in found)
        if not folds:
            raise SegTruthError(f"{folder}: missing weights (no fold_N/{CHECKPOINT}).")
    checkpoints = [load_checkpoint(folder / f"fold_{f}" / CHECKPOINT) for f in folds]
    first = checkpoints[0]
    try:
        config_name = first["init_args"]["configuration"]
    except (KeyError, TypeError):
        raise SegTruthError(f"{folder / f'fold_{folds[0]}' / CHECKPOINT}: is not an nnU-Net checkpoint.") from None
    config = _configuration(plans, config_name, str(folder))
    if config.get("previous_stage"):
        raise SegTruthError(f"{folder}: cascade configurations ({config_name}) are not supported yet; use 3d_fullres.")
    table, channel_of_label = _labels(dataset, str(folder))
    in_channels = len(dataset.get("channel_names", dataset.get("modality", {"0": ""})))
    network = build_network(config.get("architecture", {}), in_channels, len(table) + 1, str(folder / "plans.json"))
    states = []
    for f, checkpoint in zip(folds, checkpoints):
        where = folder / f"fold_{f}" / CHECKPOINT
        weights = checkpoint.get("network_weights")
        if not isinstance(weights, dict):
            raise SegTruthError(f"{where}: has no network weights.")
        try:
            network.load_state_dict(weights, strict=True)
        except RuntimeError as error:
            first_line = str(error).strip().splitlines()[0][:200]
            raise SegTruthError(f"{where}: its weights do not fit the plans' network ({first_line}).") from None
        states.append(weights)
    mirror = first.get("inference_allowed_mirroring_axes")
    patch = tuple(int(p) for p in config["patch_size"])
    names = dataset.get("channel_names", {})
    card = ModelCard(
        name=folder.parent.name if folder != path or folder.parent.name.startswith("Dataset") else folder.name,
        format="nnunet",
        labels=table,
        channels=in_channels,
        modality=tuple(str(names[k]) for k in sorted(names, key=int)),
        dimensions=len(patch),
        preprocessing=Preprocessing(orientation="file", axes="kji"),
        inference=Inference(patch_size=patch, mirror_axes=tuple(mirror) if mirror is not None else ()),
        channel_of_label=channel_of_label,
        description=f"nnU-Net v2 {config_name}, folds {', '.join(str(f) for f in folds)}",
        source=str(folder),
        path=folder,
    )
    return NNUNetModel(card=card, network=network, parameter_sets=states, plans=plans, config=config, dataset=dataset)
