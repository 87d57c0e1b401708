"""Cases for the batch tests: small two-box volumes whose right labels are known, plus broken ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from SegTruthLogic.batch.commands import main as batch_main

RECIPE = """
labels:
  - {name: dim, value: 3}
  - {name: bright, value: 9}
steps:
  - threshold: {segment: dim, low: 50, high: 150}
  - threshold: {segment: bright, low: 150, high: 250, options: {editable_area: outside_all, overwrite: none}}
  - keep_largest_island: {segment: bright}
outputs: [labels.nii.gz, labels.seg.nrrd]
"""


def box_volume(index: int, shape=(16, 20, 24)) -> np.ndarray:
    """Box 'dim' (value 100) whose size depends on the case, box 'bright' (200) and a bright speck to drop."""
    array = np.zeros(shape, dtype=np.int16)
    array[2:6, 2:8, 2 : 4 + index % 8] = 100
    array[8:14, 10:18, 12:22] = 200
    array[0, -1, -1] = 200  # an island that keep_largest_island removes
    return array


def expected_labels(index: int, shape=(16, 20, 24)) -> np.ndarray:
    array = box_volume(index, shape)
    labels = np.zeros(shape, dtype=np.uint8)
    labels[array == 100] = 3
    labels[array == 200] = 9
    labels[0, -1, -1] = 0
    return labels


def write_case(folder: Path, name: str, index: int, shape=(16, 20, 24)) -> Path:
    image = sitk.GetImageFromArray(box_volume(index, shape))
    image.SetSpacing((0.8, 0.9, 1.5))
    image.SetOrigin((float(index), -3.0, 7.0))
    path = folder / f"{name}.nii.gz"
    sitk.WriteImage(image, str(path))
    return path


def make_batch(folder: Path, good: int, bad: bool = True, shape=(16, 20, 24)) -> tuple[Path, Path]:
    """``good`` cases c00..; with ``bad``, a corrupt file (case 'corrupt') and a missing one (case 'missing')."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["case,image,segmentation"]
    for index in range(good):
        write_case(folder, f"c{index:02d}", index, shape)
        rows.append(f"c{index:02d},c{index:02d}.nii.gz,")
    if bad:
        whole = (folder / "c00.nii.gz").read_bytes()
        (folder / "corrupt.nii.gz").write_bytes(whole[: len(whole) // 2])
        rows.insert(4, "corrupt,corrupt.nii.gz,")
        rows.insert(9, "missing,gone/missing.nii.gz,")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    recipe = folder / "recipe.yaml"
    recipe.write_text(RECIPE)
    return recipe, manifest


def labels_of(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def run_batch_cli(*args) -> int:
    return batch_main([str(a) for a in args])
