"""RT Structure Sets and DICOM SEG files given wherever a segmentation is accepted.

Each ROI (or SEG segment) becomes a segment named after it with its colour and codes, on the volume's exact
grid. Without a label table the segments get the values 1..N in the file's order; with one, every chosen
name must be a label's name or one of its synonyms (several names may share a label, their voxels united),
and a name the table does not know is an error that lists it instead of a guess. ``rois`` picks names by
exact match or glob.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from ..core.errors import SegTruthError
from ..core.geometry import Grid
from ..core.labels import Label, LabelTable, default_color
from ..core.sources import SOURCE_FILE_ATTRIBUTE
from ..core.terminology import Terminology
from .dicom import SERIES_UID_ATTRIBUTE
from .dicom_seg_read import read_seg, segment_masks
from .rtstruct import check_refers_to, rasterise, read_structure_set
from .segments import LABEL_VALUE_TAG, TERMINOLOGY_TAG, new_segmentation
from .session import Session

DICOM_ANNOTATION_MODALITIES = ("RTSTRUCT", "SEG")


def dicom_modality(path: str | Path) -> str | None:
    """The Modality of a DICOM file (``RTSTRUCT``, ``SEG``, ``CT`` ...), or None when it is not DICOM."""
    path = Path(path)
    if not path.is_file():
        return None
    with open(path, "rb") as stream:
        head = stream.read(132)
    if head[128:132] != b"DICM" and path.suffix.lower() not in (".dcm", ".dicom"):
        return None
    try:
        import pydicom
    except ImportError:
        return None
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality", "SOPClassUID"])
    except Exception:  # not DICOM, or damaged: the reader of its kind says which
        return "" if head[128:132] == b"DICM" else None
    return str(dataset.get("Modality", "")).strip()


def is_dicom_annotation(path: str | Path) -> bool:
    return dicom_modality(path) in DICOM_ANNOTATION_MODALITIES


def _chosen(names: list[str], patterns: Sequence[str] | None, path: Path, what: str) -> list[int]:
    if not patterns:
        return list(range(len(names)))
    chosen: set[int] = set()
    for pattern in patterns:
        hits = [n for n, name in enumerate(names) if name == pattern]
        hits = hits or [n for n, name in enumerate(names) if fnmatch.fnmatchcase(name, pattern)]
        if not hits:
            listing = ", ".join(repr(name) for name in names) or "none"
            raise SegTruthError(f"{path}: has no {what} named {pattern!r} ({what}s: {listing}).")
        chosen.update(hits)
    return sorted(chosen)


def _labels(
    names: list[str],
    colors: list,
    terminologies: list,
    table: LabelTable | None,
    path: Path,
    what: str,
) -> list[Label]:
    """The label each chosen name goes to: its own (1..N) without a table, the table's otherwise."""
    if table is None:
        return [
            Label(name, n, tuple(color) if color else default_color(n), terminology or Terminology())  # type: ignore[arg-type]
            for n, (name, color, terminology) in enumerate(zip(names, colors, terminologies), start=1)
        ]
    matched = [table.match(name) for name in names]
    unmapped = [name for name, label in zip(names, matched) if label is None]
    if unmapped:
        raise SegTruthError(
            f"{path}: {what}s {unmapped} are not in the {table.source}; add them (or as synonyms of a label), "
            f"or pick {what}s with --roi."
        )
    return matched  # type: ignore[return-value]


def _segment(label: Label, block: np.ndarray, box, volume):
    """A segment holding its voxels as the block they occupy (their bounding box), in a layer of its own.

    Adding segments to one shared labelmap makes Slicer merge every new segment into the layer over the whole
    volume (0.3 s a segment on a 512x512x300 CT); a structure set's segments come in one by one, so each keeps
    its own small block, as a .seg.nrrd with overlapping segments holds them.
    """
    grid = Grid.from_node(volume)
    image = slicer.vtkOrientedImageData()
    image.SetImageToWorldMatrix(grid.vtk_matrix())
    if block.any():
        k, j, i = box
        image.SetExtent(i.start, i.stop - 1, j.start, j.stop - 1, k.start, k.stop - 1)
        flat = np.ascontiguousarray(block, dtype=np.uint8).ravel()
        image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(flat, deep=True))
    else:
        image.SetExtent(0, -1, 0, -1, 0, -1)
        image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    segment = slicer.vtkSegment()
    segment.SetName(label.name)
    segment.SetColor(*label.color)
    segment.SetLabelValue(1)
    segment.SetTag(TERMINOLOGY_TAG, label.terminology.serialize())
    segment.SetTag(LABEL_VALUE_TAG, str(label.value))
    segment.AddRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName(), image)
    return segment


