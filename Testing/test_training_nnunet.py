"""``segtruth train --backend nnunet``: nnunetv2's own planning, preprocessing and training run from its own
environment (the reference environment CI builds), its results folder published as the model, which ``segment``
loads; and the refusals that need no nnunetv2 (one sentence, exit 1, nothing written)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import SimpleITK as sitk
from inference_helpers import reference_fixtures

from SegTruthLogic.cli import main

REFERENCE_ENV = Path(os.environ.get("SEGTRUTH_REF_ENV") or Path.home() / ".cache" / "segtruth-ref-env")


def test_nnunet_log_lines_give_progress_and_history():
    from SegTruthLogic.training.nnunet_backend import _LogReader

    reader = _LogReader((0.0, 1.0), 5, "0")
    reports = []
    reader.job = type("Job", (), {"report": lambda self, f, m: reports.append((f, m))})()
    for line in ("2026-12-03 20:00:00.000000: Epoch 0", "2026-12-03 20:00:01.000000: train_loss -0.1234",
                 "2026-12-03 20:00:02.000000: Pseudo dice [np.float32(0.5), np.float32(0.25)]",
                 "2026-12-03 20:00:02.000000: Epoch time: 12.5 s"):  # fmt: skip
        reader(line)
    assert reader.history == [{"epoch": 1, "loss": -0.1234, "pseudo_dice": 0.375, "seconds": 12.5}]
    assert reports == [(0.2, "fold 0, epoch 1/5: loss -0.123, pseudo Dice 0.375")]


def _dataset(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": {"background": 0}}))
    return folder


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--epochs", "7"], "--epochs 7: nnU-Net's trainers run 1, 5, 10"),
        (["--minutes", "5"], "--minutes is the built-in trainer's; nnU-Net plans its own"),
        (["--sparse"], "--sparse is the built-in trainer's"),
        (["--nnunet-python", "/nowhere/bin/python"], "/nowhere/bin/python (--nnunet-python): has no nnUNetv2_plan"),
    ],
)
def test_nnunet_backend_refusals_are_one_sentence(tmp_path, capsys, arguments, message):
    dataset = _dataset(tmp_path, "Dataset042_Thing")
    code = main(["train", str(dataset), "-o", str(tmp_path / "model"), "--backend", "nnunet", *arguments])
    err = capsys.readouterr().err
    assert code == 1 and message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dataset042_Thing"]


def test_nnunet_backend_needs_an_nnunet_named_raw_folder(tmp_path, capsys):
    dataset = _dataset(tmp_path, "lungs")
    code = main(["train", str(dataset), "-o", str(tmp_path / "model"), "--backend", "nnunet"])
    err = capsys.readouterr().err
    assert code == 1 and "needs the folder named DatasetNNN_Name" in err


@pytest.mark.reference_fixtures
def test_nnunet_trains_one_epoch_and_segment_loads_its_results(tmp_path, capsys):
    """End to end on the reference fixture's raw dataset, with nnunetv2 from the reference environment: plan,
    preprocess and one epoch of 2d fold 0; the published folder segments a left-handed test image on its grid."""
    fixtures = reference_fixtures()
    python = REFERENCE_ENV / "bin" / "python"
    if not python.is_file():
        pytest.skip(f"{python}: the reference environment (nnunetv2) is absent")
    raw = fixtures / "nnunet" / "raw" / "Dataset901_SegTruthFixture"
    before = sorted(p.relative_to(raw) for p in raw.rglob("*"))
    model = tmp_path / "model"
    command = ["train", str(raw), "-o", str(model), "--backend", "nnunet", "--epochs", "1",
               "--configuration", "2d", "--nnunet-python", str(python), "--device", "cpu"]  # fmt: skip
    assert main(command) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "nnU-Net 2d (nnUNetTrainer_1epoch), folds 0, 1 epoch(s)" in out, out
    assert sorted(p.name for p in model.iterdir()) == [
        ".segtruth-folder",  # the mark of a folder SegTruth wrote (it may replace it with --overwrite)
        "dataset.json",
        "dataset_fingerprint.json",
        "fold_0",
        "plans.json",
    ]
    assert (model / "fold_0" / "checkpoint_final.pth").stat().st_size > 0
    assert not (tmp_path / "model.training").exists()
    assert sorted(p.relative_to(raw) for p in raw.rglob("*")) == before  # the dataset was only read

    image = fixtures / "nnunet" / "test" / "images" / "lefthanded_0000.nii.gz"
    labels = tmp_path / "labels.nii.gz"
    assert main(["segment", str(image), "--model", str(model), "-o", str(labels), "--device", "cpu", "-q"]) == 0
    source, written = sitk.ReadImage(str(image)), sitk.ReadImage(str(labels))
    assert written.GetSize() == source.GetSize()
    assert written.GetOrigin() == source.GetOrigin() and written.GetDirection() == source.GetDirection()
    assert written.GetSpacing() == source.GetSpacing()
