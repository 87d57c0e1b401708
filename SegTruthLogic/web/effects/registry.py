"""The web app's SegTruth tools, in panel order: the one list the app and the panel iterate."""

from __future__ import annotations

from . import (
    auto_segment,
    fast_marching,
    fill_between,
    flood_fill,
    grow,
    hollow,
    islands,
    local_threshold,
    scissors,
    smoothing,
    threshold,
    watershed,
)
from .base import EffectSpec

EFFECTS: list[EffectSpec] = [
    threshold.SPEC,
    grow.SPEC,
    islands.SPEC,
    fill_between.SPEC,
    smoothing.SPEC,
    hollow.SPEC,
    watershed.SPEC,
    flood_fill.SPEC,
    local_threshold.SPEC,
    fast_marching.SPEC,
    scissors.SPEC,
    auto_segment.SPEC,
]
BY_KEY: dict[str, EffectSpec] = {spec.key: spec for spec in EFFECTS}
