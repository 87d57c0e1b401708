"""Hollow: replace a segment by a shell of a given thickness, as Slicer's Hollow effect does.

The shell comes from ``vtkITKImageMargin`` (a signed Maurer distance map in mm, thresholded between an inner
and an outer margin) with the effect's margins, where t is the thickness and d the smallest voxel spacing:

- ``inside_surface``: the segment is the shell's inside surface, the shell lies outside it:
  margins (0.1 d, t + 0.1 d), so the segment's own voxels are not in the shell;
- ``outside_surface``: the segment is the shell's outside surface, the shell lies inside it: (d - t, 0);
- ``medial_surface``: the shell is centred on the segment's surface: (0.5 d - t / 2, t / 2).

On 1 mm voxels a 2 mm shell is two voxels thick in every mode (medial: one inside, one outside). A shell
thinner than a voxel along some axis is refused, as the effect refuses it ("not feasible at this resolution").
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import slicer

from ..core.errors import SegTruthError
from ..core.geometry import Grid
from ..scene.editing import DEFAULT_OPTIONS, EditOptions, apply_mask
from ..scene.segments import find_segment, image_array, oriented_image, segment_mask
from ..scene.session import Session

ShellMode = Literal["inside_surface", "medial_surface", "outside_surface"]
SHELL_MODES = ("inside_surface", "medial_surface", "outside_surface")


def shell_mask(mask: np.ndarray, volume, thickness_mm: float, mode: ShellMode = "inside_surface") -> np.ndarray:
    """The (k, j, i) shell of ``thickness_mm`` around, inside or centred on the mask's surface."""
    if not math.isfinite(thickness_mm) or thickness_mm <= 0:
        raise SegTruthError(f"Shell thickness must be a positive number of mm, not {thickness_mm!r}.")
    if mode not in SHELL_MODES:
        raise SegTruthError(f"Unknown shell mode {mode!r}; use one of {', '.join(SHELL_MODES)}.")
    spacing = Grid.from_node(volume).spacing
    if thickness_mm < float(max(spacing)) * (1 - 1e-9):
        # Slicer's effect refuses too: a shell thinner than a voxel along some axis has holes
        raise SegTruthError(
            f"Shell thickness {thickness_mm:g} mm is thinner than a voxel of {volume.GetName()!r} "
            f"({' x '.join(f'{s:g}' for s in spacing)} mm); use at least {float(max(spacing)):g} mm."
        )
    d = float(min(spacing))
    inner, outer = {
        "inside_surface": (0.1 * d, thickness_mm + 0.1 * d),
        "outside_surface": (d - thickness_mm, 0.0),
        "medial_surface": (0.5 * d - 0.5 * thickness_mm, 0.5 * thickness_mm),
    }[mode]
    margin = slicer.vtkITKImageMargin()
    margin.SetInputData(oriented_image(np.asarray(mask, dtype=np.uint8), volume))
    margin.SetBackgroundValue(0)
    margin.CalculateMarginInMMOn()
    margin.SetInnerMarginMM(inner)
    margin.SetOuterMarginMM(outer)
    margin.Update()
    return image_array(margin.GetOutput()) != 0


def hollow(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    thickness_mm: float,
    mode: ShellMode = "inside_surface",
    options: EditOptions = DEFAULT_OPTIONS,
) -> int:
    """Replace ``segment`` by its shell (see the module's modes); returns the shell's voxel count before masking."""
    segment_id = find_segment(segmentation_node, segment)
    shell = shell_mask(segment_mask(session, segmentation_node, segment_id, volume), volume, thickness_mm, mode)
    apply_mask(session, segmentation_node, segment_id, volume, shell, "set", options)
    return int(np.count_nonzero(shell))
