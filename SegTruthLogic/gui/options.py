"""The panel's choices, Qt-free: the editor's effects and the device enum the parameters use (formats: formats.py)."""

from __future__ import annotations

import enum
import os
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


def default_nnunet_folder() -> Path:
    """nnU-Net's own ``nnUNet_raw`` setting when there is one."""
    return Path(os.environ.get("nnUNet_raw") or Path.home() / "nnUNet_raw")  # noqa: SIM112 (nnU-Net's own name)
