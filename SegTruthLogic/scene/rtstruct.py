"""DICOM RT Structure Sets read as segments on the referenced image series' exact grid.

An RT Structure Set holds planar contours in patient coordinates (LPS, mm). Each ROI becomes one segment
named after the ROI, with the ROI's display colour and its codes when the file has them.

The rasterisation rule, stated once: every contour point is taken into the image's voxel index space through
the volume's own IJK-to-RAS matrix (so oblique and gantry-tilted series need nothing special); a contour
belongs to the slice whose centre plane is nearest to it; a voxel is inside the ROI when its centre is inside
the contours of that slice by the even-odd rule (a contour inside another is a hole; a third inside that is
an island again). Contours drawn in different planes that fall on the same slice (a structure set drawn on
thinner slices than the image) are united rather than XOR-ed. Nothing is interpolated between slices: a slice
without contours holds no voxels of the ROI, as the structure set says.

Refused, in one sentence each: a closed contour with fewer than three points, a contour that is not parallel
to the image's slices, a contour lying beyond the first or last slice, a structure set that refers to another
image series than the one it is read on, and a truncated or non-RTSTRUCT file.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import SegTruthError
from ..core.geometry import LPS_TO_RAS, Grid
from ..core.terminology import Code, Terminology
from .dicom_file import check_complete

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
PLANE_TOLERANCE = 0.25  # slices: how far a contour's points may stray from their mean plane (rounded coordinates)
SAME_PLANE = 0.1  # slices: contours closer than this are one plane (even-odd); farther apart, separate planes
_AREA_TYPES = ("CLOSED_PLANAR", "OPEN_PLANAR", "CLOSEDPLANAR_XOR")


@dataclass(frozen=True)
class Roi:
    """One structure: number, name, display colour (0..1 RGB or None), codes, and its contours (LPS mm)."""

    number: int
    name: str
    color: tuple[float, float, float] | None
    contours: tuple[np.ndarray, ...] = ()
    geometric_types: tuple[str, ...] = ()
    interpreted_type: str = ""
    terminology: Terminology | None = None

    @property
    def is_area(self) -> bool:
        """Whether the ROI outlines a region (closed contours), rather than points or open lines only."""
        return any(kind in _AREA_TYPES for kind in self.geometric_types)


@dataclass(frozen=True)
class StructureSet:
    """An RTSTRUCT's ROIs and the image series and frame of reference it was drawn on."""

    path: Path
    label: str
    series_uids: tuple[str, ...]
    frame_of_reference_uids: tuple[str, ...]
    rois: tuple[Roi, ...] = field(default_factory=tuple)

    @property
    def roi_names(self) -> list[str]:
        return [roi.name for roi in self.rois]

    def select(self, patterns: Sequence[str] | None) -> list[Roi]:
        """ROIs by exact name or glob (``GTV*``), in structure-set order; a name matching none is an error."""
        if not patterns:
            return list(self.rois)
        chosen: set[int] = set()
        for pattern in patterns:
            hits = [n for n, roi in enumerate(self.rois) if roi.name == pattern]
            hits = hits or [n for n, roi in enumerate(self.rois) if fnmatch.fnmatchcase(roi.name, pattern)]
            if not hits:
                listing = ", ".join(repr(name) for name in self.roi_names) or "none"
                raise SegTruthError(f"{self.path}: has no ROI named {pattern!r} (ROIs: {listing}).")
            chosen.update(hits)
        return [self.rois[n] for n in sorted(chosen)]


def _pydicom():
    try:
        import pydicom
    except ImportError:
        raise SegTruthError("Reading DICOM RT Structure Sets needs the pydicom package: pip install pydicom.") from None
    return pydicom


def _code(item) -> Code | None:
    try:
        return Code(str(item.CodingSchemeDesignator), str(item.CodeValue), str(item.CodeMeaning))
    except AttributeError:
        return None


