"""Exports on the source image's exact grid, with label values from the label table.

- labelmaps (``.nii.gz``, ``.nii``, ``.nrrd``): one value per voxel, written on the grid of the file the
  source volume was read from (for a left-handed source, the file's own left-handed grid);
- ``.seg.nrrd``: Slicer's segmentation file, with names, colors, terminology and the table's values;
  overlapping segments go to separate layers instead of being lost;
- one binary mask per segment, on request.
All files are written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
import slicer

from ..core.atomic import Outputs, atomic_path, atomic_write, check_parent, full_suffix
from ..core.errors import SegTruthError
from ..core.formats import LABELMAP_SUFFIXES, SEGMENTATION_SUFFIX, check_output_path
from ..core.geometry import Grid, move_array
from ..core.labels import LabelTable
from ..core.sources import source_grid
from .segments import (
    LABEL_VALUE_TAG,
    TERMINOLOGY_TAG,
    labelmap_array,
    oriented_image,
    segment_ids,
    segment_mask,
    segment_masks,
    table_from_segmentation,
)
from .session import Session, quiet_vtk


def write_array(array: np.ndarray, grid: Grid, path: str | Path, overwrite: bool = True) -> Path:
    """Write a (k, j, i) array on ``grid`` as NIfTI/NRRD/MHA, atomically."""
    if array.shape != grid.shape_kji:
        raise SegTruthError(f"{path}: array of shape {array.shape} does not fit {grid.describe()}.")
    image = grid.apply_to_sitk(sitk.GetImageFromArray(array))
    compress = full_suffix(path) in (".nii.gz", ".nrrd", ".seg.nrrd", ".mha")

    def write(temp: Path) -> None:
        sitk.WriteImage(image, str(temp), useCompression=compress)
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(temp))
        reader.ReadImageInformation()
        written = Grid.from_sitk(reader)
        if not written.same_as(grid):
            raise SegTruthError(
                f"{path}: this format cannot hold the image's grid exactly (voxels would move by up to "
                f"{written.offset(grid):.3g} mm, e.g. a sheared or gantry-tilted series); write .nrrd or .seg.nrrd."
            )

    return atomic_write(path, write, overwrite)


def labels_on_source_grid(session: Session, segmentation_node, volume, table: LabelTable) -> tuple[np.ndarray, Grid]:
    """The label array and grid of the file the volume was read from."""
    labels = labelmap_array(session, segmentation_node, volume, table)
    target = source_grid(volume)
    return move_array(labels, Grid.from_node(volume), target), target


def write_labelmap(
    session: Session,
    segmentation_node,
    volume,
    path: str | Path,
    table: LabelTable | None = None,
    overwrite: bool = True,
) -> Path:
    """Write all segments as one labelmap on the source file's grid; values from ``table``."""
    suffix = check_output_path(path)
    if suffix not in LABELMAP_SUFFIXES:
        raise SegTruthError(f"{path}: a labelmap must be one of {', '.join(LABELMAP_SUFFIXES)}.")
    table = table or table_from_segmentation(segmentation_node)
    labels, grid = labels_on_source_grid(session, segmentation_node, volume, table)
    return write_array(labels, grid, path, overwrite)


def segment_mask_paths(segmentation_node, folder: str | Path, suffix: str = ".nii.gz") -> dict[str, Path]:
    """Segment id -> the file its binary mask goes to in ``folder``: named after the segment, one per segment."""
    if suffix not in LABELMAP_SUFFIXES:
        raise SegTruthError(f"Mask format {suffix!r} must be one of {', '.join(LABELMAP_SUFFIXES)}.")
    paths: dict[str, Path] = {}
    for sid in segment_ids(segmentation_node):
        name = segmentation_node.GetSegmentation().GetSegment(sid).GetName()
        path = Path(folder) / ("".join(c if c.isalnum() or c in "-_." else "_" for c in name) + suffix)
        if path in paths.values():
            raise SegTruthError(f"{path}: two segments would share this mask file; rename one of them.")
        paths[sid] = path
    return paths


def write_segment_mask(session: Session, segmentation_node, sid: str, volume, path: str | Path) -> Path:
    """One segment as a binary (0/1) mask on the source file's grid."""
    mask = segment_mask(session, segmentation_node, sid, volume).astype(np.uint8)
    target = source_grid(volume)
    return write_array(move_array(mask, Grid.from_node(volume), target), target, path)


