"""A loaded model: its card, its network, its ensemble members, and how its input and output are laid out.

Every format (nnU-Net folder, MONAI bundle, TorchScript file, MONAI network) loads into this one shape, so
the engine's sliding window, devices, memory fallback, cancel and export are written once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from ..core.geometry import Grid
from .card import ModelCard
from .preprocessing import Prepared, prepare, restore


@dataclass
class LoadedModel:
    """A runnable model. ``parameter_sets`` holds one state dict per ensemble member (e.g. nnU-Net folds)."""

    card: ModelCard
    network: torch.nn.Module
    parameter_sets: list[dict[str, torch.Tensor]] = field(default_factory=list)
    localizer: torch.nn.Module | None = None

    def prepare(self, channels: list[np.ndarray], grid: Grid, device: torch.device | None = None) -> Prepared:
        """Preprocess (k, j, i) arrays on ``grid`` (the image file's grid) into the network's input."""
        return prepare(self.card, channels, grid, self.localizer, device or torch.device("cpu"))

    def restore(self, output: torch.Tensor, prepared: Prepared) -> np.ndarray:
        """The network's blended output (channels, *spatial) as output-channel indices on the file's grid (k, j, i)."""
        return restore(self.card, output, prepared)

    def members(self) -> Iterator[torch.nn.Module]:
        """The network with each ensemble member's parameters in turn (one network in memory at a time)."""
        if not self.parameter_sets:
            yield self.network
            return
        for state in self.parameter_sets:
            self.network.load_state_dict(state)
            yield self.network

    @property
    def ensemble_size(self) -> int:
        return max(len(self.parameter_sets), 1)
