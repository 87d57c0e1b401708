"""Loading existing segmentations onto a volume: Slicer ``.seg.nrrd`` files and labelmap images.

Labels are ground truth, so they are never resampled: a labelmap must hold exactly the volume's voxels (its
source grid, or the same voxels indexed in another axis order, as Slicer writes them for a volume it flipped)
and a ``.seg.nrrd`` must lie on the volume's voxel lattice; anything else is a clear error. Label values
come from the label table (or become ``Label N`` with value N), never from the order segments are found in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import slicer
import vtk

from ..core.atomic import full_suffix
from ..core.errors import SegTruthError
from ..core.formats import IMAGE_SUFFIXES, SEGMENTATION_SUFFIX
from ..core.geometry import Grid, grid_difference, index_map, matrix_to_numpy, move_array
from ..core.labels import MAX_LABEL_VALUE, Label, LabelTable, default_color
from ..core.nrrd import check_nrrd_complete
from ..core.sources import SOURCE_FILE_ATTRIBUTE, source_grid
from .dicom_annotations import is_dicom_annotation, load_dicom_annotation
from .segments import apply_table, image_array, import_labelmap, new_segmentation, segment_ids, segment_mask
from .session import Session, quiet_vtk
from .volumes import check_image_file


def load_segmentation(
    session: Session, path: str | Path, volume, table: LabelTable | None = None, rois: Sequence[str] | None = None
):
    """Load a ``.seg.nrrd``, a labelmap image (NIfTI/NRRD/MHA), an RTSTRUCT or a DICOM SEG on ``volume``.

    ``rois`` (exact names or globs) picks structures of an RTSTRUCT or DICOM SEG file.
    """
    path = Path(path)
    if not path.is_file():
        raise SegTruthError(f"{path}: segmentation file not found.")
    if full_suffix(path) == ".dcm" or is_dicom_annotation(path):
        return load_dicom_annotation(session, path, volume, table, rois)
    if rois:
        raise SegTruthError(f"{path}: --roi picks structures of an RTSTRUCT or DICOM SEG file, not of this file.")
    if full_suffix(path) == SEGMENTATION_SUFFIX:
        return _load_seg_nrrd(session, path, volume, table)
    if full_suffix(path) not in IMAGE_SUFFIXES:
        accepted = ", ".join((SEGMENTATION_SUFFIX, *IMAGE_SUFFIXES, ".dcm (RTSTRUCT, SEG)"))
        raise SegTruthError(f"{path}: unknown segmentation extension {full_suffix(path)!r}; use one of {accepted}.")
    return load_labelmap(session, path, volume, table)


def names_its_segments(path: str | Path) -> bool:
    """Whether a segmentation file names its segments (``.seg.nrrd``, RTSTRUCT, DICOM SEG): a labelmap image holds
    values only, which a label table names."""
    return full_suffix(path) not in IMAGE_SUFFIXES


# -- labelmap images ------------------------------------------------------------------------------------------------
def load_labelmap(session: Session, path: str | Path, volume, table: LabelTable | None = None):
    """A labelmap file on the volume's source grid, one segment per label value present."""
    path = Path(path)
    image = check_image_file(path)
    file_grid = Grid.from_sitk(image)
    target = source_grid(volume)
    # The volume's file grid, or the same voxels indexed otherwise (as Slicer writes labelmaps of a volume
    # it flipped on load): both move exactly. Anything else would need resampling.
    if not file_grid.same_as(target) and not _same_voxels(file_grid, target):
        raise SegTruthError(
            f"{path}: the labelmap's grid ({file_grid.describe()}) is not the grid of {volume.GetName()!r} "
            f"({target.describe()}), differing in {grid_difference(file_grid, target)}; labels are never resampled, "
            "so save them on the image's grid."
        )
    values = sitk.GetArrayFromImage(image)
    labels = _integer_labels(values, path)
    present = [int(v) for v in np.unique(labels) if v != 0]
    if table is None:
        table = LabelTable([Label(f"Label {v}", v, default_color(v)) for v in present], f"labels of {path}")
    else:
        unknown = [v for v in present if table.by_value(v) is None]
        if unknown:
            raise SegTruthError(f"{path}: label values {unknown} are not in the {table.source}.")
    # Slicer may hold the volume flipped relative to its file: move the labels exactly, no interpolation.
    labels = move_array(labels, target if file_grid.same_as(target) else file_grid, Grid.from_node(volume))
    node = new_segmentation(session, volume, _stem(path))
    try:
        import_labelmap(session, node, labels, volume, table)
    except BaseException:
        session.remove(node)
        raise
    node.SetAttribute(SOURCE_FILE_ATTRIBUTE, str(path.resolve()))
    return node


