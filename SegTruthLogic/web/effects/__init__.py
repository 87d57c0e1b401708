"""SegTruth's tools as editor effects with preview, apply and cancel, one module per effect.

Each module holds, as trame-slicer organises its effects, the effect's settings (a dataclass kept in the
trame state), its widgets (a UI function) and its logic (an ``Effect``), tied together by an ``EffectSpec``;
``registry.EFFECTS`` lists them. An effect runs the SegTruth tool function itself on a copy of the case's
segmentation (``preview.Previewer``). Its heavy part (growing, inference) is returned by ``start`` as a
function that touches no MRML node, so the server runs it in a worker thread with progress and cancel while
views stay live; ``write`` puts its result into a node on the main thread, as MRML requires.
"""

from __future__ import annotations

from .auto_segment import AutoSegmentEffect
from .base import BoundState, Effect, EffectSpec, Work
from .fast_marching import FastMarchingEffect
from .fill_between import FillBetweenEffect
from .flood_fill import FloodFillEffect
from .grow import GrowEffect
from .hollow import HollowEffect
from .islands import IslandMode, IslandsEffect
from .local_threshold import LocalThresholdEffect
from .preview import PREVIEW_NAME, Previewer
from .registry import BY_KEY, EFFECTS
from .scissors import ScissorsEffect
from .smoothing import SmoothingEffect
from .threshold import ThresholdEffect
from .watershed import WatershedEffect

__all__ = [
    "BY_KEY",
    "EFFECTS",
    "PREVIEW_NAME",
    "AutoSegmentEffect",
    "BoundState",
    "Effect",
    "EffectSpec",
    "FastMarchingEffect",
    "FillBetweenEffect",
    "FloodFillEffect",
    "GrowEffect",
    "HollowEffect",
    "IslandMode",
    "IslandsEffect",
    "LocalThresholdEffect",
    "Previewer",
    "ScissorsEffect",
    "SmoothingEffect",
    "ThresholdEffect",
    "WatershedEffect",
    "Work",
]