def _terminology(observation) -> Terminology | None:
    """Category and type codes of an ROI when the file records them (newer writers), else None."""
    if observation is None:
        return None
    category = getattr(observation, "SegmentedPropertyCategoryCodeSequence", None)
    kind = getattr(observation, "SegmentedPropertyTypeCodeSequence", None)
    if category and kind:
        first, second = _code(category[0]), _code(kind[0])
        if first and second:
            return Terminology(first, second)
    identification = getattr(observation, "RTROIIdentificationCodeSequence", None)
    if identification:
        kind_code = _code(identification[0])
        if kind_code:
            return Terminology(Code("SCT", "123037004", "Anatomical Structure"), kind_code)
    return None


def _contour_data(contour) -> np.ndarray | None:
    """A contour's coordinates (None when they are not numbers); parsed from the raw bytes, as pydicom's
    per-value DS objects take 30 times longer."""
    raw = contour.get_item("ContourData") if "ContourData" in contour else None
    if raw is None:
        return np.zeros(0)
    value = raw.value
    if isinstance(value, bytes):
        text = value.decode("ascii", "replace").strip(" \0")
        if not text:
            return np.zeros(0)
        try:
            return np.array(text.split("\\"), dtype=float)
        except ValueError:
            return None
    try:
        return np.asarray([float(v) for v in contour.ContourData or []], dtype=float)
    except (TypeError, ValueError):
        return None


def read_structure_set(path: str | Path) -> StructureSet:
    """The structure set in ``path``, checked: an RTSTRUCT, whole, and every closed contour a polygon."""
    pydicom = _pydicom()
    path = Path(path)
    if not path.is_file():
        raise SegTruthError(f"{path}: RT Structure Set file not found.")
    check_complete(path)
    try:
        dataset = pydicom.dcmread(path)
        modality = str(dataset.get("Modality", ""))
        sop_class = str(dataset.get("SOPClassUID", ""))
    except Exception as error:  # pydicom raises many types for broken files
        raise SegTruthError(
            f"{path}: cannot be read as DICOM (truncated or damaged: {type(error).__name__})."
        ) from None
    if modality != "RTSTRUCT" and sop_class != RTSTRUCT_SOP_CLASS:
        raise SegTruthError(f"{path}: is a DICOM {modality or 'object'}, not an RT Structure Set.")
    try:
        return _structure_set(path, dataset)
    except SegTruthError:
        raise
    except Exception as error:  # a damaged sequence surfaces only when read
        raise SegTruthError(f"{path}: its structure set cannot be read (damaged: {type(error).__name__}).") from None


