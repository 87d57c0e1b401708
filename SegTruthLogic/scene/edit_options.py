"""The Segment Editor's masking settings as one value: where edits may land and which segments they may take from.

Plain data (no Slicer), so recipes, the panel and the web app can check and pass them before a scene exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..core.errors import SegTruthError

EditableArea = Literal["everywhere", "inside", "outside_all", "inside_all", "outside_visible", "inside_visible"]
Overwrite = Literal["all", "visible", "none"]
Mode = Literal["set", "add", "remove"]

EDITABLE_AREAS = ("everywhere", "inside", "outside_all", "inside_all", "outside_visible", "inside_visible")
OVERWRITE_MODES = ("all", "visible", "none")


@dataclass(frozen=True)
class EditOptions:
    """Segment Editor masking settings.

    editable_area: where edits may land; ``inside`` needs ``inside_segment``.
    intensity_range: edits land only where the source volume is within [low, high].
    overwrite: which other segments lose voxels the edit claims (Slicer's default: all).
    """

    editable_area: EditableArea = "everywhere"
    inside_segment: str | None = None
    intensity_range: tuple[float, float] | None = None
    overwrite: Overwrite = "all"

    def __post_init__(self) -> None:
        if self.editable_area not in EDITABLE_AREAS:
            raise SegTruthError(
                f"Unknown editable area {self.editable_area!r}; use one of {', '.join(EDITABLE_AREAS)}."
            )
        if self.overwrite not in OVERWRITE_MODES:
            raise SegTruthError(f"Unknown overwrite mode {self.overwrite!r}; use one of {', '.join(OVERWRITE_MODES)}.")
        if self.editable_area == "inside" and not self.inside_segment:
            raise SegTruthError("Editable area 'inside' needs the segment to stay inside of.")
        if self.intensity_range is not None and self.intensity_range[0] > self.intensity_range[1]:
            raise SegTruthError(f"Editable intensity range {self.intensity_range} has its low end above its high end.")


DEFAULT_OPTIONS = EditOptions()
