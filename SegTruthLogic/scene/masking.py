"""Segment Editor masking and overwriting computed with numpy, for Slicers without ``vtkSlicerSegmentEditorLogic``.

Slicer 5.10 moved the Segment Editor's "modify segment by labelmap" step (editable area, editable intensity
range, overwrite of other segments) into the Qt-free ``vtkSlicerSegmentEditorLogic``; Slicer 5.8 and 5.9 have it
only inside the Qt effect classes. There SegTruth computes the same result itself, from the editable-area mask
Slicer generates (``vtkMRMLSegmentationNode.GenerateEditMask``) and the same intensity test
(``vtkImageThreshold``). Testing/test_masking.py checks it voxel for voxel against ``vtkSlicerSegmentEditorLogic``.

The rules, with F the voxels an edit may not touch (outside the editable area, or outside the editable
intensity range) and T the edited segment:

- an edit claims ``modifier & ~F``; erasing with "inside one segment" may also erase T's own voxels anywhere;
- set: T becomes the claimed voxels plus its old voxels in F; add: T gains them; remove: T loses them;
- set and add take what T now holds (set) or claimed (add) from every other segment the overwrite mode names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import slicer
import vtk

from ..core.errors import SegTruthError
from .edit_options import EDITABLE_AREAS, EditOptions, Mode
from .segments import find_segment, image_array, reference_image, segment_ids, segment_masks, set_segment_mask

if TYPE_CHECKING:
    from .session import Session

# Each editable area's vtkMRMLSegmentationNode constant, in EDITABLE_AREAS' order.
EDIT_AREAS = dict(
    zip(
        EDITABLE_AREAS,
        (
            "EditAllowedEverywhere",
            "EditAllowedInsideSingleSegment",
            "EditAllowedOutsideAllSegments",
            "EditAllowedInsideAllSegments",
            "EditAllowedOutsideVisibleSegments",
            "EditAllowedInsideVisibleSegments",
        ),
    )
)


def area_constant(area: str) -> int:
    """``vtkMRMLSegmentationNode``'s edit-mode constant for an editable-area name."""
    return getattr(slicer.vtkMRMLSegmentationNode, EDIT_AREAS[area])


def forbidden_voxels(segmentation_node, segment_id: str, volume, options: EditOptions) -> np.ndarray | None:
    """Voxels (k, j, i on the volume's grid) the edit may not touch; None when nothing is masked."""
    forbidden = None
    if options.editable_area != "everywhere":
        mask = slicer.vtkOrientedImageData()
        inside = find_segment(segmentation_node, options.inside_segment) if options.inside_segment else ""
        if not segmentation_node.GenerateEditMask(
            mask, area_constant(options.editable_area), reference_image(volume), segment_id, inside
        ):
            raise SegTruthError(f"Slicer could not work out the editable area {options.editable_area!r}.")
        forbidden = image_array(mask) != 0
    if options.intensity_range is not None:
        threshold = vtk.vtkImageThreshold()
        threshold.SetInputData(volume.GetImageData())
        threshold.ThresholdBetween(*(float(v) for v in options.intensity_range))
        threshold.SetInValue(0)
        threshold.SetOutValue(1)
        threshold.SetOutputScalarTypeToUnsignedChar()
        threshold.Update()
        outside_range = image_array(threshold.GetOutput()) != 0
        forbidden = outside_range if forbidden is None else forbidden | outside_range
    return forbidden


def overwritten_segments(segmentation_node, segment_id: str, overwrite: str) -> list[str]:
    """The other segments an edit of ``segment_id`` takes voxels from."""
    others = [sid for sid in segment_ids(segmentation_node) if sid != segment_id]
    if overwrite == "none":
        return []
    if overwrite == "visible":
        display = segmentation_node.GetDisplayNode()
        return [sid for sid in others if display is not None and display.GetSegmentVisibility(sid)]
    return others


def modify_segment(
    session: Session,
    segmentation_node,
    segment_id: str,
    volume,
    modifier: np.ndarray,
    mode: Mode,
    options: EditOptions,
) -> None:
    """Write ``modifier`` into the segment with the Segment Editor's masking and overwrite rules."""
    modifier = np.asarray(modifier, dtype=bool)
    overwritten = [] if mode == "remove" else overwritten_segments(segmentation_node, segment_id, options.overwrite)
    masks = segment_masks(session, segmentation_node, [segment_id, *overwritten], volume)
    current = masks[segment_id]
    forbidden = forbidden_voxels(segmentation_node, segment_id, volume, options)
    if forbidden is None:
        claimed = modifier
    else:
        if options.editable_area == "inside" and mode == "remove":
            forbidden &= ~current
        claimed = modifier & ~forbidden
    if mode == "set":
        updated = claimed if forbidden is None else claimed | (current & forbidden)
        taken = updated
    elif mode == "add":
        updated, taken = current | claimed, claimed
    else:
        updated, taken = current & ~claimed, None
    if taken is not None and taken.any():
        for other in overwritten:
            voxels = masks[other]
            if (voxels & taken).any():
                set_segment_mask(session, segmentation_node, other, voxels & ~taken, volume)
    set_segment_mask(session, segmentation_node, segment_id, updated, volume)
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    if logic.GetSegmentStatus(segment) == logic.NotStarted:
        logic.SetSegmentStatus(segment, logic.InProgress)