def _structure_set(path: Path, dataset) -> StructureSet:
    for required in ("StructureSetROISequence", "ROIContourSequence", "RTROIObservationsSequence"):
        if required not in dataset:
            raise SegTruthError(f"{path}: has no {required}, so it is truncated or not a whole RT Structure Set.")
    series: list[str] = []
    frames: list[str] = []
    for frame in dataset.get("ReferencedFrameOfReferenceSequence", []):
        if "FrameOfReferenceUID" in frame:
            frames.append(str(frame.FrameOfReferenceUID))
        for study in frame.get("RTReferencedStudySequence", []):
            for item in study.get("RTReferencedSeriesSequence", []):
                if "SeriesInstanceUID" in item and str(item.SeriesInstanceUID) not in series:
                    series.append(str(item.SeriesInstanceUID))
    observations = {
        int(item.ReferencedROINumber): item
        for item in dataset.get("RTROIObservationsSequence", [])
        if "ReferencedROINumber" in item
    }
    contours_of = {
        int(item.ReferencedROINumber): item
        for item in dataset.get("ROIContourSequence", [])
        if "ReferencedROINumber" in item
    }
    rois = []
    for item in dataset.get("StructureSetROISequence", []):
        number = int(item.ROINumber)
        name = str(item.get("ROIName", "")).strip() or f"ROI {number}"
        roi_contour = contours_of.get(number)
        color = None
        contours, kinds = [], []
        if roi_contour is not None:
            if roi_contour.get("ROIDisplayColor"):
                color = tuple(min(max(float(c), 0.0), 255.0) / 255.0 for c in roi_contour.ROIDisplayColor)[:3]
            for n, contour in enumerate(roi_contour.get("ContourSequence", [])):
                kind = str(contour.get("ContourGeometricType", "CLOSED_PLANAR")).strip().upper()
                data = _contour_data(contour)
                if data is None:
                    raise SegTruthError(f"{path}: ROI {name!r} contour {n + 1} has coordinates that are not numbers.")
                if data.size % 3:
                    raise SegTruthError(
                        f"{path}: ROI {name!r} contour {n + 1} has {data.size} coordinates, not x, y, z triplets."
                    )
                points = data.reshape(-1, 3)
                if kind in _AREA_TYPES and len(points) < 3:
                    raise SegTruthError(
                        f"{path}: ROI {name!r} contour {n + 1} has {len(points)} point(s); a closed contour needs "
                        "at least three."
                    )
                if not np.isfinite(points).all():
                    raise SegTruthError(f"{path}: ROI {name!r} contour {n + 1} has non-finite coordinates.")
                contours.append(points)
                kinds.append(kind)
        observation = observations.get(number)
        interpreted = str(observation.get("RTROIInterpretedType", "")) if observation is not None else ""
        rois.append(
            Roi(number, name, color, tuple(contours), tuple(kinds), interpreted.strip(), _terminology(observation))
        )
    names = [roi.name for roi in rois]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise SegTruthError(f"{path}: several ROIs are named {duplicated[0]!r}; ROI names must be unique.")
    return StructureSet(path, str(dataset.get("StructureSetLabel", "")), tuple(series), tuple(frames), tuple(rois))


# -- rasterisation --------------------------------------------------------------------------------------------------
def contour_indices(points_lps: np.ndarray, grid: Grid) -> np.ndarray:
    """Contour points (LPS mm) as continuous (i, j, k) voxel indices of ``grid``."""
    homogeneous = np.c_[points_lps, np.ones(len(points_lps))]
    ras_to_ijk = np.linalg.inv(grid.ijk_to_ras)
    return (ras_to_ijk @ LPS_TO_RAS @ homogeneous.T).T[:, :3]


def fill_polygons(polygons: Iterable[np.ndarray], columns: int, rows: int) -> np.ndarray:
    """Even-odd fill of polygons given in (i, j) index coordinates: True where a voxel centre is inside.

    A horizontal ray from each centre (i, j) towards -i crosses the polygons' edges; an odd count is inside.
    Edges count for rows j with min(y) <= j < max(y) (half-open, so a vertex on a row is counted once).
    """
    starts, ends = [], []
    for polygon in polygons:
        starts.append(polygon)
        ends.append(np.roll(polygon, -1, axis=0))
    out = np.zeros((rows, columns), dtype=bool)
    if not starts:
        return out
    a, b = np.concatenate(starts), np.concatenate(ends)
    low = np.minimum(a[:, 1], b[:, 1])
    high = np.maximum(a[:, 1], b[:, 1])
    first = np.clip(np.ceil(low), 0, rows).astype(np.int64)
    last = np.clip(np.ceil(high), 0, rows).astype(np.int64)  # exclusive
    counts = np.maximum(last - first, 0)
    total = int(counts.sum())
    if total == 0:
        return out
    edge = np.repeat(np.arange(len(a)), counts)
    row = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts) + first[edge]
    x1, y1, x2, y2 = a[edge, 0], a[edge, 1], b[edge, 0], b[edge, 1]
    x = x1 + (row - y1) * (x2 - x1) / (y2 - y1)
    # the crossing toggles every centre to its right: i >= floor(x) + 1
    column = np.clip(np.floor(x).astype(np.int64) + 1, 0, columns)
    toggles = np.bincount(row * (columns + 1) + column, minlength=rows * (columns + 1))
    parity = np.cumsum(toggles.reshape(rows, columns + 1), axis=1) % 2
    out[:] = parity[:, :columns].astype(bool)
    return out


