"""SegTruth's one rule for intensities that are not numbers (NaN) or not finite (infinity)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import SegTruthError


def check_finite(values: np.ndarray, source: str | Path) -> None:
    """SegTruth's one NaN rule: every intensity it computes on is finite.

    NaN and infinity have no place in a threshold, a seed's statistics, a model's normalisation or a training
    set, and each tool would otherwise treat them its own way; so an image holding any is refused where it is
    read (only ``segtruth info`` describes such a file, counting them).
    """
    bad = int(values.size - np.count_nonzero(np.isfinite(values))) if values.dtype.kind == "f" else 0
    if bad:
        raise non_finite_error(source, bad)


def non_finite_error(source: str | Path, count: int) -> SegTruthError:
    return SegTruthError(
        f"{source}: has {count} NaN or infinite voxels; SegTruth needs finite intensities, so replace them "
        "(e.g. with the background value) first."
    )
