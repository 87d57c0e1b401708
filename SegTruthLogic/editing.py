"""Writing a tool's result into a segment through Slicer's Segment Editor logic.

Every tool computes a modifier mask on the source volume's grid and hands it to
``vtkSlicerSegmentEditorLogic.ModifySegmentByLabelmap``, so masking (editable area, editable intensity
range) and overwriting of other segments behave exactly as in Slicer's Segment Editor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import slicer

from .errors import SegTruthError
from .segments import find_segment, oriented_image
from .session import Session

EditableArea = Literal["everywhere", "inside", "outside_all", "inside_all", "outside_visible", "inside_visible"]
Overwrite = Literal["all", "visible", "none"]
Mode = Literal["set", "add", "remove"]

_AREAS = {
    "everywhere": slicer.vtkMRMLSegmentationNode.EditAllowedEverywhere,
    "inside": slicer.vtkMRMLSegmentationNode.EditAllowedInsideSingleSegment,
    "outside_all": slicer.vtkMRMLSegmentationNode.EditAllowedOutsideAllSegments,
    "inside_all": slicer.vtkMRMLSegmentationNode.EditAllowedInsideAllSegments,
    "outside_visible": slicer.vtkMRMLSegmentationNode.EditAllowedOutsideVisibleSegments,
    "inside_visible": slicer.vtkMRMLSegmentationNode.EditAllowedInsideVisibleSegments,
}
_OVERWRITE = {
    "all": slicer.vtkMRMLSegmentEditorNode.OverwriteAllSegments,
    "visible": slicer.vtkMRMLSegmentEditorNode.OverwriteVisibleSegments,
    "none": slicer.vtkMRMLSegmentEditorNode.OverwriteNone,
}
_MODES = {
    "set": slicer.vtkSlicerSegmentEditorLogic.ModificationModeSet,
    "add": slicer.vtkSlicerSegmentEditorLogic.ModificationModeAdd,
    "remove": slicer.vtkSlicerSegmentEditorLogic.ModificationModeRemove,
}


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
        if self.editable_area not in _AREAS:
            raise SegTruthError(f"Unknown editable area {self.editable_area!r}; use one of {', '.join(_AREAS)}.")
        if self.overwrite not in _OVERWRITE:
            raise SegTruthError(f"Unknown overwrite mode {self.overwrite!r}; use one of {', '.join(_OVERWRITE)}.")
        if self.editable_area == "inside" and not self.inside_segment:
            raise SegTruthError("Editable area 'inside' needs the segment to stay inside of.")
        if self.intensity_range is not None and self.intensity_range[0] > self.intensity_range[1]:
            raise SegTruthError(f"Editable intensity range {self.intensity_range} has its low end above its high end.")


DEFAULT_OPTIONS = EditOptions()


def apply_mask(
    session: Session,
    segmentation_node,
    segment: str,
    volume,
    mask: np.ndarray,
    mode: Mode = "set",
    options: EditOptions = DEFAULT_OPTIONS,
) -> str:
    """Write ``mask`` (boolean, k, j, i on the volume's grid) into ``segment`` as the Segment Editor does.

    Returns the segment ID. ``set`` replaces the segment, ``add`` unions, ``remove`` erases.
    """
    if mode not in _MODES:
        raise SegTruthError(f"Unknown modification mode {mode!r}; use set, add or remove.")
    segment_id = find_segment(segmentation_node, segment)
    editor = session.editor
    node = editor.GetSegmentEditorNode()
    editor.SetSegmentationNode(segmentation_node)
    editor.SetSourceVolumeNode(volume)
    editor.UpdateReferenceGeometryImage()
    node.SetSelectedSegmentID(segment_id)
    node.SetMaskMode(_AREAS[options.editable_area])
    node.SetMaskSegmentID(find_segment(segmentation_node, options.inside_segment) if options.inside_segment else None)
    node.SetOverwriteMode(_OVERWRITE[options.overwrite])
    node.SetSourceVolumeIntensityMask(options.intensity_range is not None)
    if options.intensity_range is not None:
        node.SetSourceVolumeIntensityMaskRange(*(float(v) for v in options.intensity_range))
    modifier = oriented_image(np.asarray(mask, dtype=np.uint8), volume)
    editor.ModifySegmentByLabelmap(segmentation_node, segment_id, modifier, _MODES[mode], True, False)
    return segment_id
