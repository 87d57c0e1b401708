"""RT Structure Set export: dciodvfy finds no errors, and reading the file back gives the same voxels, exactly.

Masks with holes, islands in holes and pixels touching only at a corner (random blobs) are written on an axial
and an oblique series; the four pycerr structure sets go out and back in; in each case every voxel must come
back where it was (the stated tolerance is zero voxels on the series' grid), and the contours' vertices must
lie on voxel corners.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from data_sources import pycerr_phantom_cases
from dicom_synthetic import write_series
from scipy import ndimage

from SegTruthLogic.cli import main
from SegTruthLogic.core.labels import LabelTable
from SegTruthLogic.dataset.rtstruct_export import trace_outlines
from SegTruthLogic.scene.case import Case
from SegTruthLogic.scene.rtstruct import contour_indices, fill_polygons, read_structure_set
from SegTruthLogic.scene.segments import add_segment, segment_ids, segment_info, segment_masks, set_segment_mask

pydicom = pytest.importorskip("pydicom")

TABLE = "name,value,color,category,type\nbone,1,#f0e0c0,SCT^91723000^Anatomical Structure,SCT^272673000^Bone\nfat,2,#e0c040,,\n"


def masks_of(case: Case) -> dict[str, np.ndarray]:
    ids = segment_ids(case.segmentation)
    masks = segment_masks(case.session, case.segmentation, ids, case.volume)
    return {case.segmentation.GetSegmentation().GetSegment(sid).GetName(): masks[sid] for sid in ids}


def dciodvfy(path: Path) -> list[str]:
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed, so the RTSTRUCT cannot be validated.")
    result = subprocess.run([tool, "-new", str(path)], capture_output=True, text=True, timeout=120, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]


def test_outlines_enclose_exactly_the_pixels():
    rng = np.random.default_rng(11)
    for trial in range(200):
        mask = rng.random((17, 23)) < rng.uniform(0.2, 0.8)
        if trial % 2:
            mask = ndimage.binary_closing(mask)
        outlines = trace_outlines(mask)
        assert all(np.array_equal(o, np.round(o - 0.5) + 0.5) for o in outlines)  # vertices on pixel corners
        assert np.array_equal(fill_polygons(outlines, 23, 17), mask), trial
    ring = np.zeros((7, 7), bool)
    ring[1:6, 1:6], ring[3, 3] = True, False
    assert sorted(len(o) for o in trace_outlines(ring)) == [4, 4]  # the outside and the hole, corners only


@pytest.fixture(scope="module", params=["axial", "oblique"])
def series(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param) / "series"
    values = np.zeros((8, 36, 40), np.int16)
    if request.param == "axial":
        return write_series(folder, values)
    a, b = np.radians(28), np.radians(-12)
    row = np.array([np.cos(b), np.sin(b) * np.cos(a), np.sin(b) * np.sin(a)])
    column = np.array([0.0, np.cos(a), -np.sin(a)])
    column -= row * (row @ column)
    return write_series(folder, values, spacing=(0.8, 0.65, 2.5), row=row, column=column, origin=(3.3, -20.7, 11.1))


def test_export_reads_back_voxel_equal_and_validates(series, tmp_path, session):
    rng = np.random.default_rng(12)
    blobs = ndimage.binary_opening(rng.random((8, 36, 40)) < 0.55, np.ones((1, 2, 2))) & (
        rng.random((8, 36, 40)) < 0.97
    )
    blobs[:, :, :3] = False
    hollow = np.zeros((8, 36, 40), bool)
    hollow[2:6, 5:30, 8:34] = True
    hollow[2:6, 10:25, 13:29] = False
    hollow[2:6, 15:20, 18:24] = True  # an island in the hole
    hollow[1, 0, 0] = hollow[1, 1, 1] = True  # corner-touching pixels at the image's edge
    table = LabelTable.from_csv(TABLE)
    case = Case.open(series.folder, session=session, table=table)
    for label, mask in zip(table, (blobs, hollow)):
        set_segment_mask(case.session, case.segmentation, add_segment(case.segmentation, label), mask, case.volume)
    source = tmp_path / "case.seg.nrrd"
    case.save(source)
    out = tmp_path / "RS.dcm"
    assert main(["rtstruct", str(series.folder), str(source), "-o", str(out), "-q"]) == 0
    assert dciodvfy(out) == []
    back = Case.open(series.folder, out, session=session)
    got = masks_of(back)
    assert list(got) == ["bone", "fat"]
    assert np.array_equal(got["bone"], blobs) and np.array_equal(got["fat"], hollow)
    name, color, terminology, value = segment_info(back.segmentation, segment_ids(back.segmentation)[0])
    assert (name, value, terminology.type.value) == ("bone", 1, "272673000")
    assert color == pytest.approx((0xF0 / 255, 0xE0 / 255, 0xC0 / 255))
    # every vertex is a voxel corner of the series (half-integer indices in-plane, a slice centre through-plane)
    from SegTruthLogic.core.geometry import Grid

    grid = Grid.from_node(back.volume)
    for roi in read_structure_set(out).rois:
        for points in roi.contours:
            index = contour_indices(points, grid)
            assert np.abs(index[:, :2] - (np.floor(index[:, :2]) + 0.5)).max() < 1e-5
            assert np.abs(index[:, 2] - np.round(index[:, 2])).max() < 1e-5


@pytest.mark.parametrize("patient", [1, 3])
def test_pycerr_structure_sets_go_out_and_back_unchanged(patient, tmp_path, session):
    folder = pycerr_phantom_cases() / f"pat_{patient}"
    (original,) = folder.glob("DCM_RS_*.dcm")
    first = masks_of(Case.open(folder, original, session=session))
    out = tmp_path / "again.dcm"
    assert main(["rtstruct", str(folder), str(original), "-o", str(out), "-q"]) == 0
    assert dciodvfy(out) == []
    again = masks_of(Case.open(folder, out, session=session))
    assert list(again) == ["GTV-1"] and np.array_equal(again["GTV-1"], first["GTV-1"])
    written = pydicom.dcmread(out)
    assert written.PatientID == pydicom.dcmread(original).PatientID
    item = written.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert item.SeriesInstanceUID == pydicom.dcmread(next(folder.glob("DCM_IMG_*.dcm"))).SeriesInstanceUID
