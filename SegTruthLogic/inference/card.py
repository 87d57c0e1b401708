"""The model card: everything the engine needs to run a model and turn its output into labelled segments.

A card is a JSON file (``*.card.json``) so a model's preprocessing, patch size and label values are read,
never guessed from segment order or from the network's output channel order. nnU-Net folders and MONAI
bundles carry their own metadata; their format readers build a card from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core.errors import SegTruthError
from ..core.labels import Label, LabelTable, label_from_mapping
from ..core.textfile import parse_json, read_text

FORMATS = ("nnunet", "torchscript", "monai_bundle", "monai_network")
ORIENTATIONS = ("file", "RAS", "LPS")
AXES = ("kji", "ijk")
OUTPUTS = ("logits", "probabilities", "sigmoid")
INTERPOLATIONS = ("nearest", "linear", "cubic")
NORMALIZATION_OPS = ("clip", "percentile_rescale", "zscore", "affine", "ct")
POSTPROCESSING = ("largest_component", "fill_holes")


@dataclass(frozen=True)
class Preprocessing:
    """How a volume becomes the network's input tensor.

    ``orientation``: ``file`` keeps the image file's voxel order (nnU-Net's readers do); ``RAS``/``LPS``
    permute and flip axes to the closest such orientation (no interpolation). ``axes``: whether tensor axes
    are (k, j, i) as SimpleITK arrays or (i, j, k) as nibabel/MONAI arrays. Then either ``spacing`` (mm, in
    tensor axis order; 0 keeps the image's own along that axis, as a 2D model's slice axis) or a fixed ``shape``; ``normalization`` is a list of steps (see ``NORMALIZATION_OPS``).
    """

    orientation: str = "RAS"
    axes: str = "ijk"
    spacing: tuple[float, ...] | None = None
    shape: tuple[int, ...] | None = None
    interpolation: str = "linear"
    normalization: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Inference:
    """Sliding window and output interpretation.

    A patch of ``None`` runs the whole (resampled) volume at once, zero-padded to a multiple of ``divisible_by``
    (what the network's poolings need).
    """

    patch_size: tuple[int, ...] | None = None
    overlap: float = 0.5
    gaussian: bool = True
    mirror_axes: tuple[int, ...] = (0, 1, 2)
    output: str = "logits"
    threshold: float = 0.5
    output_interpolation: str = "linear"
    divisible_by: int = 1


@dataclass(frozen=True)
class ModelCard:
    """A model's contract with the engine (see ``Resources/Models/*.card.json`` for examples)."""

    name: str
    format: str
    labels: LabelTable
    channels: int = 1
    modality: tuple[str, ...] = ()
    dimensions: int = 3
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    inference: Inference = field(default_factory=Inference)
    postprocessing: tuple[str, ...] = ()
    channel_of_label: dict[int, int] = field(default_factory=dict)
    weights: dict[str, Any] = field(default_factory=dict)
    network: dict[str, Any] = field(default_factory=dict)
    localizer: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = ""
    license: str = ""
    path: Path | None = None

    @property
    def out_channels(self) -> int:
        """Network output channels: background plus one per label unless the card maps them otherwise."""
        if self.inference.output == "sigmoid":
            return max(self.channel_of_label.values(), default=-1) + 1
        return max([0, *self.channel_of_label.values()]) + 1

    def with_labels(self, table: LabelTable) -> ModelCard:
        return replace(self, labels=table)


def _tuple(value: Any, where: str, kind: type = float, length: int | None = None) -> tuple | None:
    if value is None:
        return None
    try:
        out = tuple(kind(v) for v in value)
    except (TypeError, ValueError):
        raise SegTruthError(f"{where}: expected a list of numbers, got {value!r}.") from None
    if length is not None and len(out) != length:
        raise SegTruthError(f"{where}: expected {length} numbers, got {len(out)}.")
    return out


def _choice(value: Any, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise SegTruthError(f"{where}: {value!r} is not one of {', '.join(allowed)}.")
    return str(value)


def card_from_dict(data: Any, where: str, path: Path | None = None) -> ModelCard:
    """Validate a card mapping; every problem is one sentence naming the card and the field."""
    if not isinstance(data, dict):
        raise SegTruthError(f"{where}: a model card is a JSON object.")
    known = {
        "name", "format", "description", "source", "license", "input", "preprocessing", "inference",
        "postprocessing", "labels", "weights", "network", "localizer",
    }  # fmt: skip
    unknown = sorted(set(data) - known)
    if unknown:
        raise SegTruthError(f"{where}: unknown card keys {unknown}.")
    name = str(data.get("name") or (path.name.split(".")[0] if path else "")).strip()
    if not name:
        raise SegTruthError(f"{where}: the card has no name.")
    fmt = _choice(data.get("format"), FORMATS, f"{where}, format")
    entries = data.get("labels")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise SegTruthError(f"{where}: 'labels' must be a non-empty list of labels.")
    labels: list[Label] = []
    channels: dict[int, int] = {}
    for entry in entries:
        label = label_from_mapping(entry, where)
        labels.append(label)
        channel = entry.get("channel", label.value)
        if not isinstance(channel, int) or channel < 0:
            raise SegTruthError(f"{where}, label {label.name!r}: channel must be a whole number >= 0.")
        channels[label.value] = channel
    table = LabelTable(labels, f"labels of model {name!r}")

    source = data.get("input") or {}
    dims = int(source.get("dimensions", 3))
    if dims not in (2, 3):
        raise SegTruthError(f"{where}, input.dimensions: must be 2 or 3.")
    pre = data.get("preprocessing") or {}
    steps = pre.get("normalization") or []
    if not isinstance(steps, list) or not all(isinstance(s, dict) and s.get("op") in NORMALIZATION_OPS for s in steps):
        raise SegTruthError(
            f"{where}, preprocessing.normalization: a list of steps whose 'op' is one of {', '.join(NORMALIZATION_OPS)}."
        )
    preprocessing = Preprocessing(
        orientation=_choice(pre.get("orientation", "RAS"), ORIENTATIONS, f"{where}, preprocessing.orientation"),
        axes=_choice(pre.get("axes", "ijk"), AXES, f"{where}, preprocessing.axes"),
        spacing=_tuple(pre.get("spacing"), f"{where}, preprocessing.spacing", float, 3),
        shape=_tuple(pre.get("shape"), f"{where}, preprocessing.shape", int, 3),
        interpolation=_choice(pre.get("interpolation", "linear"), INTERPOLATIONS, f"{where}, preprocessing"),
        normalization=tuple(steps),
    )
    inf = data.get("inference") or {}
    inference = Inference(
        patch_size=_tuple(inf.get("patch_size"), f"{where}, inference.patch_size", int),
        overlap=float(inf.get("overlap", 0.5)),
        gaussian=bool(inf.get("gaussian", True)),
        mirror_axes=_tuple(inf.get("mirror_axes", (0, 1, 2)), f"{where}, inference.mirror_axes", int) or (),
        output=_choice(inf.get("output", "logits"), OUTPUTS, f"{where}, inference.output"),
        threshold=float(inf.get("threshold", 0.5)),
        output_interpolation=_choice(
            inf.get("output_interpolation", "linear"), INTERPOLATIONS, f"{where}, inference.output_interpolation"
        ),
        divisible_by=int(inf.get("divisible_by", 1)),
    )
    if not 0 <= inference.overlap < 1:
        raise SegTruthError(f"{where}, inference.overlap: must be in [0, 1).")
    post = tuple(data.get("postprocessing") or ())
    for step in post:
        _choice(step, POSTPROCESSING, f"{where}, postprocessing")
    modality = source.get("modality") or ()
    return ModelCard(
        name=name,
        format=fmt,
        labels=table,
        channels=int(source.get("channels", 1)),
        modality=(modality,) if isinstance(modality, str) else tuple(str(m) for m in modality),
        dimensions=dims,
        preprocessing=preprocessing,
        inference=inference,
        postprocessing=post,
        channel_of_label=channels,
        weights=dict(data.get("weights") or {}),
        network=dict(data.get("network") or {}),
        localizer=_localizer(data.get("localizer"), where),
        description=str(data.get("description", "")),
        source=str(data.get("source", "")),
        license=str(data.get("license", "")),
        path=path,
    )


def _localizer(value: Any, where: str) -> dict[str, Any]:
    """A coarse model that finds the region to crop before the main model runs (two-stage models)."""
    if not value:
        return {}
    if not isinstance(value, dict) or not value.get("file"):
        raise SegTruthError(f"{where}, localizer: needs at least the weights 'file'.")
    shape = _tuple(value.get("shape"), f"{where}, localizer.shape", int, 3)
    if shape is None:
        raise SegTruthError(f"{where}, localizer: needs the 'shape' its input is resized to.")
    return {
        "file": str(value["file"]),
        "shape": shape,
        "channel": int(value.get("channel", 1)),
        "threshold": float(value.get("threshold", 0.5)),
        "margin": float(value.get("margin", 0.1)),
        "min_fraction": float(value.get("min_fraction", 0.0)),
    }


def read_card(path: str | Path) -> ModelCard:
    """Read and validate a ``*.card.json`` file."""
    path = Path(path)
    data = parse_json(read_text(path, "model card"), str(path))
    return card_from_dict(data, str(path), path)
