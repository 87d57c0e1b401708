"""Writing a tool's result into a segment as Slicer's Segment Editor does.

Every tool computes a modifier mask on the source volume's grid and hands it to
``vtkSlicerSegmentEditorLogic.ModifySegmentByLabelmap``, so masking (editable area, editable intensity
range) and overwriting of other segments behave exactly as in Slicer's Segment Editor. Slicers before 5.10
have no such class; there :mod:`.masking` computes the same result. One case always goes through
:mod:`.masking`: erasing with the editable area inside one segment, where Slicer's logic hands the erased
voxels outside that segment to it (Testing/test_masking.py shows it); an erase must never add to a segment.
"""

from __future__ import annotations

import numpy as np
import slicer

from ..core.errors import SegTruthError
from .edit_options import DEFAULT_OPTIONS, EDITABLE_AREAS, EditOptions, Mode
from .masking import area_constant, modify_segment
from .segments import find_segment, oriented_image
from .session import Session

_OVERWRITE = {
    "all": slicer.vtkMRMLSegmentEditorNode.OverwriteAllSegments,
    "visible": slicer.vtkMRMLSegmentEditorNode.OverwriteVisibleSegments,
    "none": slicer.vtkMRMLSegmentEditorNode.OverwriteNone,
}

_MODES = ("set", "add", "remove")
_OVERWRITE_NAMES = {value: name for name, value in _OVERWRITE.items()}


def options_from_editor_node(node) -> EditOptions:
    """A Segment Editor node's masking settings as ``EditOptions``, so SegTruth's tools obey the editor's panel."""
    areas = {area_constant(name): name for name in EDITABLE_AREAS}
    area = areas.get(node.GetMaskMode(), "everywhere")
    inside = node.GetMaskSegmentID() or None
    if area == "inside" and not inside:
        area = "everywhere"
    intensity = tuple(node.GetSourceVolumeIntensityMaskRange()) if node.GetSourceVolumeIntensityMask() else None
    return EditOptions(
        editable_area=area,  # type: ignore[arg-type]
        inside_segment=inside if area == "inside" else None,
        intensity_range=intensity,  # type: ignore[arg-type]
        overwrite=_OVERWRITE_NAMES.get(node.GetOverwriteMode(), "all"),  # type: ignore[arg-type]
    )


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
    erase_inside_segment = mode == "remove" and options.editable_area == "inside"
    if hasattr(slicer, "vtkSlicerSegmentEditorLogic") and not erase_inside_segment:
        modify_with_editor_logic(session, segmentation_node, segment_id, volume, mask, mode, options)
    else:
        modify_segment(session, segmentation_node, segment_id, volume, mask, mode, options)
    return segment_id


def modify_with_editor_logic(
    session: Session, segmentation_node, segment_id: str, volume, mask: np.ndarray, mode: Mode, options: EditOptions
) -> None:
    """``apply_mask`` through Slicer's own ``vtkSlicerSegmentEditorLogic`` (Slicer >= 5.10)."""
    editor = session.editor
    node = editor.GetSegmentEditorNode()
    editor.SetSegmentationNode(segmentation_node)
    editor.SetSourceVolumeNode(volume)
    editor.UpdateReferenceGeometryImage()
    node.SetSelectedSegmentID(segment_id)
    node.SetMaskMode(area_constant(options.editable_area))
    node.SetMaskSegmentID(find_segment(segmentation_node, options.inside_segment) if options.inside_segment else None)
    node.SetOverwriteMode(_OVERWRITE[options.overwrite])
    node.SetSourceVolumeIntensityMask(options.intensity_range is not None)
    if options.intensity_range is not None:
        node.SetSourceVolumeIntensityMaskRange(*(float(v) for v in options.intensity_range))
    modifier = oriented_image(np.asarray(mask, dtype=np.uint8), volume)
    modification = getattr(slicer.vtkSlicerSegmentEditorLogic, f"ModificationMode{mode.capitalize()}")
    editor.ModifySegmentByLabelmap(segmentation_node, segment_id, modifier, modification, True, False)
