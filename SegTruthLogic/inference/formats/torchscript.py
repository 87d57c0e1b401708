"""TorchScript files with a model card beside them (``model.pt`` + ``model.card.json``).

TorchScript is code as well as weights: ``torch.jit.load`` runs what the file says, so such files must come
from a source you trust (the catalog's entries name theirs).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..card import ModelCard
from ..checkpoint import load_scripted
from ..model import LoadedModel


def load_torchscript_file(path: Path, name: str) -> torch.jit.ScriptModule:
    """Load a TorchScript archive on the CPU through the checked loader, ready for inference."""
    module = load_scripted(path, f"model {name!r}")
    module.eval()
    return module


def load_torchscript(card: ModelCard, folder: Path) -> LoadedModel:
    """The card's ``weights.file`` (default ``model.pt``) in ``folder`` (or ``folder`` itself when it is the file)."""
    path = folder if folder.is_file() else folder / str(card.weights.get("file", "model.pt"))
    localizer = None
    if card.localizer:
        localizer = load_torchscript_file(path.parent / card.localizer["file"], card.name)
    return LoadedModel(card=card, network=load_torchscript_file(path, card.name), localizer=localizer)
