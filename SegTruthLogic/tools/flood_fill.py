"""Flood fill: the voxels connected to a click whose intensity is near the clicked voxel's, as
SegmentEditorExtraEffects' Flood filling does.

``vtkImageThresholdConnectivity`` grows from the clicked voxel through face neighbours whose value lies within
``tolerance`` of the clicked voxel's value; with a neighbourhood (radius in mm, default 1) a voxel is taken only
when at least half of the voxels within that box around it are in range too, so the fill does not leak through
thin bridges of noise. The fill cannot pass through voxels the Segment Editor's masking forbids (outside the
editable area or intensity range): they are the filter's stencil. The filled voxels are added to the segment.
"""

from __future__ import annotations

import math

import numpy as np
import vtk
from slicer.util import arrayFromVolume
from vtk.util import numpy_support

from ..core.errors import SegTruthError
from ..core.geometry import Grid
from ..core.labels import LabelTable
from ..scene.editing import DEFAULT_OPTIONS, EditOptions, Mode, apply_mask
from ..scene.masking import forbidden_voxels
from ..scene.segments import ensure_segment, image_array
from ..scene.session import Session
from .paint import Point, voxel_at

DEFAULT_TOLERANCE = 10.0
DEFAULT_NEIGHBOURHOOD_MM = 1.0
NEIGHBOURHOOD_FRACTION = 0.5


def _image(array: np.ndarray, spacing) -> vtk.vtkImageData:
    """A vtkImageData of a (k, j, i) array with the voxel spacing and origin 0 (the filter measures in mm)."""
    image = vtk.vtkImageData()
    image.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    image.SetSpacing(*(float(s) for s in spacing))
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True))
    return image


def connected_in_range(
    values: np.ndarray,
    spacing,
    seeds_kji: list[tuple[int, int, int]],
    low: float,
    high: float,
    neighbourhood_mm: float = 0.0,
    forbidden: np.ndarray | None = None,
) -> np.ndarray:
    """(k, j, i) voxels in [low, high] face-connected to the seeds (``vtkImageThresholdConnectivity``)."""
    image = _image(values, spacing)
    fill = vtk.vtkImageThresholdConnectivity()
    fill.SetInputData(image)
    points = vtk.vtkPoints()
    for k, j, i in seeds_kji:
        points.InsertNextPoint(i * float(spacing[0]), j * float(spacing[1]), k * float(spacing[2]))
    fill.SetSeedPoints(points)
    fill.ThresholdBetween(float(low), float(high))
    if neighbourhood_mm > 0:
        fill.SetNeighborhoodRadius(neighbourhood_mm, neighbourhood_mm, neighbourhood_mm)
        fill.SetNeighborhoodFraction(NEIGHBOURHOOD_FRACTION)
    if forbidden is not None:
        stencil = vtk.vtkImageToImageStencil()
        stencil.SetInputData(_image(forbidden.astype(np.uint8), spacing))
        stencil.ThresholdByLower(0)  # the allowed voxels
        stencil.Update()
        fill.SetStencilData(stencil.GetOutput())
    fill.SetInValue(1)
    fill.SetOutValue(0)
    fill.Update()
    return image_array(fill.GetOutput()) != 0


def flood_fill(
    session: Session,
    segmentation_node,
    volume,
    segment: str,
    ras: Point,
    tolerance: float = DEFAULT_TOLERANCE,
    neighbourhood_mm: float = DEFAULT_NEIGHBOURHOOD_MM,
    mode: Mode = "add",
    options: EditOptions = DEFAULT_OPTIONS,
    table: LabelTable | None = None,
) -> int:
    """Fill from the RAS point into ``segment`` (created if absent); returns the filled voxel count."""
    if not math.isfinite(tolerance) or tolerance < 0:
        raise SegTruthError(f"Flood fill's intensity tolerance must be a number >= 0, not {tolerance!r}.")
    if not math.isfinite(neighbourhood_mm) or neighbourhood_mm < 0:
        raise SegTruthError(f"Flood fill's neighbourhood size must be a distance in mm >= 0, not {neighbourhood_mm!r}.")
    index = voxel_at(volume, ras)
    segment_id = ensure_segment(segmentation_node, segment, table)
    values = arrayFromVolume(volume)
    value = float(values[index])
    forbidden = forbidden_voxels(segmentation_node, segment_id, volume, options)
    spacing = Grid.from_node(volume).spacing
    filled = connected_in_range(
        values, spacing, [index], value - tolerance, value + tolerance, neighbourhood_mm, forbidden
    )
    apply_mask(session, segmentation_node, segment_id, volume, filled, mode, options)
    return int(np.count_nonzero(filled))
