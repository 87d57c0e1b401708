"""Synthetic DICOM for tests and benchmarks: CT series and RT Structure Sets written with pydicom.

The series geometry is given in LPS (as DICOM stores it): row direction, column direction, pixel spacing and
slice spacing; slice k lies at ``origin + k * slice_spacing * (row x column)``. Structure sets are written the
way planning systems write them (ROI sequence, contour sequence with display colour, observations).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"


def _file_dataset(sop_class: str, sop_uid: str) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = sop_uid
    return dataset


class Series:
    """A written CT series: its UIDs, geometry (LPS) and the datasets of its slices."""

    def __init__(self, folder: Path, datasets: list[Dataset], ijk_to_lps: np.ndarray) -> None:
        self.folder = folder
        self.datasets = datasets
        self.ijk_to_lps = ijk_to_lps
        self.series_uid = str(datasets[0].SeriesInstanceUID)
        self.study_uid = str(datasets[0].StudyInstanceUID)
        self.frame_uid = str(datasets[0].FrameOfReferenceUID)

    def lps(self, ijk: np.ndarray) -> np.ndarray:
        """Continuous voxel indices (n, 3) as LPS points."""
        ijk = np.atleast_2d(ijk)
        return (self.ijk_to_lps @ np.c_[ijk, np.ones(len(ijk))].T).T[:, :3]


def write_series(
    folder: Path,
    array: np.ndarray,
    spacing=(0.9, 0.8, 2.5),
    origin=(-100.0, -120.0, 30.0),
    row=(1.0, 0.0, 0.0),
    column=(0.0, 1.0, 0.0),
    description: str = "synthetic CT",
    series_uid: str | None = None,
    study_uid: str | None = None,
    frame_uid: str | None = None,
    skip: tuple[int, ...] = (),
) -> Series:
    """Write ``array`` (k, j, i) int16 as one file per slice; ``spacing`` is (column, row, slice) in mm.

    ``skip`` leaves slices out (a series with a missing slice).
    """
    folder.mkdir(parents=True, exist_ok=True)
    row, column = np.asarray(row, float), np.asarray(column, float)
    row, column = row / np.linalg.norm(row), column / np.linalg.norm(column)
    normal = np.cross(row, column)
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, 0], ijk_to_lps[:3, 1], ijk_to_lps[:3, 2] = row * spacing[0], column * spacing[1], normal * spacing[2]
    ijk_to_lps[:3, 3] = origin
    series_uid, study_uid, frame_uid = (
        series_uid or generate_uid(),
        study_uid or generate_uid(),
        frame_uid or generate_uid(),
    )
    datasets = []
    for k in range(array.shape[0]):
        dataset = _file_dataset(CT_STORAGE, generate_uid())
        dataset.Modality = "CT"
        dataset.PatientName, dataset.PatientID = "Synthetic^Case", "SYN001"
        dataset.PatientBirthDate, dataset.PatientSex, dataset.ReferringPhysicianName = "", "O", ""
        dataset.Manufacturer, dataset.ImageType, dataset.KVP = "synthetic", ["ORIGINAL", "PRIMARY", "AXIAL"], ""
        dataset.AcquisitionNumber, dataset.PositionReferenceIndicator, dataset.PatientPosition = 1, "", "HFS"
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.FrameOfReferenceUID = (
            study_uid,
            series_uid,
            frame_uid,
        )
        dataset.StudyDate, dataset.StudyTime, dataset.StudyID, dataset.AccessionNumber = "20260101", "120000", "1", ""
        dataset.SeriesNumber, dataset.InstanceNumber, dataset.SeriesDescription = 2, k + 1, description
        dataset.ImagePositionPatient = [float(v) for v in (ijk_to_lps @ [0, 0, k, 1])[:3]]
        dataset.ImageOrientationPatient = [float(v) for v in (*row, *column)]
        dataset.PixelSpacing = [float(spacing[1]), float(spacing[0])]  # row spacing, column spacing
        dataset.SliceThickness = float(spacing[2])
        dataset.Rows, dataset.Columns = array.shape[1], array.shape[2]
        dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
        dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 16, 15, 1
        dataset.RescaleIntercept, dataset.RescaleSlope = 0, 1
        dataset.PixelData = np.ascontiguousarray(array[k], dtype="<i2").tobytes()
        if k not in skip:
            dataset.save_as(folder / f"CT_{k:04d}.dcm", enforce_file_format=True)
        datasets.append(dataset)
    return Series(folder, datasets, ijk_to_lps)


def write_rtstruct(
    path: Path,
    series: Series,
    rois: list[tuple[str, tuple[int, int, int] | None, list[np.ndarray]]],
    series_uid: str | None = None,
    codes: dict[str, tuple[str, str, str]] | None = None,
) -> Path:
    """An RT Structure Set on ``series``: ``rois`` are (name, display colour 0..255, contours as (n, 3) LPS).

    ``series_uid`` makes it refer to another series; ``codes`` gives ROIs an RT ROI Identification Code.
    """
    dataset = _file_dataset(RTSTRUCT_STORAGE, generate_uid())
    dataset.Modality = "RTSTRUCT"
    dataset.PatientName, dataset.PatientID = "Synthetic^Case", "SYN001"
    dataset.PatientBirthDate, dataset.PatientSex, dataset.ReferringPhysicianName = "", "O", ""
    dataset.Manufacturer, dataset.OperatorsName = "synthetic", ""
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = series.study_uid, generate_uid()
    dataset.StudyDate, dataset.StudyTime, dataset.StudyID, dataset.AccessionNumber = "20260101", "120000", "1", ""
    dataset.SeriesNumber, dataset.InstanceNumber = 9, 1
    dataset.StructureSetLabel, dataset.StructureSetDate, dataset.StructureSetTime = "SYN", "20260101", "120000"
    frame = Dataset()
    frame.FrameOfReferenceUID = series.frame_uid
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study.ReferencedSOPInstanceUID = series.study_uid
    referenced = Dataset()
    referenced.SeriesInstanceUID = series_uid or series.series_uid
    images = []
    for slice_dataset in series.datasets:
        image = Dataset()
        image.ReferencedSOPClassUID = CT_STORAGE
        image.ReferencedSOPInstanceUID = slice_dataset.SOPInstanceUID
        images.append(image)
    referenced.ContourImageSequence = Sequence(images)
    study.RTReferencedSeriesSequence = Sequence([referenced])
    frame.RTReferencedStudySequence = Sequence([study])
    dataset.ReferencedFrameOfReferenceSequence = Sequence([frame])
    roi_items, contour_items, observations = [], [], []
    for number, (name, color, contours) in enumerate(rois, start=1):
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID, roi.ROIName = number, series.frame_uid, name
        roi.ROIGenerationAlgorithm = "MANUAL"
        roi_items.append(roi)
        item = Dataset()
        item.ReferencedROINumber = number
        if color is not None:
            item.ROIDisplayColor = list(color)
        sequence = []
        for points in contours:
            contour = Dataset()
            contour.ContourGeometricType = "CLOSED_PLANAR" if len(points) != 1 else "POINT"
            contour.NumberOfContourPoints = len(points)
            contour.ContourData = [f"{v:.6g}" for v in np.asarray(points, float).ravel()]
            sequence.append(contour)
        item.ContourSequence = Sequence(sequence)
        contour_items.append(item)
        observation = Dataset()
        observation.ObservationNumber, observation.ReferencedROINumber = number, number
        observation.RTROIInterpretedType, observation.ROIInterpreter = "ORGAN", ""
        if codes and name in codes:
            code = Dataset()
            code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = codes[name]
            observation.RTROIIdentificationCodeSequence = Sequence([code])
        observations.append(observation)
    dataset.StructureSetROISequence = Sequence(roi_items)
    dataset.ROIContourSequence = Sequence(contour_items)
    dataset.RTROIObservationsSequence = Sequence(observations)
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)
    return path


def polygon(centre, radius: float, count: int, rng: np.random.Generator, wobble: float = 0.3) -> np.ndarray:
    """A star-shaped polygon around ``centre`` (i, j) with ``count`` vertices at random angles."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, count))
    radii = radius * rng.uniform(1 - wobble, 1.0, count)
    return np.c_[centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)]


def read(path: Path) -> Dataset:
    return pydicom.dcmread(path)
