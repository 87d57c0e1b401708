"""RT Structure Sets read as segments, checked against an independent rasteriser.

The reference takes each contour into voxel indices with SimpleITK's own reading of the series geometry (LPS
origin, spacing, direction), assigns it to the nearest slice and fills it with matplotlib's
``Path.contains_points`` on the voxel centres, contours of one slice combined by XOR (even-odd). SegTruth goes
through Slicer's DICOM reader and its IJK-to-RAS matrix; the two must agree voxel for voxel on synthetic
structure sets (holes, islands in holes, several contours per slice, slices without contours, points off the
slice plane, a contour between slice centres, an oblique series) and on the four real chest CTs of the pycerr
wheel (ROI ``GTV-1``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from data_sources import pycerr_phantom_cases
from dicom_synthetic import polygon, write_rtstruct, write_series
from matplotlib.path import Path as PolygonPath

from SegTruthLogic import SegTruthError
from SegTruthLogic.cli import main
from SegTruthLogic.scene.case import Case
from SegTruthLogic.scene.rtstruct import read_structure_set
from SegTruthLogic.scene.segments import segment_ids, segment_info, segment_masks

pydicom = pytest.importorskip("pydicom")


# -- the independent reference --------------------------------------------------------------------------------------
def sitk_geometry(folder: Path) -> tuple[sitk.Image, np.ndarray]:
    """The image series in ``folder`` read by SimpleITK (its CT files only) and its index-from-LPS matrix."""
    files = sorted(str(p) for p in folder.glob("*.dcm") if pydicom.dcmread(p, stop_before_pixels=True).Modality == "CT")
    uid = pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid))
    image = reader.Execute()
    matrix = np.eye(4)
    matrix[:3, :3] = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())
    matrix[:3, 3] = image.GetOrigin()
    return image, np.linalg.inv(matrix)


def reference_masks(folder: Path, rtstruct: Path) -> dict[str, np.ndarray]:
    """Each ROI's (k, j, i) mask by the stated rule, computed with matplotlib."""
    image, index_from_lps = sitk_geometry(folder)
    columns, rows, slices = image.GetSize()
    jj, ii = np.mgrid[0:rows, 0:columns]
    centres = np.c_[ii.ravel(), jj.ravel()]
    dataset = pydicom.dcmread(rtstruct)
    names = {int(r.ROINumber): r.ROIName for r in dataset.StructureSetROISequence}
    out = {}
    for item in dataset.ROIContourSequence:
        mask = np.zeros((slices, rows, columns), dtype=bool)
        for contour in item.ContourSequence:
            points = np.array([float(v) for v in contour.ContourData]).reshape(-1, 3)
            index = (index_from_lps @ np.c_[points, np.ones(len(points))].T).T
            k = round(float(index[:, 2].mean()))
            mask[k] ^= PolygonPath(index[:, :2]).contains_points(centres).reshape(rows, columns)
        out[names[int(item.ReferencedROINumber)]] = mask
    return out


def masks_of(case: Case) -> dict[str, np.ndarray]:
    ids = segment_ids(case.segmentation)
    masks = segment_masks(case.session, case.segmentation, ids, case.volume)
    return {case.segmentation.GetSegmentation().GetSegment(sid).GetName(): masks[sid] for sid in ids}


# -- synthetic structure sets ---------------------------------------------------------------------------------------
def structures(series, rng: np.random.Generator) -> list:
    """Five ROIs in separate parts of a 64 x 56 x 10 image, drawn in voxel indices and written in LPS."""

    def at(polygon_ij: np.ndarray, k: float, jitter: float = 0.0) -> np.ndarray:
        ks = k + rng.uniform(-jitter, jitter, len(polygon_ij))
        return series.lps(np.c_[polygon_ij, ks])

    ring, pair, nested, jitter, between = [], [], [], [], []
    for k in range(1, 9):
        if k == 4:
            continue  # a slice the annotator skipped: no interpolation fills it
        ring += [at(polygon((14.3, 13.7), 9.2, 24, rng), k), at(polygon((14.1, 13.9), 4.1, 11, rng), k)]
        pair += [at(polygon((44.2, 10.6), 5.3, 9, rng), k), at(polygon((55.7, 10.2), 4.4, 7, rng), k)]
        nested += [
            at(polygon((16.4, 41.2), 11.7, 30, rng, 0.1), k),
            at(polygon((16.4, 41.2), 7.2, 20, rng, 0.1), k),
            at(polygon((16.4, 41.2), 3.1, 12, rng, 0.1), k),
        ]
        jitter.append(at(polygon((45.5, 40.3), 8.8, 17, rng), k, jitter=0.08))  # rounded coordinates
    between.append(at(polygon((45.1, 25.7), 3.3, 8, rng), 2.4))  # between slices 2 and 3: nearest is 2
    between.append(at(polygon((45.1, 25.7), 3.3, 8, rng), 6.6))  # nearest is 7
    return [
        ("Ring", (255, 0, 0), ring),
        ("Pair", (0, 128, 255), pair),
        ("Nested", None, nested),
        ("Jitter", (10, 200, 30), jitter),
        ("Between", (200, 200, 0), between),
    ]


