"""The web app's SegTruth tools, in panel order: the one list the app and the panel iterate."""

from __future__ import annotations

from . import auto_segment, fill_between, grow, islands, threshold
from .base import EffectSpec

EFFECTS: list[EffectSpec] = [threshold.SPEC, grow.SPEC, islands.SPEC, fill_between.SPEC, auto_segment.SPEC]
BY_KEY: dict[str, EffectSpec] = {spec.key: spec for spec in EFFECTS}