def _same_voxels(a: Grid, b: Grid) -> bool:
    try:
        index_map(a, b)
    except SegTruthError:
        return False
    return True


def _integer_labels(values: np.ndarray, path: Path) -> np.ndarray:
    """The label array as unsigned integers; fractional, negative or too large values are an error."""
    if values.dtype.kind == "b":
        return values.astype(np.uint8)
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if not finite.all() or not np.array_equal(values, np.round(values)):
            bad = values[~finite] if not finite.all() else values[values != np.round(values)]
            raise SegTruthError(
                f"{path}: holds non-integer values (e.g. {float(bad[0]):g}); a labelmap holds whole label values."
            )
    elif values.dtype.kind not in "iu":
        raise SegTruthError(f"{path}: has voxel type {values.dtype}; a labelmap holds whole label values.")
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low < 0 or high > MAX_LABEL_VALUE:
        raise SegTruthError(
            f"{path}: holds label values from {low:g} to {high:g}; label values must be 0 (background) to "
            f"{MAX_LABEL_VALUE}."
        )
    return values.astype(np.uint16 if high > 255 else np.uint8)


# -- Slicer .seg.nrrd -------------------------------------------------------------------------------------------------
def read_seg_nrrd(session: Session, path: str | Path):
    """A Slicer ``.seg.nrrd`` as a segmentation node, read only after the file is checked whole.

    Slicer's reader aborts the process on a truncated file and loads corrupt data silently, so every
    ``.seg.nrrd`` SegTruth reads goes through here.
    """
    path = Path(path)
    if not path.is_file():
        raise SegTruthError(f"{path}: segmentation file not found.")
    header = check_nrrd_complete(path)
    if not any(re.fullmatch(r"Segment\d+_ID", key) for key in header.key_values):
        raise SegTruthError(
            f"{path}: holds no segment information, so it is not a Slicer segmentation "
            "(a plain labelmap should be named .nrrd)."
        )
    try:  # ITK raises where Slicer's reader, on the same header or voxels, would abort the process
        sitk.ReadImage(str(path))
    except RuntimeError:
        raise SegTruthError(f"{path}: cannot be read as a Slicer segmentation (corrupt or truncated file).") from None
    before = set(_segmentation_nodes(session))
    with quiet_vtk():
        node = session.segmentations.LoadSegmentationFromFile(str(path), False)
    if node is None:
        for leftover in set(_segmentation_nodes(session)) - before:
            session.remove(leftover)
        raise SegTruthError(f"{path}: cannot be read as a Slicer segmentation (corrupt or truncated file).")
    return node


def _load_seg_nrrd(session: Session, path: Path, volume, table: LabelTable | None):
    node = read_seg_nrrd(session, path)
    try:
        _check_seg_node(session, node, path, volume, table)
    except BaseException:
        session.remove(node)
        raise
    if table is not None:
        apply_table(node, table)
    node.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    node.SetAttribute(SOURCE_FILE_ATTRIBUTE, str(path.resolve()))
    return node


def _segmentation_nodes(session: Session) -> list:
    nodes = session.scene.GetNodesByClass("vtkMRMLSegmentationNode")
    return [nodes.GetItemAsObject(i) for i in range(nodes.GetNumberOfItems())]


