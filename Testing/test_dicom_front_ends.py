"""RTSTRUCT cases through every front end: ``dataset monai TREE``, ``--roi`` on the commands, the web case list.

A synthetic tree of two CT series, each with a structure set holding "Femur_L" and "BODY" (apart, so one
labelmap holds both), plus an unannotated series. Every mask is checked against the independent rasteriser
of Testing/test_rtstruct.py on the series' own voxels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from dicom_synthetic import polygon, write_rtstruct, write_series
from test_rtstruct import reference_masks

from SegTruthLogic.cli import main

pydicom = pytest.importorskip("pydicom")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("front") / "study"
    rng = np.random.default_rng(11)
    for patient in (1, 2):
        series = write_series(root / f"patient{patient}" / "CT", np.zeros((5, 30, 30), np.int16))
        femur = [series.lps(np.c_[polygon((9.3, 10.6), 5.2, 9, rng), np.full(9, k)]) for k in (1, 2, 3)]
        body = [series.lps(np.c_[polygon((21.4, 20.2), 4.1, 7, rng), np.full(7, k)]) for k in (2, 3)]
        write_rtstruct(
            root / f"patient{patient}" / "CT" / "RS.dcm",
            series,
            [("Femur_L", (0, 200, 0), femur), ("BODY", None, body)],
        )
    write_series(root / "patient3" / "MR", np.zeros((4, 8, 8), np.int16))  # no annotation: not a case
    return root


def _reference(tree: Path, patient: int) -> dict[str, np.ndarray]:
    folder = tree / f"patient{patient}" / "CT"
    masks = reference_masks(folder, folder / "RS.dcm")
    assert masks["Femur_L"].sum() > 20 and masks["BODY"].sum() > 10 and not np.any(masks["Femur_L"] & masks["BODY"])
    return masks


def test_dataset_monai_reads_a_dicom_tree(tree, tmp_path, capsys):
    table = tmp_path / "labels.csv"
    table.write_text("name,value,synonyms\nfemur,1,Femur_L\n", encoding="utf-8")
    datalist = tmp_path / "data.json"
    assert main(["dataset", "monai", str(tree), "-o", str(datalist), "--labels", str(table), "-q"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {datalist} (2 cases)" in out
    assert "note: names not in the label table, left out: 'BODY' (patient1_CT, patient2_CT)" in out
    data = json.loads(datalist.read_text(encoding="utf-8"))
    items = data["training"] + data.get("validation", [])
    assert len(items) == 2
    for item in items:
        patient = 1 if "patient1" in item["label"] else 2
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(datalist.parent / item["label"])))
        assert np.array_equal(labels, _reference(tree, patient)["Femur_L"].astype(labels.dtype))


def test_roi_picks_structures_on_slices_report_crop_and_rtstruct(tree, tmp_path):
    from SegTruthLogic.dataset.report import dataset_report
    from SegTruthLogic.scene.session import Session

    series, rtstruct = tree / "patient1" / "CT", tree / "patient1" / "CT" / "RS.dcm"
    masks = _reference(tree, 1)

    slices = tmp_path / "slices"
    assert main(["slices", str(series), str(rtstruct), "-o", str(slices), "--format", "npz", "--roi", "B*", "-q"]) == 0
    total = sum(int(np.load(path)["mask"].astype(bool).sum()) for path in slices.rglob("*.npz"))
    assert total == int(masks["BODY"].sum())

    image, mask = tmp_path / "crop.nii.gz", tmp_path / "crop_mask.nii.gz"
    argv = ["crop", str(series), str(rtstruct), "-o", str(image), "-m", str(mask), "--margin", "0"]
    assert main([*argv, "--structure", "Femur_L"]) == 0
    cropped = sitk.GetArrayFromImage(sitk.ReadImage(str(mask)))
    assert set(np.unique(cropped)) == {0, 1} and int((cropped == 1).sum()) == int(masks["Femur_L"].sum())
    k, j, i = np.nonzero(masks["Femur_L"])
    assert cropped.shape == tuple(int(np.ptp(a)) + 1 for a in (k, j, i))  # the femur's extent, not the BODY's

    cases = dataset_report(Session.create(), tree, tmp_path / "r.html", rois=["BODY"])
    assert [case.voxels for case in cases] == [{1: int(_reference(tree, p)["BODY"].sum())} for p in (1, 2)]
    assert all(not case.problems for case in cases)
    assert main(["report", str(tree), "-o", str(tmp_path / "r2.html"), "--roi", "Femur_L", "-q"]) == 0

    out = tmp_path / "body.dcm"
    assert main(["rtstruct", str(series), str(rtstruct), "-o", str(out), "--roi", "BODY"]) == 0
    assert [r.ROIName for r in pydicom.dcmread(out).StructureSetROISequence] == ["BODY"]


def test_an_unknown_roi_is_one_sentence(tree, tmp_path, capsys):
    series, rtstruct = tree / "patient1" / "CT", tree / "patient1" / "CT" / "RS.dcm"
    argv = ["slices", str(series), str(rtstruct), "-o", str(tmp_path / "s"), "--roi", "Bladder", "-q"]
    assert main(argv) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "has no ROI named 'Bladder'" in line and "'Femur_L', 'BODY'" in line
    assert not (tmp_path / "s").exists()


def _open_and_save(case) -> list[Path]:
    from SegTruthLogic.scene.segments import segment_ids
    from SegTruthLogic.web.workspace import Workspace

    ws = Workspace()
    ws.open_case(case)
    names = [ws.segmentation.GetSegmentation().GetSegment(s).GetName() for s in segment_ids(ws.segmentation)]
    assert names == ["Femur_L", "BODY"]
    return ws.save()


def test_the_web_serves_a_dicom_tree_and_saves_at_its_root(tree, tmp_path):
    import shutil

    from SegTruthLogic.dataset.dicom_tree import cases_from_dicom_tree
    from SegTruthLogic.web.cases import read_web_cases

    root = tmp_path / "served"
    shutil.copytree(tree, root)
    cases = read_web_cases(root)
    assert [c.case for c in cases] == ["patient1_CT", "patient2_CT", "patient3_MR"]
    one, unlabelled = cases[0], cases[2]
    assert unlabelled.image == root / "patient3" / "MR" and unlabelled.start_from() is None  # a series to label
    assert one.image == root / "patient1" / "CT" and one.start_from() == root / "patient1" / "CT" / "RS.dcm"
    assert one.seg_output == root / "patient1_CT.seg.nrrd"
    assert one.labelmap_output == root / "labels" / "patient1_CT.nii.gz"
    assert _open_and_save(one) == [one.seg_output, one.labelmap_output]
    masks = _reference(tree, 1)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(one.labelmap_output)))
    assert np.array_equal(labels, masks["Femur_L"] * 1 + masks["BODY"] * 2)  # the series' grid, ROI order
    dicom = sitk.ReadImage(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(root / "patient1" / "CT")))
    saved = sitk.ReadImage(str(one.labelmap_output))
    np.testing.assert_allclose(saved.GetOrigin(), dicom.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(saved.GetSpacing(), dicom.GetSpacing(), atol=1e-6)
    assert sorted(p.name for p in (root / "patient1" / "CT").iterdir()) == [f"CT_{k:04d}.dcm" for k in range(5)] + [
        "RS.dcm"
    ]  # nothing written among the DICOM files

    again = read_web_cases(root)  # still a tree after the save, and the save is where the case starts now
    assert again[0].start_from() == one.seg_output and again[1].start_from() == root / "patient2" / "CT" / "RS.dcm"
    entries = cases_from_dicom_tree(root).entries  # the datasets made from the tree take the edit too
    assert entries[0].segmentation == one.seg_output and entries[1].segmentation.name == "RS.dcm"
    assert len(entries) == 2  # a dataset leaves the unannotated series out

    from SegTruthLogic.web.workspace import Workspace

    ws = Workspace()
    ws.open_case(unlabelled)  # opens on the MR series' grid with no segments
    assert ws.volume.GetImageData().GetDimensions() == (8, 8, 4)
    assert ws.segmentation.GetSegmentation().GetNumberOfSegments() == 0


def test_the_web_serves_one_series_folder_with_its_structure_set(tree, tmp_path):
    import shutil

    from SegTruthLogic.web.cases import read_web_cases

    folder = tmp_path / "CT"
    shutil.copytree(tree / "patient1" / "CT", folder)
    (case,) = read_web_cases(folder)
    assert case.image == folder and case.start_from() == folder / "RS.dcm"
    assert case.seg_output == folder / "SYN001.seg.nrrd"  # named after the patient; not a DICOM file
    _open_and_save(case)
    masks = _reference(tree, 1)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(case.labelmap_output)))
    assert np.array_equal(labels, masks["Femur_L"] * 1 + masks["BODY"] * 2)
    (again,) = read_web_cases(folder)  # the series folder still reads as the series, now from the save
    assert again.start_from() == case.seg_output
    _open_and_save(again)
    (bare,) = read_web_cases(tree / "patient3" / "MR")  # a series folder without annotations: a case to label
    assert bare.image == tree / "patient3" / "MR" and bare.start_from() is None
