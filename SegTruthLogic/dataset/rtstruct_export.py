"""RT Structure Set export of a segmentation of a DICOM series, for going back to the planning system.

Contours trace the pixel edges of each segment on each slice: every contour vertex is a corner between
voxels, so the outline encloses exactly the segment's voxel centres, and reading the file back by SegTruth's
rule (a voxel is inside when its centre is inside the contours of its slice, even-odd) gives the same voxels:
the round trip is exact on the series' grid (the vertices are written to 10 significant digits, far inside
the half voxel between a vertex and the nearest centre). Holes are inner contours; diagonal neighbours touch
at a corner. Straight runs of edges are merged, so a contour has a vertex only where the outline turns.

Each segment becomes one ROI with the label's name, display colour and (as its RT ROI Identification Code)
the label's type code; ROIs are numbered in label-value order. Patient and study come from the series.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from pathlib import Path

import numpy as np

from .. import __version__
from ..core.atomic import atomic_write, check_output_file, full_suffix
from ..core.errors import SegTruthError
from ..core.geometry import LPS_TO_RAS, Grid
from ..core.labels import LabelTable
from ..scene.dicom import SERIES_UID_ATTRIBUTE, choose_series, load_dicom_series
from ..scene.segmentation_io import load_segmentation
from ..scene.segments import segment_ids, segment_masks, table_from_segmentation
from ..scene.session import Session
from .dicom_seg import frame_slices

RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
SERIES_NUMBER = 3002
_COPIED = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate", "StudyTime",
    "ReferringPhysicianName", "StudyID", "AccessionNumber", "StudyDescription",
)  # fmt: skip


def trace_outlines(mask: np.ndarray) -> list[np.ndarray]:
    """Closed outlines (vertex lists, (x, y) in voxel index units) of a 2D mask's pixel edges.

    Vertices are pixel corners, at half-integer coordinates: pixel (j, i) spans x in [i - 0.5, i + 0.5] and
    y in [j - 0.5, j + 0.5]. Each boundary edge is directed with the inside on one side, and edges are linked
    into loops at their shared corners; where two loops touch at a corner, the walk turns the same way each
    time, so no loop crosses itself.
    """
    padded = np.pad(mask.astype(bool), 1)
    inside = padded[1:-1, 1:-1]
    edges: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    # corner (cx, cy) is the point (cx - 0.5, cy - 0.5); pixel (j, i) has corners (i..i+1, j..j+1)
    sides = (
        (padded[:-2, 1:-1], (0, 0), (1, 0)),  # neighbour above (j - 1): edge along y = j - 0.5, going +x
        (padded[1:-1, 2:], (1, 0), (1, 1)),  # neighbour right (i + 1): edge along x = i + 0.5, going +y
        (padded[2:, 1:-1], (1, 1), (0, 1)),  # neighbour below (j + 1): going -x
        (padded[1:-1, :-2], (0, 1), (0, 0)),  # neighbour left (i - 1): going -y
    )
    for neighbour, start, end in sides:
        js, is_ = np.nonzero(inside & ~neighbour)
        for j, i in zip(js.tolist(), is_.tolist()):
            edges[(i + start[0], j + start[1])].append((i + end[0], j + end[1]))
    loops = []
    while edges:
        first = next(iter(edges))
        loop = [first]
        previous, current = first, _take(edges, first, None)
        while current != first:
            loop.append(current)
            previous, current = current, _take(edges, current, (current[0] - previous[0], current[1] - previous[1]))
        loops.append(_corners(np.array(loop, dtype=float) - 0.5))
    return loops


def _take(edges: dict, vertex: tuple[int, int], heading: tuple[int, int] | None) -> tuple[int, int]:
    """The next corner from ``vertex``; at a corner two loops share, the one turning right of ``heading``."""
    ends = edges[vertex]
    if len(ends) > 1 and heading is not None:
        right = (-heading[1], heading[0])
        choice = next((n for n, e in enumerate(ends) if (e[0] - vertex[0], e[1] - vertex[1]) == right), 0)
    else:
        choice = 0
    end = ends.pop(choice)
    if not ends:
        del edges[vertex]
    return end


def _corners(points: np.ndarray) -> np.ndarray:
    """Drop vertices where the outline runs straight on."""
    before = np.roll(points, 1, axis=0)
    after = np.roll(points, -1, axis=0)
    turn = (points[:, 0] - before[:, 0]) * (after[:, 1] - points[:, 1]) - (points[:, 1] - before[:, 1]) * (
        after[:, 0] - points[:, 0]
    )
    return points[turn != 0]


def _ds(value: float) -> str:
    text = f"{value:.10g}"
    return "0" if text in ("-0", "0") else text


def write_rtstruct(
    session: Session,
    dicom_folder: str | Path,
    segmentation: str | Path,
    output: str | Path,
    table: LabelTable | None = None,
    series_uid: str | None = None,
    overwrite: bool = True,
    rois: list[str] | None = None,
) -> Path:
    """Write an RT Structure Set of ``segmentation`` (on the series' grid) referring to the series' images."""
    import pydicom
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    dicom_folder, output = Path(dicom_folder), Path(output)
    if full_suffix(output) != ".dcm":
        raise SegTruthError(f"{output}: an RT Structure Set file must end in .dcm.")
    check_output_file(output, overwrite)
    volume = load_dicom_series(session, dicom_folder, series_uid)
    node = None
    try:
        node = load_segmentation(session, segmentation, volume, table, rois)  # rois: an RTSTRUCT/SEG's structures
        table = table or table_from_segmentation(node)
        ids = segment_ids(node)
        names = [node.GetSegmentation().GetSegment(sid).GetName() for sid in ids]
        masks = list(segment_masks(session, node, ids, volume).values())
        order = sorted(range(len(ids)), key=lambda n: table.by_name(names[n]).value)  # type: ignore[union-attr]
        names, masks = [names[n] for n in order], [masks[n] for n in order]
        grid = Grid.from_node(volume)
        files = choose_series(dicom_folder, volume.GetAttribute(SERIES_UID_ATTRIBUTE)).files
        datasets = [pydicom.dcmread(path, stop_before_pixels=True) for path in files]
        slices = frame_slices(datasets, grid, dicom_folder)
    finally:
        session.remove(volume, node)
    if not any(mask.any() for mask in masks):
        raise SegTruthError(f"{segmentation}: every segment is empty; an RT Structure Set needs at least one contour.")
    source = {k: datasets[n] for n, k in enumerate(slices)}
    first = datasets[0]
    ijk_to_lps = LPS_TO_RAS @ grid.ijk_to_ras

    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTSTRUCT_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = FileDataset(str(output), Dataset(), file_meta=meta, preamble=b"\0" * 128)
    now = datetime.datetime.now()
    out.SpecificCharacterSet = first.get("SpecificCharacterSet", "ISO_IR 100")
    out.SOPClassUID, out.SOPInstanceUID = RTSTRUCT_STORAGE, sop_uid
    out.InstanceCreationDate, out.InstanceCreationTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    for keyword in _COPIED:
        value = first.get(keyword)
        setattr(out, keyword, value if value is not None else "")
    out.Modality = "RTSTRUCT"
    out.SeriesInstanceUID, out.SeriesNumber = generate_uid(), SERIES_NUMBER
    out.SeriesDescription = f"RTSTRUCT {first.get('SeriesDescription', '')}".strip()[:64]
    out.OperatorsName = ""
    out.Manufacturer, out.ManufacturerModelName, out.SoftwareVersions = "SegTruth", "SegTruth", __version__
    out.InstanceNumber = 1
    out.StructureSetLabel = "SEGTRUTH"
    out.StructureSetName = Path(segmentation).name[:64]
    out.StructureSetDate, out.StructureSetTime = out.InstanceCreationDate, out.InstanceCreationTime

    frame_uid = str(first.FrameOfReferenceUID)
    out.FrameOfReferenceUID = frame_uid
    out.PositionReferenceIndicator = first.get("PositionReferenceIndicator", "")
    referenced_images = []
    for dataset in datasets:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = dataset.SOPClassUID, dataset.SOPInstanceUID
        referenced_images.append(item)
    series_item = Dataset()
    series_item.SeriesInstanceUID = first.SeriesInstanceUID
    series_item.ContourImageSequence = Sequence(referenced_images)
    study_item = Dataset()
    study_item.ReferencedSOPClassUID = (
        "1.2.840.10008.3.1.2.3.1"  # Detached Study Management, as RT objects cite studies
    )
    study_item.ReferencedSOPInstanceUID = first.StudyInstanceUID
    study_item.RTReferencedSeriesSequence = Sequence([series_item])
    frame_item = Dataset()
    frame_item.FrameOfReferenceUID = frame_uid
    frame_item.RTReferencedStudySequence = Sequence([study_item])
    out.ReferencedFrameOfReferenceSequence = Sequence([frame_item])

    rois, contours, observations = [], [], []
    for number, (name, mask) in enumerate(zip(names, masks), start=1):
        label = table.by_name(name)
        assert label is not None  # names come from segments checked against the table
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID = number, frame_uid
        roi.ROIName, roi.ROIGenerationAlgorithm = label.name[:64], "MANUAL"
        rois.append(roi)
        roi_contour = Dataset()
        roi_contour.ReferencedROINumber = number
        roi_contour.ROIDisplayColor = [round(c * 255) for c in label.color]
        items = []
        for k in np.nonzero(mask.reshape(mask.shape[0], -1).any(axis=1))[0].tolist():
            for outline in trace_outlines(mask[k]):
                ijk = np.c_[outline, np.full(len(outline), float(k)), np.ones(len(outline))]
                lps = (ijk_to_lps @ ijk.T).T[:, :3]
                contour = Dataset()
                image = Dataset()
                image.ReferencedSOPClassUID = source[k].SOPClassUID
                image.ReferencedSOPInstanceUID = source[k].SOPInstanceUID
                contour.ContourImageSequence = Sequence([image])
                contour.ContourGeometricType = "CLOSED_PLANAR"
                contour.NumberOfContourPoints = len(lps)
                contour.ContourData = [_ds(v) for v in lps.ravel()]
                items.append(contour)
        if items:
            roi_contour.ContourSequence = Sequence(items)
        contours.append(roi_contour)
        observation = Dataset()
        observation.ObservationNumber, observation.ReferencedROINumber = number, number
        observation.ROIObservationLabel = label.name[:16]
        observation.RTROIInterpretedType, observation.ROIInterpreter = "ORGAN", ""
        code = label.terminology.type
        identification = Dataset()
        identification.CodeValue, identification.CodingSchemeDesignator = code.value, code.scheme
        identification.CodeMeaning = code.meaning[:64]
        observation.RTROIIdentificationCodeSequence = Sequence([identification])
        observations.append(observation)
    out.StructureSetROISequence = Sequence(rois)
    out.ROIContourSequence = Sequence(contours)
    out.RTROIObservationsSequence = Sequence(observations)
    out.ApprovalStatus = "UNAPPROVED"
    return atomic_write(output, lambda temp: out.save_as(temp, enforce_file_format=True), overwrite)
