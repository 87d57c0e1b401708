"""DICOM Segmentation objects read back as masks on an image series' grid, frame by frame, without resampling.

Each frame carries its own position (Plane Position Sequence) and the plane's orientation and pixel spacing;
its pixel (row r, column c) lies at ``position + c * column spacing * row direction + r * row spacing * column
direction``. That point must be a voxel centre of the volume (within a quarter voxel: header positions are
rounded) and the frame's rows and columns must run along the volume's axes, so every pixel lands on exactly
one voxel. BINARY, FRACTIONAL (a pixel is inside at half the maximum or more) and LABELMAP segmentations are
read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import SegTruthError
from ..core.geometry import LPS_TO_RAS, Grid
from ..core.terminology import Code, Terminology
from .dicom_file import check_complete

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
_POSITION_TOLERANCE = 0.25  # voxels
_STEP_TOLERANCE = 1e-2  # voxels per pixel: direction cosines are stored rounded


@dataclass(frozen=True)
class SegSegment:
    number: int
    name: str
    color: tuple[float, float, float] | None
    terminology: Terminology | None


@dataclass
class SegObject:
    """A DICOM SEG's segments and the series it refers to; pixel data is decoded on request."""

    path: Path
    series_uids: tuple[str, ...]
    frame_of_reference_uid: str
    segmentation_type: str
    segments: tuple[SegSegment, ...] = ()
    _dataset: object = field(default=None, repr=False)

    @property
    def names(self) -> list[str]:
        return [segment.name for segment in self.segments]


def _pydicom():
    try:
        import pydicom
    except ImportError:
        raise SegTruthError("Reading DICOM SEG files needs the pydicom package: pip install pydicom.") from None
    return pydicom


def _code(sequence) -> Code | None:
    if not sequence:
        return None
    item = sequence[0]
    try:
        return Code(str(item.CodingSchemeDesignator), str(item.CodeValue), str(item.CodeMeaning))
    except AttributeError:
        return None


_D65_WHITE = (95.047, 100.0, 108.883)
_XYZ_TO_SRGB = np.linalg.inv(np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]))


def rgb_from_dicom_lab(value) -> tuple[float, float, float]:
    """sRGB (0..1) of a Recommended Display CIELab Value (L* a* b* scaled to 0..65535, D65)."""
    lightness = float(value[0]) * 100 / 0xFFFF
    a = float(value[1]) * 255 / 0xFFFF - 128
    b = float(value[2]) * 255 / 0xFFFF - 128
    fy = (lightness + 16) / 116
    fx, fz = fy + a / 500, fy - b / 200

    def finv(t: float) -> float:
        return t**3 if t > 6 / 29 else 3 * (6 / 29) ** 2 * (t - 4 / 29)

    xyz = np.array([finv(fx) * _D65_WHITE[0], finv(fy) * _D65_WHITE[1], finv(fz) * _D65_WHITE[2]]) / 100
    linear = np.clip(_XYZ_TO_SRGB @ xyz, 0, 1)
    srgb = np.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, linear * 12.92)
    # the 8-bit colour the writer started from
    return tuple(round(float(c) * 255) / 255 for c in np.clip(srgb, 0, 1))  # type: ignore[return-value]


def read_seg(path: str | Path) -> SegObject:
    """A DICOM SEG file's header (segments, references); a truncated or non-SEG file is one sentence."""
    pydicom = _pydicom()
    path = Path(path)
    if not path.is_file():
        raise SegTruthError(f"{path}: DICOM SEG file not found.")
    check_complete(path)
    try:
        dataset = pydicom.dcmread(path)
        modality = str(dataset.get("Modality", ""))
        sop_class = str(dataset.get("SOPClassUID", ""))
    except Exception as error:  # pydicom raises many types for broken files
        raise SegTruthError(
            f"{path}: cannot be read as DICOM (truncated or damaged: {type(error).__name__})."
        ) from None
    if modality != "SEG" and sop_class != SEG_SOP_CLASS:
        raise SegTruthError(f"{path}: is a DICOM {modality or 'object'}, not a DICOM Segmentation.")
    try:
        segments = []
        for item in dataset.get("SegmentSequence", []):
            number = int(item.SegmentNumber)
            name = str(item.get("SegmentLabel", "")).strip() or f"Segment {number}"
            color = (
                rgb_from_dicom_lab(item.RecommendedDisplayCIELabValue)
                if "RecommendedDisplayCIELabValue" in item
                else None
            )
            category = _code(item.get("SegmentedPropertyCategoryCodeSequence"))
            kind_item = item.get("SegmentedPropertyTypeCodeSequence")
            kind = _code(kind_item)
            terminology = None
            if category and kind:
                modifier = _code(kind_item[0].get("SegmentedPropertyTypeModifierCodeSequence"))
                region_item = item.get("AnatomicRegionSequence")
                region = _code(region_item)
                region_modifier = _code(region_item[0].get("AnatomicRegionModifierSequence")) if region else None
                terminology = Terminology(category, kind, modifier, region, region_modifier)
            segments.append(SegSegment(number, name, color, terminology))
        series = tuple(
            str(item.SeriesInstanceUID)
            for item in dataset.get("ReferencedSeriesSequence", [])
            if "SeriesInstanceUID" in item
        )
        result = SegObject(
            path,
            series,
            str(dataset.get("FrameOfReferenceUID", "")),
            str(dataset.get("SegmentationType", "BINARY")).upper(),
            tuple(segments),
            dataset,
        )
    except SegTruthError:
        raise
    except Exception as error:
        raise SegTruthError(f"{path}: its segments cannot be read (damaged: {type(error).__name__}).") from None
    names = result.names
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise SegTruthError(f"{path}: several segments are labelled {duplicated[0]!r}; segment labels must be unique.")
    return result


