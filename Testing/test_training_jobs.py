"""Training and ranking in a worker process (what the web app and the Slicer panel run): progress, the model's
summary, Stop leaving no model and the checkpoint of the last epoch, and bad input as one sentence."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from training_support import chest_lungs, keep_slices, write_nnunet

from SegTruthLogic.core.errors import Cancelled, SegTruthError
from SegTruthLogic.inference.catalog import load_model
from SegTruthLogic.training.runner import TrainingSummary, start_ranking, start_training

LABELLED = (10, 18, 26)
TINY = {"epochs": 3, "iterations": 2, "dimensions": 2, "filters": 4, "device": "cpu", "seed": 5}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    image, lungs = chest_lungs()
    folder = tmp_path_factory.mktemp("jobs")
    return write_nnunet(folder / "Dataset004_Lungs", [("chest", image, keep_slices(lungs, LABELLED))])


def test_training_in_a_worker_reports_epochs_and_writes_the_model(dataset, tmp_path):
    messages: list[str] = []
    job = start_training(dataset, tmp_path / "model", sparse=True, progress=lambda f, m: messages.append(m), **TINY)
    summary = job.wait(300)
    assert isinstance(summary, TrainingSummary) and summary.epochs == 3 and summary.stopped == "epochs"
    assert 1 <= summary.best_epoch <= 3 and 0.0 <= summary.best_dice <= 1.0
    epochs = [m for m in messages if m.startswith("epoch ")]  # one line per epoch: loss, validation Dice, ETA
    assert [m.split(":")[0] for m in epochs] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("loss" in m and "val Dice" in m and "ETA" in m for m in epochs)
    assert job.progress()[0] == 1.0
    card = load_model(tmp_path / "model").card
    assert [label.name for label in card.labels] == ["right lung", "left lung"]
    record = json.loads((tmp_path / "model" / "training.json").read_text(encoding="utf-8"))
    assert record["plan"]["sparse"] is True and len(record["history"]) == 3
    assert not (tmp_path / "model.training").exists()  # the checkpoint folder goes once the model is written


def test_stop_ends_the_worker_keeps_the_checkpoint_and_writes_no_model(dataset, tmp_path):
    epochs: list[str] = []
    job = start_training(
        dataset, tmp_path / "model", progress=lambda f, m: epochs.append(m) if m.startswith("epoch ") else None,
        **{**TINY, "epochs": 200},
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not epochs and not job.done and time.monotonic() < deadline:
        time.sleep(0.1)
    assert epochs, "no epoch ended within 300 s"
    started = time.monotonic()
    job.cancel()
    with pytest.raises(Cancelled):
        job.wait(60)
    assert time.monotonic() - started < 30
    assert job.process is not None and job.process.returncode is not None  # the worker is gone
    assert not (tmp_path / "model").exists()
    assert (tmp_path / "model.training" / "checkpoint.pt").is_file()  # the next run resumes from it
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model")]  # no staging folder left


def test_a_bad_dataset_fails_the_job_in_one_sentence(tmp_path):
    (tmp_path / "Dataset009_Broken").mkdir()
    (tmp_path / "Dataset009_Broken" / "dataset.json").write_text("{not json", encoding="utf-8")
    job = start_training(tmp_path / "Dataset009_Broken", tmp_path / "model", **TINY)
    with pytest.raises(SegTruthError) as error:
        job.wait(120)
    message = str(error.value)
    assert "dataset.json" in message and "\n" not in message and "Traceback" not in message
    assert not (tmp_path / "model").exists()


def test_ranking_in_a_worker_gives_the_rows_in_rank_order(dataset, tmp_path):
    job = start_training(dataset, tmp_path / "model", sparse=True, **TINY)
    job.wait(300)
    image, lungs = chest_lungs()
    sitk.WriteImage(image, str(tmp_path / "unlabelled.nrrd"))
    labelled = sitk.GetImageFromArray(np.where(lungs > 0, lungs, 0).astype(np.uint8))
    labelled.CopyInformation(image)
    sitk.WriteImage(image, str(tmp_path / "labelled.nrrd"))
    sitk.WriteImage(labelled, str(tmp_path / "labelled.labels.nrrd"))
    manifest = tmp_path / "cases.csv"
    manifest.write_text(
        "case,image,segmentation\nlabelled,labelled.nrrd,labelled.labels.nrrd\nunlabelled,unlabelled.nrrd,\n"
        "missing,missing.nrrd,\n",
        encoding="utf-8",
    )
    rows = start_ranking(manifest, tmp_path / "model", tmp_path / "rank.csv", device="cpu").wait(300)
    assert [(row["case"], row["kind"]) for row in rows] == [
        ("unlabelled", "unlabelled"), ("labelled", "labelled"), ("missing", "failed")
    ]  # fmt: skip
    assert float(rows[0]["score"]) >= 0 and "missing.nrrd" in rows[2]["error"]
