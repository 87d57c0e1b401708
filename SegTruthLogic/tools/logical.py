"""Logical operators on segments by name, as Slicer's Logical operators effect applies them.

Like the effect, operators bypass masking by default (``BYPASS_MASKING``: edit everywhere, overwrite no
other segment); pass other ``EditOptions`` to have the editable area and overwrite settings apply.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..core.errors import SegTruthError
from ..core.geometry import Grid
from ..scene.editing import EditOptions, Mode, apply_mask
from ..scene.segments import find_segment, segment_mask
from ..scene.session import Session

Operation = Literal["copy", "union", "add", "intersect", "subtract", "invert", "clear", "fill"]

BYPASS_MASKING = EditOptions(editable_area="everywhere", overwrite="none")
"""Slicer's Logical operators default: only the selected segment changes, with no masking."""

_WITH_MODIFIER = ("copy", "union", "add", "intersect", "subtract")
_OPERATIONS = (*_WITH_MODIFIER, "invert", "clear", "fill")


def logical_operation(
    session: Session,
    segmentation_node,
    volume,
    operation: Operation,
    segment: str,
    modifier: str | None = None,
    options: EditOptions = BYPASS_MASKING,
) -> None:
    """Apply ``operation`` to ``segment``; copy/union(add)/intersect/subtract take a ``modifier`` segment."""
    if operation not in _OPERATIONS:
        raise SegTruthError(f"Unknown logical operation {operation!r}; use one of {', '.join(_OPERATIONS)}.")
    segment_id = find_segment(segmentation_node, segment)
    if operation in _WITH_MODIFIER:
        if not modifier:
            raise SegTruthError(f"Logical operation {operation!r} needs a modifier segment.")
        modifier_mask = segment_mask(session, segmentation_node, find_segment(segmentation_node, modifier), volume)
    elif modifier:
        raise SegTruthError(f"Logical operation {operation!r} takes no modifier segment (got {modifier!r}).")
    mode: Mode = "set"
    if operation == "copy":
        mask = modifier_mask
    elif operation in ("union", "add"):
        mask, mode = modifier_mask, "add"
    elif operation == "subtract":
        mask, mode = modifier_mask, "remove"
    elif operation == "intersect":
        mask = segment_mask(session, segmentation_node, segment_id, volume) & modifier_mask
    elif operation == "invert":
        mask = ~segment_mask(session, segmentation_node, segment_id, volume)
    else:
        mask = np.full(Grid.from_node(volume).shape_kji, operation == "fill", dtype=bool)
    apply_mask(session, segmentation_node, segment_id, volume, mask, mode, options)


def copy(
    session: Session, segmentation_node, volume, segment: str, modifier: str, options: EditOptions = BYPASS_MASKING
) -> None:
    """Replace ``segment`` with a copy of ``modifier``."""
    logical_operation(session, segmentation_node, volume, "copy", segment, modifier, options)


def union(
    session: Session, segmentation_node, volume, segment: str, modifier: str, options: EditOptions = BYPASS_MASKING
) -> None:
    """Add ``modifier``'s voxels to ``segment``."""
    logical_operation(session, segmentation_node, volume, "union", segment, modifier, options)


def intersect(
    session: Session, segmentation_node, volume, segment: str, modifier: str, options: EditOptions = BYPASS_MASKING
) -> None:
    """Keep only the voxels of ``segment`` that are also in ``modifier``."""
    logical_operation(session, segmentation_node, volume, "intersect", segment, modifier, options)


def subtract(
    session: Session, segmentation_node, volume, segment: str, modifier: str, options: EditOptions = BYPASS_MASKING
) -> None:
    """Remove ``modifier``'s voxels from ``segment``."""
    logical_operation(session, segmentation_node, volume, "subtract", segment, modifier, options)


def invert(session: Session, segmentation_node, volume, segment: str, options: EditOptions = BYPASS_MASKING) -> None:
    """Make ``segment`` everything in the volume it was not."""
    logical_operation(session, segmentation_node, volume, "invert", segment, None, options)


def clear(session: Session, segmentation_node, volume, segment: str, options: EditOptions = BYPASS_MASKING) -> None:
    """Empty ``segment`` (keeping the segment itself)."""
    logical_operation(session, segmentation_node, volume, "clear", segment, None, options)


def fill(session: Session, segmentation_node, volume, segment: str, options: EditOptions = BYPASS_MASKING) -> None:
    """Make ``segment`` the whole volume."""
    logical_operation(session, segmentation_node, volume, "fill", segment, None, options)
