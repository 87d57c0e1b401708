"""The trainer's contract on the real chest CT, with tiny trainings: resume gives the very same weights, cancel
leaves no model, bad datasets get one sentence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from training_support import TABLE, chest_lungs, write_nnunet

from SegTruthLogic.cli import main
from SegTruthLogic.core.errors import Cancelled, SegTruthError
from SegTruthLogic.core.labels import LabelTable
from SegTruthLogic.core.progress import CancelToken
from SegTruthLogic.core.sample_data import ct_chest_paths
from SegTruthLogic.dataset.cases import read_case
from SegTruthLogic.dataset.manifest import CaseEntry
from SegTruthLogic.scene.segmentation_io import names_its_segments
from SegTruthLogic.scene.session import Session
from SegTruthLogic.training import train
from SegTruthLogic.training.ranking import in_model_values

LABELLED = (10, 18, 26)


@pytest.fixture(scope="module")
def chest():
    return chest_lungs()


def _tiny(dataset: Path, output: Path, **options):
    return train(
        dataset, output, epochs=3, iterations=2, dimensions=2, base_filters=4, patch_budget=32 * 32, batch_size=2,
        seed=5, device="cpu", **options,
    )  # fmt: skip


def test_resume_after_interruption_equals_uninterrupted(chest, tmp_path):
    image, lungs = chest
    dataset = write_nnunet(tmp_path / "Dataset002_Lungs", [("chest", image, lungs)])
    _tiny(dataset, tmp_path / "straight")
    token = CancelToken()

    def stop_after_epoch_2(_fraction: float, message: str) -> None:
        if message.startswith("epoch 2/"):
            token.cancel()

    with pytest.raises(Cancelled):
        _tiny(dataset, tmp_path / "resumed", progress=stop_after_epoch_2, cancel=token)
    assert not (tmp_path / "resumed").exists()  # cancel leaves no model folder, half or whole
    assert (tmp_path / "resumed.training" / "checkpoint.pt").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".resumed")]  # nor staging folders
    result = _tiny(dataset, tmp_path / "resumed")
    assert result.resumed_from == 2 and len(result.history) == 3
    assert not (tmp_path / "resumed.training").exists()
    a = torch.load(tmp_path / "straight" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    straight = json.loads((tmp_path / "straight" / "training.json").read_text(encoding="utf-8"))["history"]
    assert [e["loss"] for e in straight] == [e["loss"] for e in result.history]


def test_cancel_leaves_no_model(chest, tmp_path):
    image, lungs = chest
    dataset = write_nnunet(tmp_path / "Dataset003_Lungs", [("chest", image, lungs)])
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        _tiny(dataset, tmp_path / "model", cancel=token)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dataset003_Lungs"]


@pytest.mark.parametrize(
    ("table", "mirrored"),
    [(None, [0]), ({"labels": [{"name": "lungs", "value": 1, "color": "#c9d4e8"}]}, [0, 1])],
    ids=["right and left lung", "lungs"],
)
def test_labels_of_one_side_turn_off_left_right_mirroring(chest, tmp_path, table, mirrored):
    """ "right lung" and "left lung": no mirroring across the i (left-right) axis, in training and in test-time
    mirroring; a label of both sides keeps every axis."""
    image, lungs = chest
    labels = {"background": 0, "lungs": 1} if table else None
    array = (lungs > 0).astype(np.uint8) if table else lungs
    dataset = write_nnunet(tmp_path / "Dataset004_Lungs", [("chest", image, array)], labels, table=table or TABLE)
    result = _tiny(dataset, tmp_path / "model")
    assert list(result.plan.mirrors) == mirrored
    card = json.loads((tmp_path / "model" / "model.card.json").read_text(encoding="utf-8"))
    record = json.loads((tmp_path / "model" / "training.json").read_text(encoding="utf-8"))
    assert card["inference"]["mirror_axes"] == mirrored and record["plan"]["mirror_axes"] == mirrored
    sided = [note for note in result.notes if "no mirroring across the left-right axis" in note]
    assert sided == (
        [] if table else ["labels name a side (right lung, left lung): no mirroring across the left-right axis"]
    )


def _bad(tmp_path: Path, chest, kind: str) -> Path:
    image, lungs = chest
    folder = tmp_path / "Dataset004_Bad"
    if kind == "no labelled voxel":
        return write_nnunet(folder, [("chest", image, np.zeros_like(lungs))])
    if kind == "one class only":
        return write_nnunet(folder, [("chest", image, np.ones_like(lungs))])
    if kind == "labels missing from the table":
        return write_nnunet(folder, [("chest", image, np.where(lungs == 2, 3, lungs))], table=None)
    if kind == "wrong channel count":
        return write_nnunet(folder, [("chest", image, lungs)], channel_names={"0": "CT", "1": "T1"})
    write_nnunet(folder, [("chest", image, lungs)])
    (folder / "dataset.json").write_text('{"channel_names": {"0": "CT"}, "labels": {', encoding="utf-8")
    return folder


BAD = {
    "no labelled voxel": "no case holds a labelled voxel",
    "one class only": "only one class",
    "labels missing from the table": "label values [3]",
    "wrong channel count": "has 1 image channel(s)",
    "broken dataset.json": "not valid JSON",
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_datasets_one_sentence(chest, tmp_path, kind, capsys):
    dataset = _bad(tmp_path, chest, kind)
    out = tmp_path / "model"
    assert main(["train", str(dataset), "-o", str(out), "--epochs", "1", "--iterations", "1", "-q"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("segtruth: error: ") and len(error.splitlines()) == 1, error
    assert BAD[kind] in error and str(dataset) in error, error
    assert not out.exists() and not (tmp_path / "model.training").exists()


def test_rank_reads_named_segments_by_name_and_drops_the_others(chest):
    """A .seg.nrrd with seven segments, ranked by a model of two lungs: its lungs in the model's values, the ribs,
    spine and tissue background; a model none of whose labels the case holds is one sentence."""
    image_path, segmentation_path = ct_chest_paths()
    voxels = read_case(Session.new_headless(), CaseEntry("chest", (image_path,), segmentation_path))
    model_labels = LabelTable.from_json(json.dumps(TABLE), "the model's labels")
    _image, lungs = chest
    assert names_its_segments(segmentation_path) and not names_its_segments("labels.nii.gz")
    np.testing.assert_array_equal(in_model_values(voxels, model_labels), lungs)
    liver = LabelTable.from_json(json.dumps({"labels": [{"name": "liver", "value": 1, "color": "#aa5500"}]}), "x")
    with pytest.raises(SegTruthError, match=r"hold none of the model's labels \(liver\)"):
        in_model_values(voxels, liver)