@pytest.fixture(scope="module")
def axial(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("axial") / "series"
    rng = np.random.default_rng(14)
    series = write_series(folder, rng.integers(-100, 100, (10, 56, 64)).astype(np.int16))
    rtstruct = write_rtstruct(
        folder / "RS.dcm", series, structures(series, rng), codes={"Ring": ("7771000", "SCT", "Left")}
    )
    return folder, rtstruct


@pytest.fixture(scope="module")
def oblique(tmp_path_factory) -> tuple[Path, Path]:
    """A series tilted 23 degrees about one axis and 9 about another, anisotropic voxels."""
    folder = tmp_path_factory.mktemp("oblique") / "series"
    rng = np.random.default_rng(15)
    a, b = np.radians(23), np.radians(9)
    row = np.array([np.cos(b), 0.0, np.sin(b)])
    column = np.array([0.0, np.cos(a), -np.sin(a)])
    column = column - row * (row @ column)  # orthogonal to the row direction
    series = write_series(
        folder,
        rng.integers(0, 50, (10, 56, 64)).astype(np.int16),
        spacing=(0.7, 1.1, 3.0),
        origin=(12.5, -40.25, -7.0),
        row=row,
        column=column,
    )
    return folder, write_rtstruct(folder / "RS.dcm", series, structures(series, rng))


@pytest.mark.parametrize("which", ["axial", "oblique"])
def test_synthetic_rois_match_the_independent_rasteriser(which, request, session):
    folder, rtstruct = request.getfixturevalue(which)
    case = Case.open(folder, rtstruct, session=session)  # the folder holds the series and its structure set
    got, expected = masks_of(case), reference_masks(folder, rtstruct)
    assert list(got) == ["Ring", "Pair", "Nested", "Jitter", "Between"]
    for name, mask in expected.items():
        assert mask.sum() > 30, name  # the reference itself found the ROI
        assert np.array_equal(got[name], mask), f"{name}: {int((got[name] != mask).sum())} voxels differ"
    ring, nested = got["Ring"], got["Nested"]
    assert not ring[4].any() and not ring[0].any() and ring[3].any()  # no interpolation into a skipped slice
    assert not ring[3, 14, 14]  # the hole
    assert nested[3, 41, 16] and not nested[3, 41, 22]  # the island inside the hole; the hole
    assert got["Between"][2].any() and got["Between"][7].any() and not got["Between"][3:7].any()


def test_names_colors_codes_and_values(axial, session):
    folder, rtstruct = axial
    case = Case.open(folder, rtstruct, session=session)
    info = {
        name: (color, terminology, value)
        for name, color, terminology, value in map(
            lambda sid: segment_info(case.segmentation, sid), segment_ids(case.segmentation)
        )
    }
    assert info["Ring"][0] == pytest.approx((1.0, 0.0, 0.0))
    assert info["Pair"][0] == pytest.approx((0.0, 128 / 255, 1.0))
    assert info["Ring"][1].type.value == "7771000" and info["Ring"][1].type.scheme == "SCT"
    assert [value for _, _, value in info.values()] == [1, 2, 3, 4, 5]  # ROI order


def test_export_every_roi_and_label_table_synonyms(axial, tmp_path, capsys):
    folder, rtstruct = axial
    out = tmp_path / "labels.nii.gz"
    assert main(["export", str(folder), str(rtstruct), "-o", str(out), "-q"]) == 0
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    expected = reference_masks(folder, rtstruct)
    for value, name in enumerate(["Ring", "Pair", "Nested", "Jitter", "Between"], start=1):
        assert np.array_equal(labels == value, expected[name]), name
    # two ROI names, one label: synonyms
    table = tmp_path / "labels.json"
    table.write_text(
        json.dumps({"labels": [{"name": "round things", "value": 7, "synonyms": ["ring", "JITTER"]}]}),
        encoding="utf-8",
    )
    merged = tmp_path / "merged.nrrd"
    argv = ["export", str(folder), str(rtstruct), "-o", str(merged), "--labels", str(table), "-q"]
    assert main([*argv, "--roi", "Ring", "--roi", "Jit*"]) == 0
    values = sitk.GetArrayFromImage(sitk.ReadImage(str(merged)))
    assert np.array_equal(values == 7, expected["Ring"] | expected["Jitter"]) and set(np.unique(values)) == {0, 7}
    # ROIs the table does not know are named, not guessed
    assert main(argv) == 1
    assert "['Pair', 'Nested', 'Between'] are not in the" in capsys.readouterr().err


def test_roi_pick_by_glob(axial, session):
    folder, rtstruct = axial
    case = Case.open(folder, rtstruct, session=session, rois=["*i*"])
    assert list(masks_of(case)) == ["Ring", "Pair", "Jitter"]
    with pytest.raises(SegTruthError, match=r"RS.dcm: has no ROI named 'Liver' \(ROIs: 'Ring', 'Pair'"):
        Case.open(folder, rtstruct, session=session, rois=["Liver"])


# -- bad structure sets ----------------------------------------------------------------------------------------------
def test_bad_structure_sets(axial, tmp_path, session):
    folder, rtstruct = axial
    dataset = pydicom.dcmread(rtstruct)
    dataset.ROIContourSequence[1].ContourSequence[0].ContourData = ["1", "2", "3", "4", "5", "6"]
    dataset.ROIContourSequence[1].ContourSequence[0].NumberOfContourPoints = 2
    short = tmp_path / "short.dcm"
    dataset.save_as(short)
    with pytest.raises(
        SegTruthError, match=r"short.dcm: ROI 'Pair' contour 1 has 2 point\(s\); a closed contour needs"
    ):
        Case.open(folder, short, session=session)
    other = pydicom.dcmread(rtstruct)
    item = other.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    item.SeriesInstanceUID = "1.2.3.4.5"
    elsewhere = tmp_path / "elsewhere.dcm"
    other.save_as(elsewhere)
    with pytest.raises(SegTruthError, match=r"elsewhere.dcm: refers to image series 1\.2\.3\.4\.5, not to the series"):
        Case.open(folder, elsewhere, session=session)
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(rtstruct.read_bytes()[: rtstruct.stat().st_size // 2])
    with pytest.raises(SegTruthError, match=r"truncated.dcm: is truncated \(the file ends inside a DICOM element\)\."):
        Case.open(folder, truncated, session=session)
    beyond = pydicom.dcmread(rtstruct)
    points = np.array([float(v) for v in beyond.ROIContourSequence[0].ContourSequence[0].ContourData]).reshape(-1, 3)
    points[:, 2] += 100.0
    beyond.ROIContourSequence[0].ContourSequence[0].ContourData = [f"{v:.6g}" for v in points.ravel()]
    far = tmp_path / "far.dcm"
    beyond.save_as(far)
    with pytest.raises(SegTruthError, match=r"far.dcm: ROI 'Ring' contour 1 lies 3\d\.\d slices beyond the image"):
        Case.open(folder, far, session=session)


def test_a_folder_with_a_structure_set_reads_as_its_series(axial, tmp_path, session):
    folder, rtstruct = axial
    alone = shutil.copytree(folder, tmp_path / "alone", ignore=shutil.ignore_patterns("RS.dcm"))
    with_rs = Case.open(folder, session=session).volume
    plain = Case.open(alone, session=session).volume
    from slicer.util import arrayFromVolume

    assert np.array_equal(arrayFromVolume(with_rs), arrayFromVolume(plain))
    assert read_structure_set(rtstruct).roi_names == ["Ring", "Pair", "Nested", "Jitter", "Between"]


# -- real structure sets -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def phantom() -> Path:
    return pycerr_phantom_cases()


@pytest.mark.parametrize("patient", [1, 2, 3, 4])
def test_real_chest_ct_gtv_matches_the_independent_rasteriser(phantom, patient, session):
    folder = phantom / f"pat_{patient}"
    (rtstruct,) = sorted(folder.glob("DCM_RS_*.dcm"))
    case = Case.open(folder, rtstruct, session=session)
    got, expected = masks_of(case), reference_masks(folder, rtstruct)
    assert list(got) == ["GTV-1"]
    differ = int((got["GTV-1"] != expected["GTV-1"]).sum())
    assert differ == 0, f"pat_{patient}: {differ} voxels differ"
    spacing = np.array(sitk_geometry(folder)[0].GetSpacing())
    volume_ml = float(got["GTV-1"].sum() * spacing.prod() / 1000)
    assert 5 < volume_ml < 400  # the phantom's lung tumours: 6-359 ml


def test_compare_a_structure_set_with_its_export(axial, tmp_path, capsys):
    folder, rtstruct = axial
    out = tmp_path / "labels.nii.gz"
    assert main(["export", str(folder), str(rtstruct), "-o", str(out), "--roi", "Ring", "-q"]) == 0
    table = tmp_path / "table.csv"
    table.write_text("name,value\nRing,1\n", encoding="utf-8")
    # the structure set is read on the series in its own folder
    argv = ["compare", str(rtstruct), str(out), "--roi", "Ring", "--labels", str(table)]
    assert main([*argv, "--csv", str(tmp_path / "c.csv")]) == 0
    header, row = (tmp_path / "c.csv").read_text(encoding="utf-8").splitlines()
    fields = dict(zip(header.split(","), row.split(",")))
    assert (fields["label"], float(fields["dice"]), int(fields["voxels_a"])) == ("Ring", 1.0, int(fields["voxels_b"]))
    assert int(fields["voxels_a"]) == int(reference_masks(folder, rtstruct)["Ring"].sum())
    alone = tmp_path / "RS.dcm"
    shutil.copy(rtstruct, alone)
    capsys.readouterr()
    assert main(["compare", str(alone), str(out), "--roi", "Ring", "--labels", str(table)]) == 1
    assert "has no grid of its own; give its image series with --image" in capsys.readouterr().err
    assert main(["compare", str(alone), str(out), "--roi", "Ring", "--labels", str(table), "--image", str(folder)]) == 0
