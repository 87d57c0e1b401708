"""A reader that kills its worker process fails only its own case; the batch finishes the others and says why.

The killer is real: Slicer's ``LoadSegmentationFromFile`` on a ``.seg.nrrd`` whose gzip data is cut short aborts
the process (SIGABRT from teem's ``_nrrdEncodingGzip_read``, checked first below in a child process). SegTruth's
readers refuse such a file before Slicer sees it, so the file reaches Slicer's reader through a recipe step this
test registers in ``recipe.TOOLS`` (slicer_reader_steps.py); the batch's workers receive the step with the job.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from isolated import run_isolated
from slicer_reader_steps import STEP, TARGET, load_straight, truncated_seg_nrrd
from test_batch_support import RECIPE, expected_labels, labels_of, make_batch, run_batch_cli, write_case

from SegTruthLogic import SegTruthError
from SegTruthLogic.batch import run_batch
from SegTruthLogic.batch.local import run_local
from SegTruthLogic.batch.state import fingerprint, read_state
from SegTruthLogic.batch.work import BatchJob
from SegTruthLogic.dataset.case_sources import find_cases
from SegTruthLogic.workflow.recipe import TOOLS, Recipe

CASES = 5
BAD = "c02"  # manifest.csv line 4
HERE = Path(__file__).resolve().parent
LARGE = (128, 160, 192)  # a case that takes a while to read


def crash_batch(folder: Path, reference: Path, cases: int = CASES, bad: str = BAD) -> tuple[Path, Path]:
    """``cases`` two-box cases; the recipe first reads CASE.seg.nrrd with Slicer's reader, cut short for ``bad``."""
    recipe, manifest = make_batch(folder, good=cases, bad=False)
    truncated_seg_nrrd(reference, folder / f"{bad}.seg.nrrd")  # not in the manifest: only the step reads it
    recipe.write_text(RECIPE.replace("steps:\n", f"steps:\n  - {STEP}: {{folder: {folder}}}\n"))
    return recipe, manifest


@pytest.fixture
def slicer_step(monkeypatch):
    monkeypatch.setitem(TOOLS, STEP, TARGET)


def test_a_truncated_seg_nrrd_aborts_slicers_own_reader(tmp_path, ct_chest):
    path = truncated_seg_nrrd(ct_chest[1], tmp_path / "cut.seg.nrrd")
    outcome = run_isolated(load_straight, str(path), timeout=120)
    assert outcome.returncode == -signal.SIGABRT, outcome.describe()
    assert "_nrrdEncodingGzip_read" in outcome.stderr
    assert run_isolated(load_straight, str(ct_chest[1]), timeout=120).returncode == 0  # the whole file loads


def test_a_worker_killed_by_a_reader_fails_only_its_case(tmp_path, ct_chest, slicer_step, capsys):
    recipe, manifest = crash_batch(tmp_path / "data", ct_chest[1])
    out = tmp_path / "out"
    assert run_batch_cli(recipe, manifest, "-o", out, "--workers", "2", "-q") == 3  # some cases failed
    report = capsys.readouterr().out
    assert f"batch: {CASES - 1} done, 1 failed" in report
    bad = read_state(out, BAD)
    assert bad.status == "failed"
    assert bad.error == (
        f"Case '{BAD}' (manifest.csv line 4): the worker process was killed by signal 6 (SIGABRT) while running "
        f"the recipe (step 1/4: {STEP})."
    )
    assert bad.error in report and "summary: " in report
    assert sorted(p.name for p in (out / BAD).iterdir() if not p.name.startswith(".")) == ["case.json", "case.log"]
    for index in range(CASES):
        if f"c{index:02d}" != BAD:
            assert read_state(out, f"c{index:02d}").status == "done"
            assert np.array_equal(labels_of(out / f"c{index:02d}" / "labels.nii.gz"), expected_labels(index))
    rows = (out / "summary.csv").read_text().splitlines()
    assert len(rows) == CASES + 1 and sum(",failed," in row for row in rows) == 1


def test_a_death_while_reading_the_next_case_is_settled_by_running_each_alone(tmp_path, ct_chest, slicer_step, capfd):
    """One worker runs c00 while it reads c01 (a large image): c00's step kills it before that read ends.

    Either case could have killed it, so neither is blamed yet: each runs again alone, c00 kills its worker
    again (two aborts in all) and fails, c01 is done.
    """
    folder = tmp_path / "data"
    recipe_path, manifest = crash_batch(folder, ct_chest[1], cases=2, bad="c00")
    write_case(folder, "c01", 1, LARGE)
    recipe = Recipe.read(recipe_path)
    job = BatchJob(recipe, tuple(recipe.outputs), fingerprint(recipe, recipe.outputs))
    assert (STEP, TARGET) in job.tools
    out = tmp_path / "out"
    out.mkdir()
    states = []
    run_local(job, out, find_cases(manifest), states.append, workers=1, threads=1)
    assert sorted((s.case, s.status) for s in states) == [("c00", "failed"), ("c01", "done")]  # one record each
    assert read_state(out, "c00").error == (
        "Case 'c00' (manifest.csv line 2): the worker process was killed by signal 6 (SIGABRT) while running "
        f"the recipe (step 1/4: {STEP})."
    )
    assert np.array_equal(labels_of(out / "c01" / "labels.nii.gz"), expected_labels(1, LARGE))
    assert capfd.readouterr().err.count("_nrrdEncodingGzip_read: expected") == 2


def test_a_worker_that_dies_while_starting_stops_the_batch(tmp_path):
    """A worker that dies before it is ready would die again in its replacement: one clear error, no restart loop."""
    recipe_path, manifest = make_batch(tmp_path / "data", good=2, bad=False)
    recipe = Recipe.read(recipe_path)
    job = BatchJob(recipe, tuple(recipe.outputs), fingerprint(recipe, recipe.outputs))
    (tmp_path / "out").mkdir()

    def kill_the_first_worker() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            children = multiprocessing.active_children()
            if children:
                os.kill(children[0].pid, signal.SIGKILL)  # long before it has imported Slicer
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_the_first_worker)
    killer.start()
    with pytest.raises(SegTruthError) as raised:
        run_local(job, tmp_path / "out", find_cases(manifest), lambda state: None, workers=1, threads=1)
    killer.join()
    assert str(raised.value) == (
        "A batch worker process was killed by signal 9 (SIGKILL) while starting, before it could run any case."
    )
    assert read_state(tmp_path / "out", "c00") is None


def test_ray_records_a_killed_worker_like_the_local_engine(tmp_path, ct_chest, slicer_step, monkeypatch):
    """The Ray instance run_batch starts here; its workers find the step's module through PYTHONPATH."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install ray)")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    recipe, manifest = crash_batch(tmp_path / "data", ct_chest[1], cases=3)
    result = run_batch(recipe, manifest, tmp_path / "out", engine="ray", workers=2)
    assert sorted(result.done) == ["c00", "c01"] and result.failed == [BAD]
    error = read_state(tmp_path / "out", BAD).error
    assert error == (
        f"Case '{BAD}' (manifest.csv line 4): the worker process died while running this case "
        "(Ray's python-core-worker-*.log files say how)."
    )
    assert (tmp_path / "out" / BAD / "case.log").is_file()
