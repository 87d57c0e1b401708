"""MONAI bundles: ``configs/inference.json|yaml`` + ``configs/metadata.json`` + ``models/model.ts|model.pt``.

The network comes from the bundle's ``network_def`` (or ``models/model.ts``, TorchScript); the card is built
from the metadata (input channels, output ``channel_def``) and from the preprocessing transforms SegTruth knows
(Orientationd, Spacingd, ScaleIntensityRanged, NormalizeIntensityd, ...) and the inferer's ``roi_size``.
A ``segtruth.card.json`` in the bundle's root replaces the derived card. Bundle configs may hold Python
expressions that MONAI evaluates, and ``model.ts`` is code: use bundles from sources you trust.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from ...core.errors import SegTruthError
from ...core.labels import Label, LabelTable, default_color
from ..card import Inference, ModelCard, Preprocessing, read_card
from ..model import LoadedModel
from .monai_network import fit_weights, load_state_dict
from .torchscript import load_torchscript_file

CONFIG_NAMES = ("inference.json", "inference.yaml", "inference.yml")
IGNORED = {"LoadImaged", "LoadImage", "EnsureChannelFirstd", "EnsureChannelFirst", "EnsureTyped", "EnsureType",
           "CastToTyped", "CastToType", "ToTensord", "ToTensor", "AddChanneld", "ToDeviced", "Identityd"}  # fmt: skip


def is_bundle(path: Path) -> bool:
    return path.is_dir() and any((path / "configs" / name).is_file() for name in CONFIG_NAMES)


def _parser(path: Path):
    from monai.bundle import ConfigParser

    config = next((path / "configs" / n for n in CONFIG_NAMES if (path / "configs" / n).is_file()), None)
    if config is None:
        raise SegTruthError(f"{path}: not a MONAI bundle (no configs/inference.json or .yaml).")
    parser = ConfigParser()
    try:
        parser.read_config(str(config))
        meta = path / "configs" / "metadata.json"
        if meta.is_file():
            parser.read_meta(str(meta))
    except (ValueError, OSError, json.JSONDecodeError) as error:
        raise SegTruthError(f"{config}: cannot be read ({error}).") from None
    parser["bundle_root"] = str(path)
    return parser, config


def _get(parser, key: str, default: Any = None) -> Any:
    try:
        return parser.get_parsed_content(key, instantiate=False) if key in parser else default
    except Exception:  # an expression the bundle evaluates lazily; treat as absent
        return default


def _derived_card(path: Path, parser, where: str) -> ModelCard:
    meta = parser.get("_meta_", {}) or {}
    formats = meta.get("network_data_format", {}) if isinstance(meta, dict) else {}
    image = next(iter((formats.get("inputs") or {}).values()), {}) or {}
    pred = next(iter((formats.get("outputs") or {}).values()), {}) or {}
    channel_def = pred.get("channel_def") or {}
    labels = []
    for key, name in sorted(channel_def.items(), key=lambda kv: int(kv[0])):
        if int(key) == 0 and str(name).lower() in ("background", "bg"):
            continue
        labels.append(Label(str(name), int(key), default_color(int(key))))
    if not labels:
        count = int(pred.get("num_channels", 2))
        labels = [Label(f"Label {c}", c, default_color(c)) for c in range(1, count)]
    pre = Preprocessing(orientation="file", axes="ijk")
    steps: list[dict[str, Any]] = []
    transforms = parser.get("preprocessing#transforms", []) or []  # raw entries: read targets without building them
    for index, item in enumerate(transforms):
        target = str(item.get("_target_", "")).rsplit(".", 1)[-1] if isinstance(item, dict) else ""

        def arg(name: str, default: Any = None, _i: int = index) -> Any:
            return _get(parser, f"preprocessing#transforms#{_i}#{name}", default)

        if target in IGNORED:
            continue
        if target in ("Orientationd", "Orientation"):
            codes = str(arg("axcodes", "RAS"))
            if codes not in ("RAS", "LPS"):
                raise SegTruthError(f"{where}: orientation {codes!r} is not supported (RAS or LPS).")
            pre = replace(pre, orientation=codes)
        elif target in ("Spacingd", "Spacing"):
            pixdim = arg("pixdim")
            mode = arg("mode", "bilinear")
            mode = mode[0] if isinstance(mode, (list, tuple)) else mode
            pre = replace(
                pre,
                spacing=tuple(float(p) for p in pixdim),
                interpolation="nearest" if mode == "nearest" else "linear",
            )
        elif target in ("ScaleIntensityRanged", "ScaleIntensityRange"):
            a_min, a_max, b_min, b_max = (float(arg(k)) for k in ("a_min", "a_max", "b_min", "b_max"))
            if arg("clip", False):
                steps.append({"op": "clip", "lower": a_min, "upper": a_max})
            scale = (b_max - b_min) / (a_max - a_min)
            steps.append({"op": "affine", "scale": scale, "shift": b_min - a_min * scale})
        elif target in ("NormalizeIntensityd", "NormalizeIntensity"):
            steps.append({"op": "zscore", "nonzero": bool(arg("nonzero", False))})
        elif target in ("ScaleIntensityd", "ScaleIntensity"):
            steps.append({"op": "percentile_rescale", "lower": 0.0, "upper": 100.0, "clip": True})
        else:
            raise SegTruthError(
                f"{where}: preprocessing step {target or item!r} is not one SegTruth can reproduce; "
                "add a segtruth.card.json to the bundle."
            )
    pre = replace(pre, normalization=tuple(steps))
    inferer = parser.get("inferer", {}) or {}
    roi = _get(parser, "inferer#roi_size") if isinstance(inferer, dict) and "roi_size" in inferer else None
    overlap = float(_get(parser, "inferer#overlap", 0.25) or 0.25) if roi is not None else 0.5
    mode = str(_get(parser, "inferer#mode", "constant")) if roi is not None else "gaussian"
    return ModelCard(
        name=path.name,
        format="monai_bundle",
        labels=LabelTable(labels, f"labels of {where}"),
        channels=int(image.get("num_channels", 1)),
        modality=(str(image.get("modality")),) if image.get("modality") else (),
        dimensions=len(roi) if roi is not None else 3,
        preprocessing=pre,
        inference=Inference(
            patch_size=tuple(int(r) for r in roi) if roi is not None else None,
            overlap=overlap,
            gaussian=mode == "gaussian",
            mirror_axes=(0, 1, 2),
        ),
        channel_of_label={label.value: label.value for label in labels},
        description=str(meta.get("description", "")) if isinstance(meta, dict) else "",
        source=str(path),
        license=str((path / "LICENSE").read_text(encoding="utf-8").splitlines()[0])
        if (path / "LICENSE").is_file()
        else "",
        path=path,
    )


def load_bundle(path: Path, **_options: Any) -> LoadedModel:
    """Load a MONAI bundle folder: TorchScript ``models/model.ts`` or ``network_def`` + ``models/model.pt``."""
    path = Path(path)
    parser, config = _parser(path)
    override = path / "segtruth.card.json"
    card = replace(read_card(override), path=path) if override.is_file() else _derived_card(path, parser, str(config))
    card = replace(card, format="monai_bundle")
    scripted = path / "models" / "model.ts"
    weights = path / "models" / "model.pt"
    if scripted.is_file():
        return LoadedModel(card=card, network=load_torchscript_file(scripted, card.name))
    if "network_def" not in parser:
        raise SegTruthError(f"{config}: has no network_def and the bundle has no models/model.ts.")
    try:
        network = parser.get_parsed_content("network_def", instantiate=True)
    except Exception as error:
        raise SegTruthError(f"{config}: network_def cannot be built ({str(error).splitlines()[0][:160]}).") from None
    fit_weights(network, load_state_dict(weights, card.name), weights)
    network.eval()
    return LoadedModel(card=card, network=network)
