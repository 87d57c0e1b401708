"""What a file holds: its grid and, for segmentations and labelmaps, its segments or labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from slicer.util import arrayFromVolume

from ..core.atomic import full_suffix
from ..core.geometry import LPS_TO_RAS, Grid, matrix_to_numpy
from ..core.labels import color_hex
from .dicom import read_dicom_series
from .segmentation_io import read_seg_nrrd
from .segments import segment_ids, segment_info
from .session import Session
from .volumes import check_image_file, non_finite_voxels

MAX_LABELMAP_VALUES = 64  # an integer image with at most this many values is shown as a labelmap


def describe(session: Session, path: str | Path) -> dict[str, Any]:
    """Geometry (size, spacing, origin, direction in LPS as files store it) and labels or segments."""
    path = Path(path)
    if path.is_dir():
        node = read_dicom_series(session, path)
        info = {"file": str(path), "kind": "DICOM series", **_grid_fields(Grid.from_node(node)), "type": "DICOM"}
        return {**info, **_value_fields(arrayFromVolume(node))}
    if full_suffix(path) == ".seg.nrrd":
        return _describe_segmentation(session, path)
    image = check_image_file(path)
    info: dict[str, Any] = {"file": str(path), "kind": "image", **_grid_fields(Grid.from_sitk(image))}
    info["type"] = image.GetPixelIDTypeAsString()
    values = sitk.GetArrayViewFromImage(image)
    if values.dtype.kind in "iu":
        present, counts = np.unique(values, return_counts=True)
        if len(present) <= MAX_LABELMAP_VALUES:
            info["kind"] = "labelmap"
            info["labels"] = [{"value": int(v), "voxels": int(c)} for v, c in zip(present, counts) if v != 0]
    # ITK reads NaN in NIfTI as 0: the file's own NaN and infinite voxels are counted
    return {**info, **_value_fields(values, non_finite_voxels(path, image))}


def _value_fields(values: np.ndarray, bad: int | None = None) -> dict[str, Any]:
    """The range of the finite voxels and, when there are any, how many are NaN or infinite."""
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    bad = int(values.size - finite.size) if bad is None else bad
    fields: dict[str, Any] = {
        "range": [float(finite.min()), float(finite.max())] if finite.size and bad < values.size else None
    }
    if bad:
        fields["nan_voxels"] = bad
    return fields


def _describe_segmentation(session: Session, path: Path) -> dict[str, Any]:
    node = read_seg_nrrd(session, path)
    segments = []
    for sid in segment_ids(node):
        name, color, terminology, value = segment_info(node, sid)
        segment = node.GetSegmentation().GetSegment(sid)
        segments.append(
            {
                "name": name,
                "value": value if value is not None else segment.GetLabelValue(),
                "color": color_hex(color),
                "terminology": f"{terminology.category.meaning} / {terminology.type.meaning}"
                + (f" / {terminology.type_modifier.meaning}" if terminology and terminology.type_modifier else "")
                if terminology
                else None,
            }
        )
    geometry = node.GetSegmentation().GetConversionParameter("Reference image geometry")
    info: dict[str, Any] = {"file": str(path), "kind": "segmentation", "segments": segments}
    if geometry:
        matrix = vtk.vtkMatrix4x4()
        image = slicer.vtkOrientedImageData()
        slicer.vtkSegmentationConverter.DeserializeImageGeometry(geometry, image, False)
        image.GetImageToWorldMatrix(matrix)
        extent = image.GetExtent()
        size3 = (extent[1] - extent[0] + 1, extent[3] - extent[2] + 1, extent[5] - extent[4] + 1)
        info.update(_grid_fields(Grid(size3, matrix_to_numpy(matrix))))
    return info


def _grid_fields(grid: Grid) -> dict[str, Any]:
    ijk_to_lps = LPS_TO_RAS @ grid.ijk_to_ras
    spacing = grid.spacing
    return {
        "size": list(grid.size),
        "spacing": [round(float(s), 6) for s in spacing],
        "origin_lps": [round(float(o), 6) for o in ijk_to_lps[:3, 3]],
        "direction_lps": [[round(float(d), 6) for d in row] for row in (ijk_to_lps[:3, :3] / spacing)],
        "right_handed": grid.right_handed,
    }


def format_info(info: dict[str, Any]) -> str:
    """Human-readable lines for ``segtruth info``."""
    lines = [f"{info['file']}: {info['kind']}"]
    if "size" in info:
        lines.append(f"  size       {' x '.join(str(s) for s in info['size'])}")
        lines.append(f"  spacing    {' x '.join(f'{s:g}' for s in info['spacing'])} mm")
        lines.append(f"  origin     ({', '.join(f'{o:g}' for o in info['origin_lps'])}) LPS mm")
        lines.append(
            "  direction  " + "  ".join("(" + ", ".join(f"{d:g}" for d in row) + ")" for row in info["direction_lps"])
        )
        if not info["right_handed"]:
            lines.append("  (left-handed axes: exports are written back on this exact grid)")
    if "type" in info:
        lines.append(f"  voxel type {info['type']}")
    if info.get("range"):
        lines.append(f"  range      {info['range'][0]:g} .. {info['range'][1]:g}")
    if info.get("nan_voxels"):
        lines.append(f"  NaN/inf    {info['nan_voxels']} voxels (NaN or infinite)")
    if "labels" in info:
        lines.append(f"  labels     {len(info['labels'])}")
        lines.extend(f"    {entry['value']:>5}  {entry['voxels']} voxels" for entry in info["labels"])
    if "segments" in info:
        lines.append(f"  segments   {len(info['segments'])}")
        for segment in info["segments"]:
            term = f"  [{segment['terminology']}]" if segment["terminology"] else ""
            lines.append(f"    {segment['value']:>5}  {segment['name']}  {segment['color']}{term}")
    return "\n".join(lines)
