"""The DICOM tree index and ``segtruth info`` on a tree: every series from headers read once, no pixel read.

A tree of synthetic studies (CT series, a structure set and a SEG referring to them, a note file, a series with
a missing slice) and the four pycerr cases are listed; the index must find each series with its size, spacing
and UID, pair the structure sets with the series they refer to, read each header once (a second listing reads
no file), say in one sentence where a slice is missing, and name a truncated slice.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from data_sources import pycerr_phantom_cases
from dicom_synthetic import write_rtstruct, write_series

from SegTruthLogic import SegTruthError
from SegTruthLogic.scene import dicom_index
from SegTruthLogic.scene.dicom_index import index_tree, referring

pytest.importorskip("pydicom")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("tree")
    ct = write_series(root / "patient1" / "ct", np.zeros((6, 20, 24), np.int16), spacing=(0.5, 0.6, 2.0))
    contour = ct.lps(np.array([[2.2, 3.1, 2], [12.7, 3.3, 2], [11.9, 14.6, 2]]))
    rtstruct = write_rtstruct(root / "patient1" / "ct" / "RS.dcm", ct, [("Liver", (200, 0, 0), [contour])])
    gap = write_series(root / "patient2" / "mr", np.zeros((6, 16, 16), np.int16), description="gap", skip=(3,))
    (root / "patient2" / "notes.txt").write_text("not DICOM\n", encoding="utf-8")
    (root / "patient2" / "README").write_text("not DICOM either\n", encoding="utf-8")
    return {"root": root, "ct": ct, "rtstruct": rtstruct, "gap": gap}


def test_index_finds_series_and_pairs_structure_sets(tree):
    entries = index_tree(tree["root"])
    by_uid = {e.uid: e for e in entries}
    ct = by_uid[tree["ct"].series_uid]
    assert ct.is_image and ct.size() == (24, 20, 6) and ct.spacing() == pytest.approx((0.5, 0.6, 2.0))
    assert [p.name for p in ct.files] == [f"CT_{k:04d}.dcm" for k in range(6)]
    (structure_set,) = referring(entries, ct)
    assert structure_set.modality == "RTSTRUCT" and structure_set.first.names == ("Liver",)
    gap = by_uid[tree["gap"].series_uid]
    assert gap.size() == (16, 16, 5)
    assert gap.spacing_problem() == (
        "slice spacing is irregular: a gap of 5 mm between the slices at 35 and 40 mm along the normal where 2.5 mm "
        "is usual (1 such gap), so a slice is missing or out of place."
    )
    assert len(entries) == 3  # the notes are no series


def test_each_header_is_read_once(tree, monkeypatch):
    index_tree(tree["root"])
    calls = []
    original = dicom_index._read
    monkeypatch.setattr(dicom_index, "_read", lambda *a: calls.append(a[0]) or original(*a))
    index_tree(tree["root"])
    assert calls == []
    tree["rtstruct"].touch()  # a changed file is read again
    index_tree(tree["root"])
    assert calls == [tree["rtstruct"]]


def test_a_truncated_slice_is_named(tree, tmp_path):
    folder = tmp_path / "series"
    write_series(folder, np.zeros((4, 16, 16), np.int16))
    target = folder / "CT_0002.dcm"
    target.write_bytes(target.read_bytes()[:-100])
    with pytest.raises(
        SegTruthError, match=r"CT_0002.dcm: is not a readable DICOM image .*pixel data is 412 of 512 bytes\."
    ):
        index_tree(folder)


def run(*argv: object) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "SegTruthLogic", *map(str, argv)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def test_info_lists_a_tree_without_loading_slicer(tree):
    result = run("info", tree["root"], "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert listing["kind"] == "DICOM tree"
    by_uid = {s["series_uid"]: s for s in listing["series"]}
    ct, gap = by_uid[tree["ct"].series_uid], by_uid[tree["gap"].series_uid]
    assert (ct["modality"], ct["size"], ct["spacing"], ct["folders"]) == (
        "CT",
        [24, 20, 6],
        [0.5, 0.6, 2.0],
        ["patient1/ct"],
    )
    assert gap["note"].startswith("slice spacing is irregular: a gap of 5 mm")
    (rs,) = [s for s in listing["series"] if s["modality"] == "RTSTRUCT"]
    assert rs["names"] == ["Liver"]
    assert rs["refers_to"] == [{"series_uid": tree["ct"].series_uid, "present": True, "folders": ["patient1/ct"]}]
    text = run("info", tree["root"]).stdout
    assert "ROIs (1): Liver" in text and "24 x 20 x 6 voxels, 0.5 x 0.6 x 2 mm" in text
    assert "note: slice spacing is irregular" in text
    # without Slicer: the listing module must not import it
    probe = run_python(
        "import sys; from SegTruthLogic.scene.dicom_listing import describe_tree; "
        f"describe_tree({str(tree['root'])!r}); print('slicer' in sys.modules, 'vtk' in sys.modules)"
    )
    assert probe == "False False"


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_info_of_a_structure_set_file(tree):
    result = run("info", tree["rtstruct"])
    assert result.returncode == 0, result.stderr
    assert "RTSTRUCT" in result.stdout and "ROIs (1): Liver" in result.stdout and "(in .)" in result.stdout


def test_info_on_the_pycerr_cases():
    root = pycerr_phantom_cases()
    entries = index_tree(root)
    images = [e for e in entries if e.is_image]
    assert len(images) == 4 and len(entries) == 8
    for image in images:
        (structure_set,) = referring(entries, image)
        assert structure_set.first.names == ("GTV-1",)
        assert structure_set.folders == image.folders
        assert image.spacing() == pytest.approx((0.977, 0.977, 3.0), abs=1e-3)
        assert image.spacing_problem() is None
    assert sorted(e.size()[2] for e in images) == [41, 46, 56, 60]


def test_an_empty_tree_is_one_sentence(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("info", tmp_path / "empty")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"segtruth: error: {tmp_path / 'empty'}: holds no DICOM files."]


def test_jittered_positions_load_without_itks_raw_warning(tmp_path):
    """Rounded slice positions (a few hundredths of a mm) load; ITK's "Non uniform sampling" text is not shown."""
    import pydicom

    folder = tmp_path / "jitter"
    write_series(folder, np.zeros((6, 16, 16), np.int16))
    for path, offset in zip(sorted(folder.glob("*.dcm")), [0, 0.04, -0.05, 0.06, 0, 0.03]):
        dataset = pydicom.dcmread(path)
        dataset.ImagePositionPatient = [
            *map(float, dataset.ImagePositionPatient[:2]),
            dataset.ImagePositionPatient[2] + offset,
        ]
        dataset.save_as(path)
    assert index_tree(folder)[0].spacing_problem() is None
    result = run("threshold", folder, "--range", "0", "10", "-o", tmp_path / "out.nii.gz", "-q")
    assert result.returncode == 0, result.stderr
    assert "Non uniform sampling" not in result.stderr and "WARNING" not in result.stderr
