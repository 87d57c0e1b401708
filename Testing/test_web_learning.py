"""Learn as you label in the web app, on the real classes without a browser: Train saves the open case and trains
the project's model in a worker process while the editor stays live, the case list then shows the ranking,
Pre-segment gives a preview from the project's model, and Stop leaves the previous model as it was."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip(
    "trame_slicer", reason="the web front end needs trame-slicer (pip install 'trame-slicer[standalone]')"
)

from SegTruthLogic.core.errors import SegTruthError
from SegTruthLogic.core.labels import LabelTable
from SegTruthLogic.inference.catalog import load_model
from SegTruthLogic.scene.segments import segment_ids
from SegTruthLogic.web.cases import SAMPLE_LABELS, read_web_cases

TINY = {"epochs": 2, "iterations": 2, "filters": 4, "seed": 3}  # a CI-sized training: the wiring, not the model


@pytest.fixture
def app(ct_chest, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TRAME_ARGS", "")
    from trame.app import get_server

    from SegTruthLogic.web.app import SegTruthWebApp

    folder = tmp_path / "cases"
    folder.mkdir()
    shutil.copyfile(ct_chest[0], folder / "chest.nrrd")
    shutil.copyfile(ct_chest[0], folder / "copy.nrrd")
    app = SegTruthWebApp(
        read_web_cases(folder), LabelTable.read(SAMPLE_LABELS), server=get_server(f"web-learn-{tmp_path.name}"),
        device="cpu", project=folder,
    )  # fmt: skip
    app.learning.options = dict(TINY)
    return app


def _digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.iterdir()))).hexdigest()


async def _after_learning(app) -> None:
    """Wait for the training, then the ranking it starts, keeping the editor's loop turning meanwhile."""
    while app.learning_task is not None and not app.learning_task.done():
        task = app.learning_task
        await task
        if app.learning_task is task:
            break


def test_train_rank_and_presegment_from_the_page(app):
    state, folder = app.state, app.learning.project
    assert not state.st_has_model and state.st_model_info.startswith("No model yet")

    with pytest.raises(SegTruthError, match=r"^No case is labelled and saved yet"):  # the page shows the sentence
        app.train()
    assert not (folder / "segtruth-model").exists() and not state.st_learn_busy

    # Label the open case: threshold into "right lung", then Train (which saves it first).
    app.select_segment(state.st_rows[0]["segment_id"])
    app.set_tool("threshold")
    state.st_thr_low, state.st_thr_high = "-1100", "-400"
    asyncio.run(app.apply())
    assert state.st_rows[0]["voxels"] == 263976 and not (folder / "chest.seg.nrrd").exists()
    state.st_train_sparse, state.st_train_minutes = False, "5"

    async def train() -> None:
        app.train()
        assert state.st_learn_busy and state.st_learn_text.startswith("Training on 1 labelled case(s)")
        app.set_tool("paint")  # the editor answers while the worker trains
        assert state.st_tool == "paint"
        await _after_learning(app)

    asyncio.run(train())
    assert (folder / "chest.seg.nrrd").is_file()  # Train saved the strokes drawn before it
    assert not state.st_learn_busy and not state.st_error, state.st_status
    assert state.st_has_model and "2 epoch(s)" in state.st_model_info
    card = load_model(folder / "segtruth-model").card
    assert card.dimensions == 2 and [label.name for label in card.labels] == ["right lung", "left lung", "bone"]
    # The ranking followed: the unlabelled case first (to label), the labelled one after it (to review).
    assert [(c["id"], c["note"].split(":")[0]) for c in state.st_cases] == [
        ("copy", "#1 to label"),
        ("chest", "#2 to review"),
    ]
    assert state.st_status.endswith("Label copy next.")

    app.open_case("copy")

    async def presegment() -> None:
        await app.presegment()

    asyncio.run(presegment())
    assert state.st_tool == "auto_segment" and state.st_preview and not state.st_error, state.st_status
    assert app.tool_states["auto_segment"].get().model == str(folder / "segtruth-model")
    preview = app.previewer.node
    names = [preview.GetSegmentation().GetSegment(s).GetName() for s in segment_ids(preview)]
    assert set(names) <= {"right lung", "left lung", "bone"} and names
    asyncio.run(app.apply())
    assert not state.st_preview and not state.st_error


def test_stop_leaves_the_previous_model(app):
    state, folder = app.state, app.learning.project
    app.select_segment(state.st_rows[0]["segment_id"])
    app.set_tool("threshold")
    state.st_thr_low, state.st_thr_high = "-1100", "-400"
    asyncio.run(app.apply())

    async def train_then_stop() -> None:
        app.train()
        await _after_learning(app)
        before = _digest(folder / "segtruth-model")
        app.learning.options = {**TINY, "epochs": 500}
        state.st_train_finetune = True
        app.train()
        deadline = time.monotonic() + 300
        while not state.st_learn_text.startswith("epoch ") and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        app.stop_learning()
        await app.learning_task
        assert _digest(folder / "segtruth-model") == before

    asyncio.run(train_then_stop())
    assert not state.st_learn_busy and not state.st_error
    assert state.st_status.endswith("stopped; the project's model is as it was.")
    assert state.st_has_model
