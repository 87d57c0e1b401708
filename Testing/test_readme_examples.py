"""The README's own commands, read from README.md and run as written on the sample chest CT, give right results."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest
from isolated import run_cli

from SegTruthLogic import Session
from SegTruthLogic.core.metrics import dice
from SegTruthLogic.scene.segmentation_io import load_segmentation
from SegTruthLogic.scene.segments import find_segment, segment_ids, segment_mask
from SegTruthLogic.scene.volumes import load_volume

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


def blocks() -> list[tuple[str, str]]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def command(prefix: str) -> list[str]:
    """The README's one ``segtruth`` command line that starts with ``prefix``, split as a shell does (comments dropped)."""
    found = [
        line.strip()
        for kind, text in blocks()
        if kind == "bash"
        for line in text.splitlines()
        if line.strip().startswith(prefix)
    ]
    assert len(found) == 1, f"README.md should show one command starting with {prefix!r}: {found}"
    return shlex.split(found[0], comments=True)[1:]


def shown_output(prefix: str) -> list[str]:
    """The lines of the plain block the README shows right after the bash block holding ``prefix``."""
    found = blocks()
    for n, (kind, text) in enumerate(found[:-1]):
        if kind == "bash" and prefix in text and found[n + 1][0] == "":
            return found[n + 1][1].strip().splitlines()
    raise AssertionError(f"README.md shows no output after {prefix!r}")


def run(argv: list[str], cwd: Path, timeout: float = 300):
    outcome = run_cli(argv, timeout=timeout, cwd=cwd)
    assert outcome.returncode == 0, f"segtruth {shlex.join(argv)}: {outcome.describe()}"
    return outcome


@pytest.fixture
def ct_folder(tmp_path, ct_chest):
    """A folder holding the sample CT as the README's ``ct.nrrd``."""
    os.symlink(ct_chest[0], tmp_path / "ct.nrrd")
    return tmp_path


def lungs_dice(folder: Path, labels: Path, reference: Path) -> tuple[float, float, float]:
    """Dice of a one-segment labelmap against both reference lungs together, and its share of each lung."""
    session = Session.new_headless()
    ct = load_volume(session, folder / "ct.nrrd")
    ours = load_segmentation(session, labels, ct)
    (segment,) = segment_ids(ours)
    mask = segment_mask(session, ours, segment, ct)
    node = load_segmentation(session, reference, ct)
    right, left = (segment_mask(session, node, find_segment(node, name), ct) for name in ("right lung", "left lung"))
    return dice(mask, right | left), float((mask & right).sum() / right.sum()), float((mask & left).sum() / left.sum())


def test_the_lung_example_gives_the_lungs(ct_folder, ct_chest):
    """Threshold the air, then islands --remove-border --keep-largest: both lungs, in one island."""
    run(command("segtruth threshold ct.nrrd --range"), ct_folder)
    islands = command("segtruth islands ct.nrrd air.nii.gz")
    assert "--remove-border" in islands
    run(islands, ct_folder)
    both, right, left = lungs_dice(ct_folder, ct_folder / "lungs.nii.gz", ct_chest[1])
    assert both > 0.99 and right > 0.98 and left > 0.98, (both, right, left)  # measured 0.993, 0.988, 0.991

    # Without --remove-border the largest island is the air around the patient: no lung at all.
    outside = [*[arg for arg in islands if arg != "--remove-border"][:-1], "outside.nii.gz"]
    run(outside, ct_folder)
    assert lungs_dice(ct_folder, ct_folder / "outside.nii.gz", ct_chest[1])[0] == 0.0


def test_the_dataset_examples_run_as_written(tmp_path):
    """dataset sample, nnunet (CT channel, report, nnU-Net's checker) and monai --folds 5 on the three cases."""
    pytest.importorskip("nnunetv2", reason="the README's nnunet example runs nnU-Net's own checker (--verify)")
    run(command("segtruth dataset sample cases/"), tmp_path)
    nnunet = run(command("segtruth dataset nnunet cases/"), tmp_path, timeout=600)
    assert nnunet.stdout.strip().splitlines() == shown_output("segtruth dataset nnunet cases/")
    dataset = json.loads((tmp_path / "nnUNet_raw" / "Dataset501_Chest" / "dataset.json").read_text())
    assert dataset["channel_names"] == {"0": "CT"}  # the sample cases' sidecars say CT

    monai = run(command("segtruth dataset monai cases/"), tmp_path)
    assert monai.stdout.splitlines() == [
        "wrote chest.json (3 cases)",
        "note: 5 folds were asked for but only 2 cases are left for training, so 2 folds were made.",
    ]
    datalist = json.loads((tmp_path / "chest.json").read_text())
    assert len(datalist["validation"]) == 1 and sorted(item["fold"] for item in datalist["training"]) == [0, 1]
    assert all((tmp_path / item["image"]).is_file() for item in datalist["training"] + datalist["validation"])