def _check_seg_node(session: Session, node, path: Path, volume, table: LabelTable | None) -> None:
    """Segments are binary labelmaps on the volume's voxel lattice, inside it, and named in the table."""
    segmentation = node.GetSegmentation()
    ids = segment_ids(node)
    if not ids:
        raise SegTruthError(f"{path}: holds no segments.")
    labelmap_name = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    if segmentation.GetSourceRepresentationName() != labelmap_name:
        raise SegTruthError(f"{path}: holds {segmentation.GetSourceRepresentationName()} segments, not voxel masks.")
    if table is not None:
        missing = [segmentation.GetSegment(sid).GetName() for sid in ids]
        missing = [name for name in missing if table.by_name(name) is None]
        if missing:
            raise SegTruthError(f"{path}: segments {missing} are not in the {table.source}.")
    grid = Grid.from_node(volume)
    checked: set[int] = set()
    for sid in ids:
        image = segmentation.GetSegment(sid).GetRepresentation(labelmap_name)
        if image is None:
            raise SegTruthError(f"{path}: segment {segmentation.GetSegment(sid).GetName()!r} has no voxel mask.")
        extent = image.GetExtent()
        if extent[0] > extent[1] or extent[2] > extent[3] or extent[4] > extent[5]:
            continue  # an empty segment has no geometry of its own
        matrix = vtk.vtkMatrix4x4()
        image.GetImageToWorldMatrix(matrix)
        if id(image) not in checked:
            checked.add(id(image))
            if not _same_lattice(matrix_to_numpy(matrix), grid):
                raise SegTruthError(
                    f"{path}: its voxels are not on the voxel lattice of {volume.GetName()!r} ({grid.describe()}); "
                    "labels are never resampled, so save the segmentation on the image's grid."
                )
        if not _inside(matrix_to_numpy(matrix), extent, grid):
            inside = int(segment_mask(session, node, sid, volume).sum())
            value = segmentation.GetSegment(sid).GetLabelValue()
            total = int(np.count_nonzero(image_array(image) == value))
            if inside != total:
                name = segmentation.GetSegment(sid).GetName()
                raise SegTruthError(
                    f"{path}: segment {name!r} has {total - inside} voxels outside {volume.GetName()!r}; "
                    "they would be lost."
                )


def _index_matrix(image_to_world: np.ndarray, grid: Grid) -> np.ndarray:
    """Image voxel index -> volume voxel index."""
    return np.linalg.inv(grid.ijk_to_ras) @ image_to_world


def _same_lattice(image_to_world: np.ndarray, grid: Grid, tolerance: float = 1e-3) -> bool:
    """Each image voxel centre is a volume voxel centre (axes may be permuted or flipped, offset by whole voxels)."""
    mapping = _index_matrix(image_to_world, grid)
    rotation = mapping[:3, :3]
    rounded = np.round(rotation)
    return bool(
        np.abs(rotation - rounded).max() <= tolerance
        and sorted(np.abs(rounded).sum(axis=0)) == [1, 1, 1]
        and sorted(np.abs(rounded).sum(axis=1)) == [1, 1, 1]
        and np.abs(mapping[:3, 3] - np.round(mapping[:3, 3])).max() <= tolerance
    )


def _inside(image_to_world: np.ndarray, extent: tuple[int, ...], grid: Grid) -> bool:
    """The image's extent lies within the volume's voxels."""
    mapping = _index_matrix(image_to_world, grid)
    corners = np.array([[i, j, k, 1.0] for i in extent[0:2] for j in extent[2:4] for k in extent[4:6]], dtype=float).T
    index = np.round(mapping @ corners)[:3]
    return bool((index.min(axis=1) >= 0).all() and (index.max(axis=1) <= np.array(grid.size) - 1).all())


def _stem(path: Path) -> str:
    suffix = full_suffix(path)
    return path.name[: -len(suffix)] if suffix and path.name.lower().endswith(suffix) else path.name
