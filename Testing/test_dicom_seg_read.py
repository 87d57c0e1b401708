"""DICOM SEG files read back as segmentations, voxel-equal: SegTruth's own SEG export and highdicom's writer.

Masks are written into highdicom's ``Segmentation`` frame by frame from the source datasets (highdicom decides
the frame positions), binary and fractional, on an axial and an oblique series; SegTruth reads them onto the
series loaded by Slicer's reader and must find every voxel where it was put, with names, colours and codes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dicom_synthetic import write_series

from SegTruthLogic import SegTruthError
from SegTruthLogic.cli import main
from SegTruthLogic.scene.case import Case
from SegTruthLogic.scene.segments import segment_ids, segment_info, segment_masks

highdicom = pytest.importorskip("highdicom")
pydicom = pytest.importorskip("pydicom")


def masks_of(case: Case) -> dict[str, np.ndarray]:
    ids = segment_ids(case.segmentation)
    masks = segment_masks(case.session, case.segmentation, ids, case.volume)
    return {case.segmentation.GetSegmentation().GetSegment(sid).GetName(): masks[sid] for sid in ids}


def random_masks(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Two overlapping blobby masks, (k, j, i, 2)."""
    k, j, i = np.indices(shape)
    first = (i - 20) ** 2 + (j - 18) ** 2 < 120 + 40 * np.sin(k)
    second = ((i - 30) ** 2 / 3 + (j - 25) ** 2 < 90) & (rng.random(shape) < 0.8)
    return np.stack([first, second], axis=-1)


def highdicom_seg(series, masks: np.ndarray, path: Path, fractional: bool = False) -> Path:
    """A SEG of ``masks`` (k, j, i, segments) written by highdicom from the series' datasets."""
    from highdicom.sr import CodedConcept

    descriptions = []
    for number, name in enumerate(["Liver", "Lesion"], start=1):
        descriptions.append(
            highdicom.seg.SegmentDescription(
                segment_number=number,
                segment_label=name,
                segmented_property_category=CodedConcept("91723000", "SCT", "Anatomical Structure"),
                segmented_property_type=CodedConcept("10200004" if number == 1 else "52988006", "SCT", name),
                algorithm_type=highdicom.seg.SegmentAlgorithmTypeValues.MANUAL,
            )
        )
    descriptions[0].RecommendedDisplayCIELabValue = [34000, 53000, 50000]
    pixels = masks.astype(np.float32) * (0.9 if fractional else 1.0) if fractional else masks.astype(np.uint8)
    seg = highdicom.seg.Segmentation(
        source_images=series.datasets,
        pixel_array=pixels,
        segmentation_type=highdicom.seg.SegmentationTypeValues.FRACTIONAL
        if fractional
        else highdicom.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=highdicom.UID(),
        series_number=50,
        sop_instance_uid=highdicom.UID(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="1",
        device_serial_number="1",
    )
    seg.save_as(path)
    return path


@pytest.fixture(scope="module", params=["axial", "oblique"])
def series(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param) / "series"
    rng = np.random.default_rng(3)
    values = rng.integers(-50, 50, (9, 40, 48)).astype(np.int16)
    if request.param == "axial":
        return write_series(folder, values)
    a = np.radians(17)
    return write_series(
        folder, values, spacing=(0.6, 0.75, 2.0), row=(np.cos(a), np.sin(a), 0.0), column=(0.0, 0.0, -1.0)
    )


@pytest.mark.parametrize("fractional", [False, True])
def test_highdicom_seg_reads_back_voxel_equal(series, tmp_path, session, fractional):
    masks = random_masks((9, 40, 48), np.random.default_rng(4))
    path = highdicom_seg(series, masks, tmp_path / "seg.dcm", fractional)
    case = Case.open(series.folder, path, session=session)
    got = masks_of(case)
    assert list(got) == ["Liver", "Lesion"]
    assert np.array_equal(got["Liver"], masks[..., 0]) and np.array_equal(got["Lesion"], masks[..., 1])
    name, _, terminology, value = segment_info(case.segmentation, segment_ids(case.segmentation)[1])
    assert (name, value, terminology.type.value, terminology.category.meaning) == (
        "Lesion",
        2,
        "52988006",
        "Anatomical Structure",
    )
    picked = Case.open(series.folder, path, session=session, rois=["Les*"])
    assert list(masks_of(picked)) == ["Lesion"]


def test_segtruths_own_dicom_seg_reads_back_voxel_equal(series, tmp_path, session):
    pytest.importorskip("scipy")
    masks = random_masks((9, 40, 48), np.random.default_rng(5))
    labels = np.where(masks[..., 0], 1, 0) + np.where(masks[..., 1] & ~masks[..., 0], 2, 0)
    source = highdicom_seg(series, np.stack([labels == 1, labels == 2], axis=-1), tmp_path / "source.dcm")
    nrrd = tmp_path / "labels.seg.nrrd"
    assert main(["export", str(series.folder), str(source), "-o", str(nrrd), "-q"]) == 0
    out = tmp_path / "again.dcm"
    assert main(["dicom-seg", str(series.folder), str(nrrd), "-o", str(out), "-q"]) == 0
    got = masks_of(Case.open(series.folder, out, session=session))
    assert np.array_equal(got["Liver"], labels == 1) and np.array_equal(got["Lesion"], labels == 2)
    # and the colour survives the CIELab round trip to the 8-bit colour it started from
    first = Case.open(series.folder, source, session=session)
    _, color, _, _ = segment_info(first.segmentation, segment_ids(first.segmentation)[0])
    again = Case.open(series.folder, out, session=session)
    assert segment_info(again.segmentation, segment_ids(again.segmentation)[0])[1] == pytest.approx(color, abs=1e-9)


def test_a_seg_of_another_series_is_refused(series, tmp_path, session):
    other = write_series(tmp_path / "other", np.zeros((9, 40, 48), np.int16))
    path = highdicom_seg(other, random_masks((9, 40, 48), np.random.default_rng(6)), tmp_path / "other.dcm")
    with pytest.raises(
        SegTruthError, match=r"other.dcm: refers to image series [\d.]+, not to the series it is read on"
    ):
        Case.open(series.folder, path, session=session)
    truncated = tmp_path / "cut.dcm"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(SegTruthError, match=r"cut.dcm: is truncated"):
        Case.open(series.folder, truncated, session=session)
