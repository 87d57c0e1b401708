"""Datasets for the trainer's tests, made from the real chest CT: nnU-Net raw folders with lungs labelled."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.core.sample_data import ct_chest_paths
from SegTruthLogic.dataset.cases import read_case
from SegTruthLogic.dataset.manifest import CaseEntry
from SegTruthLogic.scene.session import Session

RIGHT_LUNG, LEFT_LUNG = 5, 6  # values in the sample CT's segmentation
TABLE = {
    "labels": [
        {"name": "right lung", "value": 1, "color": "#c9d4e8", "category": "SCT^123037004^Anatomical Structure",
         "type": "SCT^3341006^Right lung"},
        {"name": "left lung", "value": 2, "color": "#8ea9d6", "category": "SCT^123037004^Anatomical Structure",
         "type": "SCT^44029006^Left lung"},
    ]
}  # fmt: skip


def chest_lungs() -> tuple[sitk.Image, np.ndarray]:
    """The sample CT as read by ITK and its lungs (1 right, 2 left) on the CT file's own grid (k, j, i)."""
    image_path, segmentation_path = ct_chest_paths()
    case = read_case(Session.new_headless(), CaseEntry("chest", (image_path,), segmentation_path))
    image = sitk.ReadImage(str(image_path))
    assert Grid.from_sitk(image).same_as(case.grid)
    lungs = np.zeros(case.labels.shape, np.uint8)
    lungs[case.labels == RIGHT_LUNG] = 1
    lungs[case.labels == LEFT_LUNG] = 2
    return image, lungs


def write_nnunet(
    folder: Path,
    cases: Sequence[tuple[str, sitk.Image, np.ndarray]],
    labels: dict | None = None,
    channel_names: dict | None = None,
    table: dict | None = TABLE,
) -> Path:
    """An nnU-Net v2 raw dataset: dataset.json, labels.json (SegTruth's table) and the cases as NIfTI."""
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    for case, image, array in cases:
        sitk.WriteImage(image, str(folder / "imagesTr" / f"{case}_0000.nii.gz"))
        label = sitk.GetImageFromArray(array.astype(np.uint8))
        label.CopyInformation(image)
        sitk.WriteImage(label, str(folder / "labelsTr" / f"{case}.nii.gz"))
    content = {
        "channel_names": channel_names or {"0": "CT"},
        "labels": labels or {"background": 0, "right lung": 1, "left lung": 2},
        "numTraining": len(cases),
        "file_ending": ".nii.gz",
    }
    (folder / "dataset.json").write_text(json.dumps(content, indent=2), encoding="utf-8")
    if table is not None:
        (folder / "labels.json").write_text(json.dumps(table, indent=2), encoding="utf-8")
    return folder


def keep_slices(lungs: np.ndarray, slices: Sequence[int]) -> np.ndarray:
    """Only the given axial slices (the CT's k axis points superior) keep their labels."""
    sparse = np.zeros_like(lungs)
    sparse[list(slices)] = lungs[list(slices)]
    return sparse


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum() + b.sum())
    return 2 * int((a & b).sum()) / total if total else 1.0