def write_segment_masks(
    session: Session,
    segmentation_node,
    volume,
    folder: str | Path,
    suffix: str = ".nii.gz",
    overwrite: bool = True,
) -> list[Path]:
    """One binary (0/1) mask per segment, named after the segment, on the source file's grid; all or none."""
    paths = segment_mask_paths(segmentation_node, folder, suffix)
    check_parent(Path(folder) / f"mask{suffix}")
    with Outputs(overwrite) as outputs:
        for sid, path in paths.items():
            write_segment_mask(session, segmentation_node, sid, volume, outputs.file(path))
    return list(paths.values())


def _layers(masks: list[np.ndarray]) -> list[int]:
    """Assign each mask a layer so that no two masks in a layer overlap (greedy, in table order)."""
    occupied: list[np.ndarray] = []
    layer_of = []
    for mask in masks:
        for index, taken in enumerate(occupied):
            if not (taken & mask).any():
                taken |= mask
                layer_of.append(index)
                break
        else:
            occupied.append(mask.copy())
            layer_of.append(len(occupied) - 1)
    return layer_of


def write_seg_nrrd(
    session: Session,
    segmentation_node,
    volume,
    path: str | Path,
    table: LabelTable | None = None,
    overwrite: bool = True,
    allow_overlap: bool = True,
) -> Path:
    """Write a ``.seg.nrrd`` on the volume's grid whose segments carry the table's values.

    Overlapping segments are written as separate layers (``allow_overlap``) or refused.
    """
    if check_output_path(path) != SEGMENTATION_SUFFIX:
        raise SegTruthError(f"{path}: a segmentation file must end in {SEGMENTATION_SUFFIX}.")
    table = table or table_from_segmentation(segmentation_node)
    ids = segment_ids(segmentation_node)
    names = [segmentation_node.GetSegmentation().GetSegment(sid).GetName() for sid in ids]
    for name in names:
        if table.by_name(name) is None:
            raise SegTruthError(f"Segment {name!r} is not in the {table.source}; add it or remove the segment.")
    masks = list(segment_masks(session, segmentation_node, ids, volume).values())
    layer_of = _layers(masks)
    if not allow_overlap and max(layer_of, default=0) > 0:
        labelmap_array(session, segmentation_node, volume, table)  # raises naming the overlapping segments
    dtype = np.uint8 if table.max_value <= 255 else np.uint16
    layers = [np.zeros(masks[0].shape, dtype=dtype) for _ in range(max(layer_of, default=-1) + 1)]
    for mask, layer, name in zip(masks, layer_of, names):
        layers[layer][mask] = table.by_name(name).value  # type: ignore[union-attr]
    images = [oriented_image(layer, volume) for layer in layers]

    out = session.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "__export__")
    try:
        out.SetReferenceImageGeometryParameterFromVolumeNode(volume)
        segmentation = out.GetSegmentation()
        for sid, name, layer in zip(ids, names, layer_of):
            label = table.by_name(name)
            source = segmentation_node.GetSegmentation().GetSegment(sid)
            segment = slicer.vtkSegment()
            segment.SetName(label.name)
            segment.SetColor(*label.color)
            segment.SetLabelValue(label.value)
            segment.SetTag(TERMINOLOGY_TAG, label.terminology.serialize())
            segment.SetTag(LABEL_VALUE_TAG, str(label.value))
            status = slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentStatus(source)
            slicer.vtkSlicerSegmentationsModuleLogic.SetSegmentStatus(segment, status)
            segment.AddRepresentation(
                slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName(), images[layer]
            )
            segmentation.AddSegment(segment, sid)
        with atomic_path(path, overwrite) as temp:
            storage = slicer.vtkMRMLSegmentationStorageNode()
            storage.SetScene(session.scene)
            storage.SetCropToMinimumExtent(False)
            storage.SetFileName(str(temp))
            storage.SetUseCompression(True)
            with quiet_vtk():
                ok = storage.WriteData(out)
            if not ok:
                raise SegTruthError(f"{path}: Slicer's segmentation writer failed.")
    finally:
        session.remove(out)
    return Path(path)


def export(
    session: Session,
    segmentation_node,
    volume,
    path: str | Path,
    table: LabelTable | None = None,
    overwrite: bool = True,
) -> Path:
    """Write the segmentation in the format its extension names (labelmap or ``.seg.nrrd``)."""
    if check_output_path(path) == SEGMENTATION_SUFFIX:
        return write_seg_nrrd(session, segmentation_node, volume, path, table, overwrite)
    return write_labelmap(session, segmentation_node, volume, path, table, overwrite)
