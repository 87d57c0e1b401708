"""QC: the HTML report of an exported nnU-Net dataset, a label shifted 5 mm that nnU-Net's checker lets through,
empty labels, per-case pictures, and the progress bar."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
from dataset_support import run

from SegTruthLogic import Session
from SegTruthLogic.core.atomic import FOLDER_MARK
from SegTruthLogic.core.progress import ProgressBar
from SegTruthLogic.dataset.qc import read_png
from SegTruthLogic.dataset.report import dataset_report


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """The sample cases (plain, cropped NIfTI, left-handed) exported to nnU-Net with a report, as the README does."""
    folder = tmp_path_factory.mktemp("report")
    assert run("dataset", "sample", folder / "cases") == 0
    assert run("dataset", "nnunet", folder / "cases", "-o", folder / "raw", "--name", "Chest", "--id", 501,
               "--report", folder / "report.html", "-q") == 0  # fmt: skip
    return folder, folder / "raw" / "Dataset501_Chest"


def images(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_report_of_the_export(dataset):
    folder, _ = dataset
    page = (folder / "report.html").read_text()
    assert "Dataset501_Chest (nnU-Net): dataset report" in page
    assert "3 cases (3 labelled), 7 labels" in page and "No problems found" in page
    assert page.count("same as image") == 3
    assert "LAS (left-handed)" in page  # chest_003 is stored left-handed, and exported so
    assert "right lung" in page and "3,198.15 ml" in page
    pictures = images(page)
    assert len(pictures) == 6 and all(p.startswith(b"\x89PNG") for p in pictures)
    assert 'src="http' not in page and "<link" not in page and "<script" not in page  # self-contained


def test_shifted_label_passes_nnunet_but_not_the_report(dataset, tmp_path):
    _, exported = dataset
    broken = tmp_path / exported.name
    shutil.copytree(exported, broken)
    path = broken / "labelsTr" / "chest_002.nii.gz"
    label = sitk.ReadImage(str(path))
    label.SetOrigin(
        tuple(float(v) for v in np.add(label.GetOrigin(), (0.0, 0.0, 5.0)))
    )  # 5 mm along z: same shape, spacing
    sitk.WriteImage(label, str(path), useCompression=True)
    values = sitk.GetArrayFromImage(sitk.ReadImage(str(broken / "labelsTr" / "chest_001.nii.gz")))
    values[values == 2] = 0  # no cervical vertebral column in chest_001
    emptied = sitk.GetImageFromArray(values)
    emptied.CopyInformation(sitk.ReadImage(str(broken / "labelsTr" / "chest_001.nii.gz")))
    sitk.WriteImage(emptied, str(broken / "labelsTr" / "chest_001.nii.gz"), useCompression=True)

    pytest.importorskip("nnunetv2")
    from SegTruthLogic.dataset.nnunet import verify_with_nnunet

    passed, output = verify_with_nnunet(broken)
    assert passed and "Origin mismatch" in output  # only a warning for nnU-Net

    cases = dataset_report(Session.new_headless(), broken, tmp_path / "broken.html", tmp_path / "pictures")
    by_case = {case.case: case for case in cases}
    assert by_case["chest_002"].label_grid.startswith("MISMATCH: differs in origin (by 5 mm)")
    assert by_case["chest_001"].empty == ["cervical vertebral column"]
    page = (tmp_path / "broken.html").read_text()
    assert "Image/label grid mismatch: chest_002" in page and "1 problem(s)" in page
    assert sorted(p.name for p in (tmp_path / "pictures").iterdir() if p.name != FOLDER_MARK) == [
        "chest_001.png",
        "chest_002.png",
        "chest_003.png",
    ]
    picture = read_png(tmp_path / "pictures" / "chest_001.png")
    assert picture.shape[1] == 170 + 3 * 128 and picture.shape[0] == 26 + 6 * 128  # six labels left, one row each


def test_report_of_a_manifest_and_a_datalist(dataset, tmp_path):
    folder, _ = dataset
    assert run("report", folder / "cases", "-o", tmp_path / "cases.html", "-q") == 0
    page = (tmp_path / "cases.html").read_text()
    assert "No problems found" in page and page.count("same as image") == 3
    assert run("dataset", "monai", folder / "cases", "-o", tmp_path / "chest.json", "--validation", 0.34, "-q") == 0
    assert run("report", tmp_path / "chest.json", "-o", tmp_path / "monai.html", "-q") == 0
    page = (tmp_path / "monai.html").read_text()
    assert "chest.json (MONAI datalist)" in page and "(validation)" in page
    assert json.loads((tmp_path / "chest.json").read_text())["labels"]["6"] == "left lung"


def test_progress_bar_shows_time_left():
    stream = io.StringIO()
    bar = ProgressBar(stream)
    bar(0.0, "case a (1/2)")
    bar(0.5, "case b (2/2)")
    bar(1.0, "2 cases written")
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[........................]   0%  ETA --:--  case a")
    assert re.match(r"\[#{12}\.{12}\]  50%  ETA 0:0\d  case b", lines[1])
    assert lines[2].startswith("[########################] 100%  done in 0:0")
