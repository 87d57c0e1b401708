"""An index of the DICOM files in a folder tree, from their headers alone, read once.

Each file's header is read once with pydicom (``stop_before_pixels``) and kept, keyed by path, modification
time and size, so listing, choosing and loading a series never read a header twice in a process; pixel
data is read only by the loader that needs it. A file that is DICOM by name or by its ``DICM`` marker and
cannot be read, or whose pixel data is shorter than its header says (a truncated slice), is named in one
sentence. Files that are neither (notes, thumbnails) are left out.

Series are grouped by SeriesInstanceUID and image slices sorted along the slice normal, as GDCM sorts them.
RT Structure Sets and DICOM SEG objects are indexed with their ROI or segment names and the series they
refer to, so a tree can be paired up without reading a contour or a mask.

Importing this module loads nothing of Slicer: ``segtruth info`` on a tree answers without it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import SegTruthError
from .dicom_file import check_complete

DICOM_SUFFIXES = ("", ".dcm", ".dicom", ".ima")  # names of DICOM files in DICOM folders; others are notes
ANNOTATION_MODALITIES = ("RTSTRUCT", "SEG")
NON_IMAGE_MODALITIES = frozenset({"RTSTRUCT", "SEG", "RTPLAN", "RTRECORD", "RTDOSE", "SR", "PR", "KO", "REG", "DOC"})
_UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
_IRREGULAR = 0.1  # gaps spreading over this fraction of the median: a missing or misplaced slice
_TAGS = [
    "SOPClassUID", "SOPInstanceUID", "Modality", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID",
    "SeriesDescription", "SeriesNumber", "InstanceNumber", "PatientID", "Rows", "Columns", "NumberOfFrames",
    "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "BitsAllocated", "SamplesPerPixel",
    "StructureSetROISequence", "ReferencedFrameOfReferenceSequence", "SegmentSequence", "ReferencedSeriesSequence",
]  # fmt: skip


@dataclass(frozen=True)
class DicomHeader:
    """What SegTruth needs of one DICOM file's header."""

    path: Path
    modality: str
    sop_class: str
    sop_instance: str
    study_uid: str
    series_uid: str
    frame_uid: str
    description: str
    number: str
    instance: int | None
    patient_id: str
    rows: int
    columns: int
    frames: int
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    names: tuple[str, ...] = ()  # ROI names (RTSTRUCT) or segment labels (SEG)
    references: tuple[str, ...] = ()  # the series an RTSTRUCT or SEG refers to


_CACHE: dict[str, tuple[int, int, DicomHeader | None]] = {}


def _pydicom():
    try:
        import pydicom
    except ImportError:
        raise SegTruthError("Reading DICOM headers needs the pydicom package: pip install pydicom.") from None
    return pydicom


def _looks_dicom(path: Path, head: bytes) -> bool:
    return head[128:132] == b"DICM" or path.suffix.lower() in DICOM_SUFFIXES


def _floats(value, count: int) -> tuple[float, ...] | None:
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count and all(np.isfinite(numbers)) else None


def _text(dataset, keyword: str) -> str:
    value = dataset.get(keyword, "")
    return str(value).strip() if value is not None else ""


def _unreadable(path: Path) -> SegTruthError:
    return SegTruthError(f"{path}: is not a readable DICOM image (empty, truncated or damaged).")


