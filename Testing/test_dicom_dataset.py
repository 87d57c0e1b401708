"""A DICOM tree to an nnU-Net dataset: image series paired with the structure sets that refer to them.

The four pycerr chest CTs (folders pat_1..pat_4, each a CT series and its RTSTRUCT) become four training
cases whose labels equal the independent rasteriser's masks on their images' grids; a synthetic tree with
synonyms in the label table and ROIs the table does not know shows the names reported and left out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from data_sources import pycerr_phantom_cases
from dicom_synthetic import polygon, write_rtstruct, write_series
from test_rtstruct import reference_masks

from SegTruthLogic.cli import main
from SegTruthLogic.core.geometry import Grid

pytest.importorskip("pydicom")


def test_pycerr_tree_to_nnunet(tmp_path, capsys):
    root = pycerr_phantom_cases()
    table = tmp_path / "labels.json"
    table.write_text(json.dumps({"labels": [{"name": "tumour", "value": 1, "synonyms": ["GTV-1"]}]}), encoding="utf-8")
    argv = ["dataset", "nnunet", str(root), "-o", str(tmp_path / "raw"), "--name", "Lung", "--id", "14"]
    assert main([*argv, "--labels", str(table), "-q"]) == 0
    assert "wrote" in capsys.readouterr().out
    folder = tmp_path / "raw" / "Dataset014_Lung"
    dataset = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    assert dataset["labels"] == {"background": 0, "tumour": 1} and dataset["channel_names"] == {"0": "CT"}
    assert dataset["numTraining"] == 4
    for patient in range(1, 5):
        case = root / f"pat_{patient}"
        (rtstruct,) = case.glob("DCM_RS_*.dcm")
        image = sitk.ReadImage(str(folder / "imagesTr" / f"pat_{patient}_0000.nii.gz"))
        labels = sitk.ReadImage(str(folder / "labelsTr" / f"pat_{patient}.nii.gz"))
        assert Grid.from_sitk(labels).same_as(Grid.from_sitk(image))  # each label on its image's voxels
        expected = reference_masks(case, rtstruct)["GTV-1"]
        assert np.array_equal(sitk.GetArrayFromImage(labels) == 1, expected), patient


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """Two patients, their femur ROIs named differently, each with an ROI the table does not know."""
    root = tmp_path_factory.mktemp("tree") / "study"
    rng = np.random.default_rng(7)
    for patient, (femur, other) in enumerate([("Femur_L", "BODY"), ("femur left", "Couch")], start=1):
        series = write_series(root / f"patient{patient}" / "CT", np.zeros((5, 30, 30), np.int16))
        femur_contours = [series.lps(np.c_[polygon((10.3, 11.6), 5.2, 9, rng), np.full(9, k)]) for k in (1, 2, 3)]
        other_contours = [series.lps(np.c_[polygon((21.4, 20.2), 4.1, 7, rng), np.full(7, 2)])]
        write_rtstruct(
            root / f"patient{patient}" / "CT" / "RS.dcm",
            series,
            [(femur, (0, 200, 0), femur_contours), (other, None, other_contours)],
        )
    write_series(root / "patient3" / "MR", np.zeros((4, 8, 8), np.int16))  # no annotation: not a case
    return root


def test_synonyms_map_and_unknown_names_are_reported(tree, tmp_path, capsys):
    table = tmp_path / "labels.csv"
    table.write_text("name,value,synonyms\nFemur_L,1,femur left|LFemur\n", encoding="utf-8")
    argv = ["dataset", "nnunet", str(tree), "-o", str(tmp_path / "raw"), "--name", "Femur", "--id", "15"]
    assert main([*argv, "--labels", str(table), "-q"]) == 0
    out = capsys.readouterr().out
    assert "note: names not in the label table, left out: 'BODY' (patient1_CT); 'Couch' (patient2_CT)" in out
    assert "note: 1 image series without an RTSTRUCT or SEG were not used" in out
    folder = tmp_path / "raw" / "Dataset015_Femur"
    for patient in (1, 2):
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labelsTr" / f"patient{patient}_CT.nii.gz")))
        case = tree / f"patient{patient}" / "CT"
        femur = "Femur_L" if patient == 1 else "femur left"
        assert np.array_equal(labels == 1, reference_masks(case, case / "RS.dcm")[femur])
        assert set(np.unique(labels)) == {0, 1}


def test_an_annotation_of_a_series_not_in_the_tree(tree, tmp_path, capsys):
    import pydicom

    lost = pydicom.dcmread(tree / "patient1" / "CT" / "RS.dcm")
    item = lost.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    item.SeriesInstanceUID = "1.2.3.999"
    extra = tree.parent / "extra"
    (extra / "a").mkdir(parents=True)
    lost.save_as(extra / "a" / "RS.dcm")
    argv = ["dataset", "nnunet", str(extra), "-o", str(tmp_path / "raw"), "--name", "X", "--id", "16", "-q"]
    assert main(argv) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [
        f"segtruth: error: {extra / 'a' / 'RS.dcm'}: refers to image series 1.2.3.999, which is not in {extra}; "
        "add that series or remove the file."
    ]
    assert not (tmp_path / "raw").exists()


def test_a_manifest_may_name_structure_sets(tmp_path, capsys):
    root = pycerr_phantom_cases()
    (rtstruct,) = (root / "pat_2").glob("DCM_RS_*.dcm")
    manifest = tmp_path / "cases.csv"
    manifest.write_text(f"case,image,segmentation\nlung2,{root / 'pat_2'},{rtstruct}\n", encoding="utf-8")
    out = tmp_path / "slices"
    assert main(["slices", str(root / "pat_2"), str(rtstruct), "-o", str(out), "-q"]) == 0
    assert list(out.rglob("*.png"))
    argv = ["dataset", "nnunet", str(manifest), "-o", str(tmp_path / "raw"), "--name", "One", "--id", "17", "-q"]
    assert main(argv) == 0
    labels = sitk.GetArrayFromImage(
        sitk.ReadImage(str(tmp_path / "raw" / "Dataset017_One" / "labelsTr" / "lung2.nii.gz"))
    )
    assert np.array_equal(labels == 1, reference_masks(root / "pat_2", rtstruct)["GTV-1"])


def test_the_readme_dicom_example_runs_as_written(tmp_path):
    """README's DICOM tree example, on the pycerr cases as its ``study/``: the output it shows, and its label table."""
    import subprocess

    from test_readme_examples import blocks, command, run, shown_output

    (tmp_path / "study").symlink_to(pycerr_phantom_cases())
    printf = next(
        line.strip()
        for kind, text in blocks()
        if kind == "bash"
        for line in text.splitlines()
        if line.strip().startswith("printf 'name,value,color,synonyms")
    )
    subprocess.run(printf, shell=True, cwd=tmp_path, check=True)  # the README's label table, as written
    assert (tmp_path / "labels.csv").read_text(encoding="utf-8").splitlines()[1] == "tumour,1,#e04030,GTV-1|GTV"
    listing = run(command("segtruth info study/"), tmp_path)
    assert listing.stdout.count("ROIs (1): GTV-1") == 4
    nnunet = run(command("segtruth dataset nnunet study/"), tmp_path, timeout=600)
    assert nnunet.stdout.strip().splitlines() == shown_output("segtruth dataset nnunet study/")
