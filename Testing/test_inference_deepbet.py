"""The catalog's ``deepbet`` entry: deepbet's TorchScript networks through SegTruth's generic engine.

The reference is deepbet's own pipeline (``run_bet``) on nilearn's MNI152 T1, run in the reference environment
by Testing/fixtures/make_reference_fixtures.sh; the weights come from the installed ``deepbet`` package.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="model inference needs PyTorch (pip install -c constraints.txt torch)")

import json
from importlib import metadata
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from inference_helpers import reference_fixtures, run_cli
from isolated import run_cli as run_isolated_cli

from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.core.metrics import dice
from SegTruthLogic.inference.weights import resolve

RESOURCES = Path(__file__).resolve().parents[1] / "Resources" / "Models"


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


pytestmark = [
    pytest.mark.reference_fixtures,
    pytest.mark.skipif(
        not _installed("deepbet"),
        reason="the deepbet package (its TorchScript weights) is not installed: pip install deepbet==1.0.2",
    ),
]


@pytest.fixture(scope="module")
def mni(tmp_path_factory):
    folder = reference_fixtures() / "deepbet"
    return folder / "mni152_t1.nii.gz", folder / "deepbet_mask.nii.gz"


def test_deepbet_catalog_model_matches_deepbets_own_pipeline(tmp_path, mni):
    image, reference = mni
    out = tmp_path / "brain.nii.gz"
    assert run_cli("segment", image, "--model", "deepbet", "-o", out, "--device", "cpu", "-q") == 0
    ours, theirs = sitk.ReadImage(str(out)), sitk.ReadImage(str(reference))
    assert Grid.from_sitk(ours).same_as(Grid.from_sitk(sitk.ReadImage(str(image))))
    a, b = sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(theirs) > 0
    assert set(np.unique(a)) == {0, 1}
    score = dice(a == 1, b)
    assert score >= 0.97, score
    litres = (a == 1).sum() * np.prod(ours.GetSpacing()) / 1e6
    assert 1.0 < litres < 2.2  # an adult brain


def test_deepbet_on_a_flipped_copy_lands_on_the_same_voxels(tmp_path, mni):
    """The same T1 stored left-handed (x axis reversed): the mask follows the anatomy, on the copy's grid."""
    image, _ = mni
    source = sitk.ReadImage(str(image))
    flipped = sitk.Flip(source, [True, False, False])
    assert np.linalg.det(np.array(flipped.GetDirection()).reshape(3, 3)) < 0
    path = tmp_path / "flipped.nii.gz"
    sitk.WriteImage(flipped, str(path))
    straight, mirrored = tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"
    assert run_cli("segment", image, "--model", "deepbet", "-o", straight, "--device", "cpu", "-q") == 0
    assert run_cli("segment", path, "--model", "deepbet", "-o", mirrored, "--device", "cpu", "-q") == 0
    a = sitk.GetArrayFromImage(sitk.ReadImage(str(straight)))
    b = sitk.GetArrayFromImage(sitk.ReadImage(str(mirrored)))
    assert np.array_equal(a, b[:, :, ::-1])


def _damaged(data: bytes, how: str) -> bytes:
    middle = len(data) // 2
    return {
        "truncated": data[:middle],
        "one-byte-flipped": data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :],
        "random": np.random.default_rng(0).bytes(len(data) // 100),
        "empty": b"",
    }[how]


@pytest.mark.parametrize("how", ["truncated", "one-byte-flipped", "random", "empty"])
@pytest.mark.parametrize("which", ["model.pt", "bbox_model.pt"])
def test_damaged_deepbet_weights_are_named_unreadable(tmp_path, which, how):
    """deepbet's own files, damaged: one sentence naming the file, never 'unsafe' or torch's weights_only advice.

    A flipped byte inside the weights matters most: torch's archive reader skips the zip CRCs, so without
    SegTruth's check the network would load and segment with one wrong weight.
    """
    source = resolve({"pip": "deepbet", "path": "data/models"}, "deepbet")
    folder = tmp_path / "deepbet"
    folder.mkdir()
    card = json.loads((RESOURCES / "deepbet.card.json").read_text(encoding="utf-8"))
    (folder / "deepbet.card.json").write_text(json.dumps(card), encoding="utf-8")
    for name in ("model.pt", "bbox_model.pt"):
        data = (source / name).read_bytes()
        (folder / name).write_bytes(_damaged(data, how) if name == which else data)
    image = sitk.GetImageFromArray(np.random.default_rng(1).uniform(0, 100, (20, 24, 22)).astype(np.float32))
    sitk.WriteImage(image, str(tmp_path / "t1.nii.gz"))
    out = tmp_path / "out"
    out.mkdir()
    argv = ["segment", tmp_path / "t1.nii.gz", "--model", folder / "deepbet.card.json", "-o", out / "brain.nii.gz"]
    outcome = run_isolated_cli([*argv, "--device", "cpu", "-q"], timeout=120)
    assert outcome.returncode == 1 and outcome.one_error_line, outcome.describe()
    (line,) = outcome.error_lines
    assert line == (
        f"segtruth: error: {folder / which}: is not a readable TorchScript model "
        "(corrupt, truncated or another kind of file)."
    )
    assert list(out.iterdir()) == []
