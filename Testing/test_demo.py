"""The README's demo and example recipe on the real chest CT, scored against slicerio's reference."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import slicerio

from SegTruthLogic.cli import main
from SegTruthLogic.scene.case import Case
from SegTruthLogic.scene.session import RESOURCES
from SegTruthLogic.tools.islands import remove_small_islands
from SegTruthLogic.tools.threshold import threshold
from SegTruthLogic.workflow.demo import run_demo
from SegTruthLogic.workflow.recipe import Recipe


def test_demo_rebuilds_lungs_and_bone(tmp_path, ct_chest, capsys):
    scores = run_demo(tmp_path)
    assert scores["right lung"] >= 0.97
    assert scores["left lung"] >= 0.97
    assert scores["bone"] >= 0.9
    image = sitk.ReadImage(str(ct_chest[0]))
    labels = sitk.ReadImage(str(tmp_path / "chest_labels.nii.gz"))
    assert labels.GetSize() == image.GetSize()
    assert np.allclose(labels.GetOrigin(), image.GetOrigin(), atol=1e-4)
    assert np.allclose(labels.GetSpacing(), image.GetSpacing(), atol=1e-6)
    assert np.allclose(labels.GetDirection(), image.GetDirection(), atol=1e-6)
    assert set(np.unique(sitk.GetArrayFromImage(labels))) == {0, 1, 2, 3}
    segmentation = slicerio.read_segmentation(str(tmp_path / "chest.seg.nrrd"))
    values = {s["name"]: s["labelValue"] for s in segmentation["segments"]}
    assert values == {"right lung": 1, "left lung": 2, "bone": 3}
    assert "Dice against" in capsys.readouterr().out


def test_example_recipe_on_the_chest_ct(tmp_path, ct_chest):
    recipe = RESOURCES / "Recipes" / "ct_bone.yaml"
    assert main(["run", str(recipe), str(ct_chest[0]), "-o", str(tmp_path), "-q"]) == 0
    bone = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "bone.nii.gz")))
    ct = sitk.GetArrayFromImage(sitk.ReadImage(str(ct_chest[0])))
    assert set(np.unique(bone)) == {0, 3}
    assert ((ct[bone == 3] >= 100) & (ct[bone == 3] <= 3071)).all()
    # The recipe does exactly what the same calls do from Python.
    case = Case.open(ct_chest[0], table=Recipe.read(recipe).table)
    threshold(case.session, case.segmentation, case.volume, "bone", 100, 3071)
    removed = remove_small_islands(case.session, case.segmentation, case.volume, "bone", min_mm3=1000)
    assert removed > 0
    case.save(tmp_path / "python.nii.gz")
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "python.nii.gz"))), bone)
