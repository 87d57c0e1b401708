"""The recipe step ``segment``: auto-segment the case's image with a model, loaded once per process.

```yaml
steps:
  - segment: {model: deepbet}            # a catalog name, a model folder, a *.card.json or a TorchScript file
  - keep_largest_island: {segment: brain}
```

A batch worker runs hundreds of cases: loading weights for each would cost more than the inference, so loaded
models stay in this process, keyed by what names them. The batch command's ``--device`` overrides the step's own
``device`` (the person running the batch knows the machine; the recipe's author did not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import SegTruthError
from ..core.progress import CancelToken, ProgressCallback

_MODELS: dict[str, Any] = {}  # model key -> LoadedModel
_DEVICE_OVERRIDE: str | None = None
CHANNEL_REFERENCE = "SegTruth.Channel"  # extra input channels of a case: node references on its first image


def override_device(device: str | None) -> None:
    """Make every ``segment`` step in this process run on ``device`` (None: the step's own choice)."""
    global _DEVICE_OVERRIDE
    _DEVICE_OVERRIDE = device


def model_key(model: str) -> str:
    """What identifies a model in the cache: its absolute path when it is a path, else its catalog name."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def loaded_model(model: str):
    """The model, loaded the first time this process asks for it."""
    key = model_key(model)
    if key not in _MODELS:
        from . import load_model

        _MODELS[key] = load_model(model)
    return _MODELS[key]


def models_loaded() -> int:
    """How many models this process has loaded (each exactly once)."""
    return len(_MODELS)


def forget_models() -> None:
    _MODELS.clear()


def segment(
    session,
    segmentation_node,
    volume,
    model: str | None = None,
    device: str = "auto",
    tta: bool = False,
    batch_size: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    precision: str | None = None,
) -> None:
    """Segment ``volume`` (and its extra channels, if the case has several) with ``model`` into the segmentation.

    ``precision``: the network's arithmetic (see ``inference.engine.predict``); None: ``SEGTRUTH_PRECISION`` or auto.
    """
    from . import segment as run_model

    if not model:
        raise SegTruthError("The segment step needs a model: a catalog name, a model folder or a *.card.json.")
    channels = [volume]
    for index in range(volume.GetNumberOfNodeReferences(CHANNEL_REFERENCE)):
        channels.append(volume.GetNthNodeReference(CHANNEL_REFERENCE, index))
    run_model(
        session,
        segmentation_node,
        channels if len(channels) > 1 else volume,
        loaded_model(str(model)),
        _DEVICE_OVERRIDE or device,
        tta,
        batch_size,
        progress,
        cancel,
        precision,
    )


def recipe_models(recipe) -> list[str]:
    """The models a recipe's ``segment`` steps name, in order, once each."""
    names: list[str] = []
    for number, step in enumerate(recipe.steps, start=1):
        if step.name.replace("-", "_") != "segment":
            continue
        model = step.params.get("model")
        if not model:
            raise SegTruthError(f"{recipe.source}, step {number} (segment): give the model (catalog name or path).")
        if str(model) not in names:
            names.append(str(model))
    return names
