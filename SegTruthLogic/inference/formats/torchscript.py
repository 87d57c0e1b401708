"""TorchScript files with a model card beside them (``model.pt`` + ``model.card.json``).

TorchScript is code as well as weights: ``torch.jit.load`` runs what the file says, so such files must come
from a source you trust (the catalog's entries name theirs).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ...errors import SegTruthError
from ..card import ModelCard
from ..model import LoadedModel


def load_torchscript_file(path: Path, name: str) -> torch.jit.ScriptModule:
    """Load a TorchScript archive on the CPU; a clear error when it is missing or not TorchScript."""
    if not path.is_file():
        raise SegTruthError(f"{path}: missing weights (model {name!r} needs this TorchScript file).")
    try:
        with warnings.catch_warnings():  # torch 2.x marks TorchScript deprecated; the catalog's models are TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError, OSError) as error:
        detail = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise SegTruthError(
            f"{path}: cannot be read as a TorchScript model (corrupt or not TorchScript: {detail})."
        ) from None
    module.eval()
    return module


def load_torchscript(card: ModelCard, folder: Path) -> LoadedModel:
    """The card's ``weights.file`` (default ``model.pt``) in ``folder`` (or ``folder`` itself when it is the file)."""
    path = folder if folder.is_file() else folder / str(card.weights.get("file", "model.pt"))
    localizer = None
    if card.localizer:
        localizer = load_torchscript_file(path.parent / card.localizer["file"], card.name)
    return LoadedModel(card=card, network=load_torchscript_file(path, card.name), localizer=localizer)