def rasterise(roi: Roi, grid: Grid, where: str | Path = "") -> tuple[np.ndarray, tuple[slice, slice, slice]]:
    """The ROI's voxels on ``grid``: a boolean block and where it sits in the (k, j, i) array.

    The block is the ROI's bounding box so a 40-ROI structure set on a large CT does not hold 40 full volumes.
    """
    columns, rows, slices = grid.size
    planes: dict[int, list[tuple[float, np.ndarray]]] = {}
    for n, points in enumerate(roi.contours):
        if roi.geometric_types[n] not in _AREA_TYPES:
            continue  # points and open non-planar lines outline no area
        index = contour_indices(points, grid)
        k = index[:, 2]
        level = float(k.mean())
        if float(k.max() - k.min()) > 2 * PLANE_TOLERANCE:
            raise SegTruthError(
                f"{where}: ROI {roi.name!r} contour {n + 1} is not parallel to the image's slices (it spans "
                f"{float(k.max() - k.min()):.2f} slices); the structure set was drawn on another orientation."
            )
        nearest = int(np.floor(level + 0.5))
        if not 0 <= nearest < slices:
            raise SegTruthError(
                f"{where}: ROI {roi.name!r} contour {n + 1} lies {_beyond(level, slices)} slices beyond the image; "
                "the structure set was drawn on another series or a longer scan."
            )
        planes.setdefault(nearest, []).append((level, index[:, :2]))
    empty = np.zeros((0, 0, 0), dtype=bool)
    if not planes:
        return empty, (slice(0, 0), slice(0, 0), slice(0, 0))
    every = np.concatenate([polygon for contours in planes.values() for _, polygon in contours])
    i0, j0 = (max(int(np.floor(every[:, a].min())), 0) for a in (0, 1))
    i1, j1 = min(int(np.ceil(every[:, 0].max())) + 1, columns), min(int(np.ceil(every[:, 1].max())) + 1, rows)
    k0, k1 = min(planes), max(planes) + 1
    if i0 >= i1 or j0 >= j1:
        return empty, (slice(0, 0), slice(0, 0), slice(0, 0))
    block = np.zeros((k1 - k0, j1 - j0, i1 - i0), dtype=bool)
    offset = np.array([i0, j0], dtype=float)
    for k, contours in planes.items():
        contours.sort(key=lambda item: item[0])
        group: list[np.ndarray] = []
        previous = None
        for level, polygon in contours:
            if previous is not None and level - previous > SAME_PLANE:
                block[k - k0] |= fill_polygons(group, i1 - i0, j1 - j0)
                group = []
            group.append(polygon - offset)
            previous = level
        block[k - k0] |= fill_polygons(group, i1 - i0, j1 - j0)
    return block, (slice(k0, k1), slice(j0, j1), slice(i0, i1))


def _beyond(level: float, slices: int) -> str:
    distance = -level if level < 0 else level - (slices - 1)
    return f"{distance:.1f}"


def roi_mask(roi: Roi, grid: Grid, where: str | Path = "") -> np.ndarray:
    """The ROI as a full boolean (k, j, i) mask on ``grid``."""
    block, box = rasterise(roi, grid, where)
    mask = np.zeros(grid.shape_kji, dtype=bool)
    if block.size:
        mask[box] = block
    return mask


def check_refers_to(structure_set: StructureSet, series_uid: str | None, frame_uid: str | None = None) -> None:
    """A structure set read on a DICOM series must have been drawn on that series."""
    if series_uid and structure_set.series_uids and series_uid not in structure_set.series_uids:
        raise SegTruthError(
            f"{structure_set.path}: refers to image series {structure_set.series_uids[0]}, not to the series it "
            f"is read on ({series_uid}); give the image series it was drawn on."
        )
    if frame_uid and structure_set.frame_of_reference_uids and frame_uid not in structure_set.frame_of_reference_uids:
        raise SegTruthError(
            f"{structure_set.path}: refers to frame of reference {structure_set.frame_of_reference_uids[0]}, not to "
            f"the image's ({frame_uid}); its contours are in another patient coordinate system."
        )
