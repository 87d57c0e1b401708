"""Short trainings on other projects' real data, installed at test time and never committed (their licences
differ): pycerr's four lung-tumour CTs with RTSTRUCTs (read straight from the DICOM tree), pyradiomics' lesion
cases (MR and CT, from a manifest), TPTBox's CT and MR spine crops (an nnU-Net raw folder). Each loss falls, and
each model segments a case of its dataset on that case's exact grid."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from data_sources import pycerr_phantom_cases, pyradiomics_lesion_cases, tptbox_spine_cases
from training_support import write_nnunet

from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.core.labels import LabelTable
from SegTruthLogic.inference.catalog import load_model
from SegTruthLogic.inference.engine import predict
from SegTruthLogic.training import train

# CI-sized: a few batches of small 3D patches; what is tested is that learning happens on this data, not how well.
SHORT = {"epochs": 4, "iterations": 3, "base_filters": 4, "patch_budget": 32**3, "batch_size": 2, "device": "cpu"}
LESION = {"labels": [{"name": "lesion", "value": 1, "color": "#e8a33d"}]}
VERTEBRA = {"labels": [{"name": "vertebra", "value": 1, "color": "#e8dcc0", "category": "SCT^123037004^Anatomical Structure",
                        "type": "SCT^51282000^Spine"}]}  # fmt: skip


def _losses(result) -> list[float]:
    return [round(epoch["loss"], 4) for epoch in result.history]


def _segments_on_its_grid(model: Path, image_path: Path) -> np.ndarray:
    image = sitk.ReadImage(str(image_path))
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    labels = predict(load_model(model), [array], Grid.from_sitk(image), device="cpu").labels
    assert labels.shape == array.shape  # (k, j, i) of the file: the grid it was read on
    return labels


def test_pycerr_lung_tumours_from_the_dicom_tree(tmp_path):
    tree = pycerr_phantom_cases()
    result = train(tree, tmp_path / "gtv", labels=["GTV-1"], seed=4, **SHORT)
    losses = _losses(result)
    assert len(result.history) == 4 and losses[-1] < losses[0], losses
    record = json.loads((tmp_path / "gtv" / "training.json").read_text(encoding="utf-8"))
    assert len(record["cases"]) == 4  # each annotated series of the tree is a case
    card = load_model(tmp_path / "gtv").card
    assert [label.name for label in card.labels] == ["GTV-1"]
    assert card.modality == ("CT",)  # from the series' own header: CT normalisation


def test_pyradiomics_lesions_from_a_manifest(tmp_path):
    data = pyradiomics_lesion_cases()
    lines = ["case,image,segmentation"]
    lines += [
        f"{case},{data}/{case}_image.nrrd,{data}/{case}_label.nrrd" for case in ("brain1", "brain2", "lung1", "lung2")
    ]
    (tmp_path / "cases.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "lesion.json").write_text(json.dumps(LESION), encoding="utf-8")
    result = train(tmp_path / "cases.csv", tmp_path / "lesions", table=LabelTable.read(tmp_path / "lesion.json"),
                   seed=6, **SHORT)  # fmt: skip
    losses = _losses(result)
    assert losses[-1] < losses[0], losses
    labels = _segments_on_its_grid(tmp_path / "lesions", data / "breast1_image.nrrd")  # a case it never saw
    assert set(np.unique(labels)) <= {0, 1}


def test_tptbox_spine_crops_from_an_nnunet_folder(tmp_path):
    cases = []
    for case, (image_path, mask_path) in tptbox_spine_cases().items():
        image, mask = sitk.ReadImage(str(image_path)), sitk.GetArrayFromImage(sitk.ReadImage(str(mask_path)))
        vertebrae = ((mask > 0) & (mask < 100)).astype(np.uint8)  # 100 + n, 200 + n: discs and endplates
        cases.append((case, image, vertebrae))
    dataset = write_nnunet(
        tmp_path / "Dataset010_Spine", cases, labels={"background": 0, "vertebra": 1}, channel_names={"0": "MR"},
        table=VERTEBRA,
    )  # fmt: skip
    # Two small crops: more (cheap) batches than the others, or the loss of 3 random patches is noise.
    result = train(dataset, tmp_path / "spine", seed=8, **{**SHORT, "epochs": 8, "iterations": 6})
    losses = _losses(result)
    assert losses[-1] < losses[0], losses
    ct_image = tptbox_spine_cases()["ct"][0]
    shutil.copyfile(ct_image, tmp_path / "ct.nii.gz")
    labels = _segments_on_its_grid(tmp_path / "spine", tmp_path / "ct.nii.gz")
    assert set(np.unique(labels)) <= {0, 1}
