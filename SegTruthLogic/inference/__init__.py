"""Model-assisted segmentation: one engine for nnU-Net v2 folders, MONAI bundles, TorchScript and MONAI networks.

    from SegTruthLogic.inference import segment
    segmentation = segment(volume_node, "deepbet", device="auto")

Models are described by a card (input channels, preprocessing, patch size, labels with values, colors and
terminology); results land on the image's exact voxels with the card's label values.
"""

from importlib import import_module
from typing import Any

# Names are imported on first use (PEP 562): listing commands or the catalog must not wait for torch.
_SOURCES = {
    "ModelCard": "card",
    "read_card": "card",
    "describe_models": "catalog",
    "load_model": "catalog",
    "register_model": "catalog",
    "unregister_model": "catalog",
    "Result": "engine",
    "predict": "engine",
    "resolve_device": "engine",
    "segment": "engine",
    "LoadedModel": "model",
    "InferenceJob": "runner",
    "run_in_subprocess": "runner",
    "run_in_thread": "runner",
}


def __getattr__(name: str) -> Any:
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_SOURCES[name]}", __name__), name)


__all__ = [
    "InferenceJob",
    "LoadedModel",
    "ModelCard",
    "Result",
    "describe_models",
    "load_model",
    "predict",
    "read_card",
    "register_model",
    "resolve_device",
    "run_in_subprocess",
    "run_in_thread",
    "segment",
    "unregister_model",
]