def read_header(path: str | Path, strict: bool = True) -> DicomHeader | None:
    """The header of one file (cached by path, mtime and size); None for a file that is not DICOM.

    A file named as DICOM (``.dcm``, or no extension when ``strict``) or marked ``DICM`` that cannot be read
    is an error: a series would otherwise load without it.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        raise SegTruthError(f"{path}: file not found.") from None
    key = str(path.resolve())
    cached = _CACHE.get(key)
    if cached is not None and cached[:2] == (stat.st_mtime_ns, stat.st_size):
        return cached[2]
    header = _read(path, stat.st_size, strict)
    _CACHE[key] = (stat.st_mtime_ns, stat.st_size, header)
    return header


def _read(path: Path, size: int, strict: bool) -> DicomHeader | None:
    pydicom = _pydicom()
    with open(path, "rb") as stream:
        head = stream.read(132)
        if not _looks_dicom(path, head):
            return None
        stream.seek(0)
        try:
            with warnings.catch_warnings():  # pydicom's guesses about damaged or non-DICOM files: judged below
                warnings.simplefilter("ignore")
                dataset = pydicom.dcmread(stream, stop_before_pixels=True, specific_tags=_TAGS, force=True)
            pixels_at = stream.tell()
            modality = _text(dataset, "Modality").upper()
            series_uid = _text(dataset, "SeriesInstanceUID")
        except Exception:  # pydicom raises many types for damaged files
            raise _unreadable(path) from None
    if not series_uid:
        if strict or head[128:132] == b"DICM" or path.suffix:
            raise _unreadable(path)
        return None  # in a tree, an extension-less file that is not DICOM (a README, a licence)
    try:
        return _header(path, dataset, modality, series_uid, size - pixels_at)
    except SegTruthError:
        raise
    except Exception:  # a damaged value surfaces only when converted
        raise _unreadable(path) from None


def _header(path: Path, dataset, modality: str, series_uid: str, remaining: int) -> DicomHeader:
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    names: list[str] = []
    references: list[str] = []
    if modality in ANNOTATION_MODALITIES:
        check_complete(path)  # pydicom ends a truncated file's sequences early without a word
    if modality == "RTSTRUCT":
        names = [_text(item, "ROIName") for item in dataset.get("StructureSetROISequence", [])]
        for frame in dataset.get("ReferencedFrameOfReferenceSequence", []):
            for study in frame.get("RTReferencedStudySequence", []):
                references += [_text(s, "SeriesInstanceUID") for s in study.get("RTReferencedSeriesSequence", [])]
    elif modality == "SEG":
        names = [_text(item, "SegmentLabel") for item in dataset.get("SegmentSequence", [])]
        references = [_text(item, "SeriesInstanceUID") for item in dataset.get("ReferencedSeriesSequence", [])]
    elif modality not in NON_IMAGE_MODALITIES and rows and columns:
        syntax = str(getattr(dataset, "file_meta", {}).get("TransferSyntaxUID", "1.2.840.10008.1.2"))
        if syntax in _UNCOMPRESSED:
            bits = int(dataset.get("BitsAllocated", 16) or 16)
            samples = int(dataset.get("SamplesPerPixel", 1) or 1)
            expected = rows * columns * frames * samples * bits // 8
            element = 8 if syntax == "1.2.840.10008.1.2" else 12  # the pixel data's tag, VR and length
            if remaining < expected + element:
                raise SegTruthError(
                    f"{path}: is not a readable DICOM image (empty, truncated or damaged): its pixel data is "
                    f"{max(remaining - element, 0)} of {expected} bytes."
                )
    instance = dataset.get("InstanceNumber")
    try:
        instance_number = int(instance) if instance not in (None, "") else None
    except (TypeError, ValueError):
        instance_number = None
    spacing = _floats(dataset.get("PixelSpacing"), 2)
    return DicomHeader(
        path=path,
        modality=modality,
        sop_class=_text(dataset, "SOPClassUID"),
        sop_instance=_text(dataset, "SOPInstanceUID"),
        study_uid=_text(dataset, "StudyInstanceUID"),
        series_uid=series_uid,
        frame_uid=_text(dataset, "FrameOfReferenceUID"),
        description=_text(dataset, "SeriesDescription"),
        number=_text(dataset, "SeriesNumber"),
        instance=instance_number,
        patient_id=_text(dataset, "PatientID"),
        rows=rows,
        columns=columns,
        frames=frames,
        position=_floats(dataset.get("ImagePositionPatient"), 3),  # type: ignore[arg-type]
        orientation=_floats(dataset.get("ImageOrientationPatient"), 6),
        pixel_spacing=spacing,  # type: ignore[arg-type]
        names=tuple(n for n in names if n),
        references=tuple(dict.fromkeys(r for r in references if r)),
    )


# -- series ---------------------------------------------------------------------------------------------------------
@dataclass
class SeriesEntry:
    """One series of a tree: its files' headers (image slices in slice order) and what it is."""

    uid: str
    headers: list[DicomHeader] = field(default_factory=list)

    @property
    def first(self) -> DicomHeader:
        return self.headers[0]

    @property
    def modality(self) -> str:
        return self.first.modality

    @property
    def description(self) -> str:
        return self.first.description

    @property
    def number(self) -> str:
        return self.first.number

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(h.path for h in self.headers)

    @property
    def is_image(self) -> bool:
        return self.modality not in NON_IMAGE_MODALITIES and self.first.rows > 0

    @property
    def is_annotation(self) -> bool:
        return self.modality in ANNOTATION_MODALITIES

    @property
    def folders(self) -> list[Path]:
        return sorted({h.path.parent for h in self.headers})

    def positions_along_normal(self) -> np.ndarray | None:
        """Each slice's position along the slice normal (mm), or None when a slice has no position."""
        first = self.first
        if first.orientation is None or any(h.position is None for h in self.headers):
            return None
        normal = np.cross(first.orientation[:3], first.orientation[3:])
        return np.array([h.position for h in self.headers]) @ normal

    def sort(self) -> None:
        """Image slices along the slice normal (GDCM's order); ties by instance number, then name."""
        along = self.positions_along_normal() if self.is_image else None
        if along is None:
            self.headers.sort(key=lambda h: (h.instance if h.instance is not None else 0, h.path.name))
            return
        order = sorted(
            range(len(self.headers)),
            key=lambda n: (
                round(float(along[n]), 4),
                self.headers[n].instance if self.headers[n].instance is not None else 0,
                self.headers[n].path.name,
            ),
        )
        self.headers = [self.headers[n] for n in order]

    def size(self) -> tuple[int, int, int] | None:
        if not self.is_image:
            return None
        first = self.first
        slices = first.frames if len(self.headers) == 1 else len(self.headers)
        return (first.columns, first.rows, slices)

    def spacing(self) -> tuple[float, float, float] | None:
        """Column, row and slice spacing (mm) from the headers; the median gap between slices."""
        first = self.first
        along = self.positions_along_normal()
        if first.pixel_spacing is None:
            return None
        slice_gap = float(np.median(np.diff(along))) if along is not None and len(along) > 1 else 0.0
        return (first.pixel_spacing[1], first.pixel_spacing[0], slice_gap)

    def spacing_problem(self) -> str | None:
        """One sentence when the slices are not equally spaced (a missing or misplaced slice), else None."""
        along = self.positions_along_normal()
        if along is None or len(along) < 3:
            return None
        gaps = np.diff(along)
        median = float(np.median(gaps))
        if median <= 0:
            return None
        worst = int(np.argmax(np.abs(gaps - median)))
        if gaps.max() - gaps.min() <= _IRREGULAR * median:  # the loader's own test: it refuses these series
            return None
        count = int(np.count_nonzero(np.abs(gaps - median) > _IRREGULAR * median / 2))
        return (
            f"slice spacing is irregular: a gap of {gaps[worst]:.4g} mm between the slices at {along[worst]:.4g} and "
            f"{along[worst + 1]:.4g} mm along the normal where {median:.4g} mm is usual ({count} such gap"
            f"{'s' if count > 1 else ''}), so a slice is missing or out of place."
        )

    def describe(self) -> str:
        name = self.description or "no description"
        number = f"series {self.number}, " if self.number else ""
        return f"{self.uid} ({number}{name!r}, {len(self.headers)} files)"


