"""Model-assisted segmentation: one engine for nnU-Net v2 folders, MONAI bundles, TorchScript and MONAI networks.

    from SegTruthLogic.inference import segment
    segmentation = segment(session, None, volume_node, "deepbet", device="auto")

Models are described by a card (input channels, preprocessing, patch size, labels with values, colors and
terminology); results land on the image's exact voxels with the card's label values. Names are imported on
first use, so ``segtruth`` (which adds the inference commands) starts without PyTorch and works without it.
"""

from importlib import import_module
from typing import Any

_WHERE = {
    "InferenceJob": "runner",
    "LoadedModel": "model",
    "ModelCard": "card",
    "Result": "engine",
    "describe_models": "catalog",
    "load_model": "catalog",
    "predict": "engine",
    "read_card": "card",
    "register_model": "catalog",
    "resolve_device": "engine",
    "run_in_subprocess": "runner",
    "run_in_thread": "runner",
    "segment": "engine",
    "unregister_model": "catalog",
}
__all__ = sorted(_WHERE)
RECIPE_STEPS: dict[str, str] = {"segment": "SegTruthLogic.inference.recipe_step:segment"}  # see tools.RECIPE_STEPS


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_WHERE[name]}", __name__), name)