def _union(parts: list[tuple[np.ndarray, tuple]], shape: tuple[int, int, int]) -> tuple[np.ndarray, tuple]:
    if len(parts) == 1:
        return parts[0]
    whole = np.zeros(shape, dtype=bool)
    for block, box in parts:
        if block.size:
            whole[box] |= block
    return whole, (slice(0, shape[0]), slice(0, shape[1]), slice(0, shape[2]))


def _build(session: Session, volume, path: Path, labels: list[Label], blocks: list[tuple[np.ndarray, tuple]]):
    """One segment per distinct label, its voxels the union of the names mapped to it, in label order."""
    grouped: dict[str, tuple[Label, list]] = {}
    for label, part in zip(labels, blocks):
        grouped.setdefault(label.name, (label, []))[1].append(part)
    node = new_segmentation(session, volume, path.stem)
    try:
        for label, parts in grouped.values():
            segment = _segment(label, *_union(parts, Grid.from_node(volume).shape_kji), volume)
            if not node.GetSegmentation().AddSegment(segment):
                raise SegTruthError(f"{path}: could not add segment {label.name!r}.")
    except BaseException:
        session.remove(node)
        raise
    node.SetAttribute(SOURCE_FILE_ATTRIBUTE, str(path.resolve()))
    return node


def load_rtstruct(
    session: Session, path: str | Path, volume, table: LabelTable | None = None, rois: Sequence[str] | None = None
):
    """An RT Structure Set's ROIs (all, or those ``rois`` names) as segments on the volume's grid."""
    path = Path(path)
    structure_set = read_structure_set(path)
    check_refers_to(structure_set, volume.GetAttribute(SERIES_UID_ATTRIBUTE))
    chosen = [structure_set.rois[n] for n in _chosen(structure_set.roi_names, rois, path, "ROI")]
    if not rois:
        chosen = [roi for roi in chosen if roi.is_area or not roi.contours]  # markers and lines outline nothing
    for roi in chosen:
        if roi.contours and not roi.is_area:
            raise SegTruthError(f"{path}: ROI {roi.name!r} holds points or open lines, not closed contours.")
    if not chosen:
        raise SegTruthError(f"{path}: holds no ROI with closed contours.")
    labels = _labels(
        [roi.name for roi in chosen],
        [roi.color for roi in chosen],
        [roi.terminology for roi in chosen],
        table,
        path,
        "ROI",
    )
    grid = Grid.from_node(volume)
    blocks = [rasterise(roi, grid, path) for roi in chosen]
    return _build(session, volume, path, labels, blocks)


def load_dicom_seg(
    session: Session, path: str | Path, volume, table: LabelTable | None = None, rois: Sequence[str] | None = None
):
    """A DICOM SEG's segments (all, or those ``rois`` names) on the volume's grid, voxel for voxel."""
    path = Path(path)
    seg = read_seg(path)
    series_uid = volume.GetAttribute(SERIES_UID_ATTRIBUTE)
    if series_uid and seg.series_uids and series_uid not in seg.series_uids:
        raise SegTruthError(
            f"{path}: refers to image series {seg.series_uids[0]}, not to the series it is read on ({series_uid}); "
            "give the image series it was made on."
        )
    if not seg.segments:
        raise SegTruthError(f"{path}: describes no segments.")
    chosen = [seg.segments[n] for n in _chosen(seg.names, rois, path, "segment")]
    labels = _labels(
        [s.name for s in chosen], [s.color for s in chosen], [s.terminology for s in chosen], table, path, "segment"
    )
    grid = Grid.from_node(volume)
    masks = segment_masks(seg, grid)
    whole = (slice(0, grid.size[2]), slice(0, grid.size[1]), slice(0, grid.size[0]))
    return _build(session, volume, path, labels, [(masks[s.number], whole) for s in chosen])


def load_dicom_annotation(
    session: Session, path: str | Path, volume, table: LabelTable | None = None, rois: Sequence[str] | None = None
):
    """An RTSTRUCT or DICOM SEG file as a segmentation node on ``volume``."""
    modality = dicom_modality(path)
    if modality == "RTSTRUCT":
        return load_rtstruct(session, path, volume, table, rois)
    if modality == "SEG":
        return load_dicom_seg(session, path, volume, table, rois)
    if modality == "":
        raise SegTruthError(f"{path}: cannot be read as DICOM (truncated or damaged).")
    raise SegTruthError(
        f"{path}: is a DICOM {modality or 'file'} object, not an RT Structure Set or a DICOM SEG; "
        "give the annotation file."
    )
