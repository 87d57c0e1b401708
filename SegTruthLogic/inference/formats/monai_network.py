"""A MONAI network (UNet, SegResNet, ...) state dict with a card naming the class and its arguments.

The card's ``network`` is ``{"name": "UNet", "args": {...}}`` (a class of ``monai.networks.nets``); the weights
load with ``torch.load(weights_only=True)``, so the file cannot run code, and with ``strict=True``, so weights
that do not fit the architecture are an error rather than a half-random network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...core.errors import SegTruthError
from ..card import ModelCard
from ..checkpoint import load_weights
from ..model import LoadedModel


def load_state_dict(path: Path, name: str) -> dict[str, torch.Tensor]:
    """A state dict from a ``.pt``/``.pth`` file (also inside ``{"state_dict": ...}`` or ``{"model": ...}``)."""
    data: Any = load_weights(path, f"model {name!r}")
    for key in ("state_dict", "model", "network_weights"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise SegTruthError(f"{path}: is not a state dict of tensors.")
    return data


def build_monai_network(spec: dict[str, Any], where: str) -> torch.nn.Module:
    from monai.networks import nets

    name = str(spec.get("name", ""))
    cls = getattr(nets, name, None)
    if not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
        raise SegTruthError(f"{where}: network {name!r} is not a class of monai.networks.nets.")
    try:
        return cls(**dict(spec.get("args") or {}))
    except (TypeError, ValueError, AssertionError) as error:
        raise SegTruthError(f"{where}: network {name} cannot be built from the card's args ({error}).") from None


def fit_weights(network: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0][:200]
        raise SegTruthError(f"{path}: the weights do not fit the network ({first}).") from None


def load_monai_network(card: ModelCard, location: Path) -> LoadedModel:
    path = location if location.is_file() else location / str(card.weights.get("file", "model.pt"))
    state = load_state_dict(path, card.name)  # the file first: a damaged one is named before MONAI is imported
    network = build_monai_network(card.network, card.name)
    fit_weights(network, state, path)
    network.eval()
    return LoadedModel(card=card, network=network)