def _item(functional_groups, name: str, attribute: str):
    for group in functional_groups:
        if group is not None and name in group and attribute in group[name][0]:
            return group[name][0].get(attribute)
    return None


def segment_masks(seg: SegObject, grid: Grid) -> dict[int, np.ndarray]:
    """Each segment number's boolean (k, j, i) mask on ``grid``."""
    dataset = seg._dataset
    path = seg.path
    try:
        pixels = np.asarray(dataset.pixel_array)  # type: ignore[attr-defined]
    except Exception as error:
        raise SegTruthError(
            f"{path}: its pixel data cannot be decoded (truncated or damaged: {type(error).__name__})."
        ) from None
    frames = int(dataset.get("NumberOfFrames", 1))  # type: ignore[attr-defined]
    pixels = pixels.reshape(frames, int(dataset.Rows), int(dataset.Columns))  # type: ignore[attr-defined]
    shared = dataset.get("SharedFunctionalGroupsSequence")  # type: ignore[attr-defined]
    shared = shared[0] if shared else None
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence") or [None] * frames  # type: ignore[attr-defined]
    if len(per_frame) != frames:
        raise SegTruthError(f"{path}: describes {len(per_frame)} frames but holds {frames}.")
    ras_to_ijk = np.linalg.inv(grid.ijk_to_ras) @ LPS_TO_RAS
    masks = {segment.number: np.zeros(grid.shape_kji, dtype=bool) for segment in seg.segments}
    maximum = float(dataset.get("MaximumFractionalValue", 255))  # type: ignore[attr-defined]
    labelmap = seg.segmentation_type == "LABELMAP"
    size = np.array(grid.size)
    for f in range(frames):
        groups = (per_frame[f], shared)
        position = _item(groups, "PlanePositionSequence", "ImagePositionPatient")
        orientation = _item(groups, "PlaneOrientationSequence", "ImageOrientationPatient")
        spacing = _item(groups, "PixelMeasuresSequence", "PixelSpacing")
        if position is None or orientation is None or spacing is None:
            raise SegTruthError(f"{path}: frame {f + 1} has no position, orientation or pixel spacing.")
        iop = np.array([float(v) for v in orientation])
        origin = (ras_to_ijk @ np.append([float(v) for v in position], 1.0))[:3]
        step_c = ras_to_ijk[:3, :3] @ (iop[:3] * float(spacing[1]))
        step_r = ras_to_ijk[:3, :3] @ (iop[3:] * float(spacing[0]))
        if (
            np.abs(origin - np.round(origin)).max() > _POSITION_TOLERANCE
            or np.abs(step_c - np.round(step_c)).max() > _STEP_TOLERANCE
            or np.abs(step_r - np.round(step_r)).max() > _STEP_TOLERANCE
            or np.abs(np.round(step_c)).sum() != 1
            or np.abs(np.round(step_r)).sum() != 1
        ):
            raise SegTruthError(
                f"{path}: frame {f + 1} does not lie on the voxels of the image it is read on "
                f"({grid.describe()}); labels are never resampled, so give the series the SEG was made on."
            )
        frame = pixels[f]
        if labelmap:
            numbers = [int(v) for v in np.unique(frame) if v != 0]
        else:
            identification = _item(groups, "SegmentIdentificationSequence", "ReferencedSegmentNumber")
            if identification is None:
                raise SegTruthError(f"{path}: frame {f + 1} names no segment.")
            numbers = [int(identification)]
        for number in numbers:
            if number not in masks:
                raise SegTruthError(
                    f"{path}: frame {f + 1} refers to segment {number}, which the file does not describe."
                )
            if labelmap:
                inside = frame == number
            elif seg.segmentation_type == "FRACTIONAL":
                inside = frame >= maximum / 2
            else:
                inside = frame != 0
            rows, columns = np.nonzero(inside)
            if not rows.size:
                continue
            index = np.round(origin[:, None] + np.outer(step_c, columns) + np.outer(step_r, rows)).astype(np.int64)
            outside = (index < 0).any(axis=0) | (index >= size[:, None]).any(axis=0)
            if outside.any():
                raise SegTruthError(
                    f"{path}: segment {number} has {int(outside.sum())} voxels outside the image it is read on; "
                    "they would be lost."
                )
            masks[number][index[2], index[1], index[0]] = True
    return masks
