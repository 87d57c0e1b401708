"""The panel's choices, Qt-free: the editor's effects and the enums the parameters use (formats: formats.py)."""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable
from pathlib import Path

# Slicer's Segment Editor effects, by the names effects register under (not translated), in panel order.
EDITOR_EFFECTS = (
    "Threshold",
    "Grow from seeds",
    "Islands",
    "Fill between slices",
    "Paint",
    "Erase",
    "Margin",
    "Logical operators",
    "Smoothing",
    "Hollow",
    "Scissors",
)

# The SegmentEditorExtraEffects extension's effects (by their registered names) and the SegTruth function that
# does the same where the extension is not installed (the panel's SegTruth tools section, gui/extra_tools.py;
# the Python console, recipes, the CLI and the web app).
EXTRA_EFFECTS = {
    "Fast Marching": "fast_marching",
    "Watershed": "watershed",
    "Local Threshold": "local_threshold",
    "Flood filling": "flood_fill",
}


def effect_order(available: Iterable[str]) -> list[str]:
    """The editor's effects in panel order: Slicer's core ones, then the extension's that this Slicer has."""
    present = set(available)
    return [*EDITOR_EFFECTS, *(name for name in EXTRA_EFFECTS if name in present)]


def missing_effects_note(available: Iterable[str]) -> str:
    """One sentence for the panel when SegmentEditorExtraEffects is missing; empty when every effect is there."""
    present = set(available)
    missing = [name for name in EXTRA_EFFECTS if name not in present]
    if not missing:
        return ""
    calls = ", ".join(f"SegTruthLogic.api.{EXTRA_EFFECTS[name]}" for name in missing)
    return (
        f"{', '.join(missing)}: install SegmentEditorExtraEffects from the Extensions Manager for these effects; "
        f"until then SegTruth's own are in the SegTruth tools section below, and {calls} in the Python console "
        "(the same tools the recipes and the web app run)."
    )


class Device(enum.Enum):
    """Where inference runs; ``auto`` picks a CUDA GPU, then Apple MPS, then the CPU."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"
    MPS = "mps"

    def label(self) -> str:
        """Text shown in the device combo box (Slicer's enum connector calls this)."""
        return {"auto": "Automatic (GPU if available)", "cpu": "CPU", "cuda": "NVIDIA GPU (CUDA)", "mps": "Apple GPU"}[
            self.value
        ]


class TrainDimensions(enum.Enum):
    """The kind of model Train makes."""

    TWO_D = "2"
    THREE_D = "3"

    def label(self) -> str:
        """Text shown in the combo box (Slicer's enum connector calls this)."""
        return {"2": "2D: slice by slice (fast on a CPU; learns from a few slices)", "3": "3D"}[self.value]


def default_nnunet_folder() -> Path:
    """nnU-Net's own ``nnUNet_raw`` setting when there is one."""
    return Path(os.environ.get("nnUNet_raw") or Path.home() / "nnUNet_raw")  # noqa: SIM112 (nnU-Net's own name)