def _walk(root: Path, recursive: bool) -> Iterable[Path]:
    if not recursive:
        yield from sorted(p for p in root.iterdir() if p.is_file())
        return
    for folder, folders, files in os.walk(root):
        folders.sort()
        for name in sorted(files):
            yield Path(folder) / name


def index_tree(
    root: str | Path, recursive: bool = True, progress: Callable[[int, int], None] | None = None
) -> list[SeriesEntry]:
    """Every series under ``root`` (or directly in it), in the order first found; slices sorted."""
    root = Path(root)
    if not root.is_dir():
        raise SegTruthError(f"{root}: DICOM folder not found.")
    paths = [
        p
        for p in _walk(root, recursive)
        if not p.name.startswith(".") and p.name.upper() != "DICOMDIR" and not p.is_symlink()
    ]
    series: dict[str, SeriesEntry] = {}
    for n, path in enumerate(paths):
        header = read_header(path, strict=not recursive)
        if progress is not None:
            progress(n + 1, len(paths))
        if header is None:
            continue
        series.setdefault(header.series_uid, SeriesEntry(header.series_uid)).headers.append(header)
    for entry in series.values():
        entry.sort()
    return list(series.values())


def referring(entries: list[SeriesEntry], image: SeriesEntry) -> list[SeriesEntry]:
    """The RTSTRUCT and SEG series of ``entries`` that refer to ``image``."""
    return [e for e in entries if e.is_annotation and image.uid in {r for h in e.headers for r in h.references}]
