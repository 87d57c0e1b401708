"""A small folder of annotated cases made from the sample chest CT, to try dataset export without data of one's own.

Three cases in the layout ``segtruth dataset`` reads from a folder (``CASE.<image>`` + ``CASE.seg.nrrd``): the
CT with its reference segmentation, a crop around the right lung (NIfTI), and the same CT stored with its
first axis reversed (a left-handed file, as some scanners and converters write them). Exports must keep all
three exact, which is what they are there to show. Each image has the sidecar ``CASE.json`` that dcm2niix
writes beside a converted series, saying it is a CT, so an nnU-Net export names the channel ``CT``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_folder, atomic_write_text
from ..core.geometry import Grid
from ..core.sample_data import ct_chest_paths
from ..scene.export import export, write_array
from ..scene.segmentation_io import load_segmentation
from ..scene.session import Session
from ..scene.volumes import load_volume
from .cases import read_case
from .crop import crop_case
from .manifest import CaseEntry
from .modality import sidecar


def left_handed(grid: Grid) -> Grid:
    """The same voxel positions indexed with the i axis reversed (a left-handed grid)."""
    matrix = grid.ijk_to_ras.copy()
    matrix[:3, 3] = (grid.ijk_to_ras @ np.array([grid.size[0] - 1, 0, 0, 1.0]))[:3]
    matrix[:3, 0] = -grid.ijk_to_ras[:3, 0]
    return Grid(grid.size, matrix)


def write_sample_cases(session: Session, folder: str | Path, overwrite: bool = False) -> Path:
    """Write the three sample cases into a new ``folder``."""
    image, segmentation = ct_chest_paths()
    with atomic_folder(folder, overwrite) as temp:
        shutil.copyfile(image, temp / "chest_001.nrrd")
        shutil.copyfile(segmentation, temp / "chest_001.seg.nrrd")

        crop_case(
            session, image, segmentation, temp / "chest_002.nii.gz", temp / "chest_002.labels.nii.gz", margin_mm=20.0,
            label="right lung",
        )  # fmt: skip
        case = read_case(session, CaseEntry("chest", (image,), segmentation))
        labels = case.labels if case.labels is not None else np.zeros(case.grid.shape_kji, np.uint8)
        flipped = left_handed(case.grid)
        write_array(np.ascontiguousarray(case.channels[0][:, :, ::-1]), flipped, temp / "chest_003.nrrd")
        write_array(np.ascontiguousarray(labels[:, :, ::-1]), flipped, temp / "chest_003.labels.nrrd")

        table = case.table
        for name in ("chest_002", "chest_003"):
            suffix = ".nii.gz" if name == "chest_002" else ".nrrd"
            volume = load_volume(session, temp / f"{name}{suffix}")
            node = load_segmentation(session, temp / f"{name}.labels{suffix}", volume, table)
            export(session, node, volume, temp / f"{name}.seg.nrrd", table)
            session.remove(volume, node)
            (temp / f"{name}.labels{suffix}").unlink()
        for image in (temp / "chest_001.nrrd", temp / "chest_002.nii.gz", temp / "chest_003.nrrd"):
            atomic_write_text(sidecar(image), json.dumps({"Modality": "CT"}) + "\n")
    return Path(folder)
