"""Learn as you label: a built-in trainer that turns the cases annotated so far into a model ``segment`` loads.

    from SegTruthLogic.training import train
    result = train("Dataset001_Lungs", "lungs-model", minutes=10)

The plan (spacing, patch, network depth, normalisation) is read off the dataset the way nnU-Net plans; the
model folder holds a DynUNet state dict and a model card with the dataset's label names, values, colours and
terminology. Names are imported on first use, so ``segtruth`` starts without PyTorch.
"""

from importlib import import_module
from typing import Any

_WHERE = {
    "Dataset": "data",
    "Plan": "plan",
    "TrainingResult": "trainer",
    "bootstrap": "bootstrapping",
    "make_plan": "plan",
    "read_dataset": "data",
    "train": "trainer",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_WHERE[name]}", __name__), name)
