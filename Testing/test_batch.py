"""segtruth batch: every good case exported, bad ones recorded, re-runs resume, models loaded once per worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from test_batch_support import expected_labels, labels_of, make_batch, run_batch_cli, write_case

from SegTruthLogic import SegTruthError
from SegTruthLogic.batch import run_batch
from SegTruthLogic.batch.local import gpu_plan, run_local
from SegTruthLogic.batch.state import batch_lock, fingerprint, read_state
from SegTruthLogic.batch.work import BatchJob, Worker
from SegTruthLogic.dataset.case_sources import find_cases
from SegTruthLogic.workflow.recipe import Recipe

ROOT = Path(__file__).resolve().parents[1]


def case_folders(outdir: Path) -> list[str]:
    return sorted(p.name for p in outdir.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_twenty_cases_two_bad_exports_the_good_ones_and_reports_the_bad(tmp_path, capsys):
    recipe, manifest = make_batch(tmp_path / "data", good=18)
    out = tmp_path / "out"
    assert run_batch_cli(recipe, manifest, "-o", out, "--workers", "2", "-q") == 3
    report = capsys.readouterr().out
    assert "batch: 18 done, 2 failed" in report
    for index in range(18):
        folder = out / f"c{index:02d}"
        assert np.array_equal(labels_of(folder / "labels.nii.gz"), expected_labels(index))
        assert (folder / "labels.seg.nrrd").is_file() and (folder / "case.log").is_file()
        assert read_state(out, f"c{index:02d}").status == "done"
    corrupt, missing = read_state(out, "corrupt"), read_state(out, "missing")
    assert corrupt.status == missing.status == "failed"
    assert corrupt.error.startswith("Case 'corrupt' (manifest.csv line 5): ") and "corrupt.nii.gz" in corrupt.error
    assert missing.error.startswith("Case 'missing' (manifest.csv line 10): ") and "not found" in missing.error
    assert sorted(p.name for p in (out / "corrupt").iterdir() if not p.name.startswith(".")) == [
        "case.json",
        "case.log",
    ]  # no partial outputs
    assert corrupt.error in report and missing.error in report
    rows = (out / "summary.csv").read_text().splitlines()
    assert rows[0] == "case,status,seconds,outputs,error" and len(rows) == 21
    assert len(case_folders(out)) == 20

    # Re-run: nothing is done again; then the missing file appears and --retry-failed runs just that case.
    assert run_batch_cli(recipe, manifest, "-o", out, "--workers", "0", "-q") == 3
    assert "batch: 0 done, 0 failed, 18 done before, 2 failed before (not retried)" in capsys.readouterr().out
    (manifest.parent / "gone").mkdir()
    write_case(manifest.parent / "gone", "missing", 5)
    result = run_batch(recipe, manifest, out, workers=0, retry_failed=True)
    assert sorted(result.done) == ["missing"] and result.failed == ["corrupt"]
    assert sorted(result.skipped_done) == [f"c{i:02d}" for i in range(18)]
    assert np.array_equal(labels_of(out / "missing" / "labels.nii.gz"), expected_labels(5))


def test_a_case_whose_outputs_vanished_runs_again_and_only_it(tmp_path):
    recipe, manifest = make_batch(tmp_path / "data", good=3, bad=False)
    out = tmp_path / "out"
    first = run_batch(recipe, manifest, out, workers=0)
    assert sorted(first.done) == ["c00", "c01", "c02"] and first.ok
    (out / "c01" / "labels.seg.nrrd").unlink()
    again = run_batch(recipe, manifest, out, workers=0)
    assert again.done == ["c01"] and sorted(again.skipped_done) == ["c00", "c02"]
    assert (out / "c01" / "labels.seg.nrrd").is_file()


def test_in_process_with_and_without_prefetch_write_the_same_labelmaps(tmp_path):
    recipe_path, manifest = make_batch(tmp_path / "data", good=3, bad=False)
    recipe = Recipe.read(recipe_path)
    job = BatchJob(recipe, tuple(recipe.outputs), fingerprint(recipe, recipe.outputs))
    cases = find_cases(manifest)
    outputs = {}
    for prefetch in (True, False):
        worker = Worker(job, prefetch=prefetch)
        assert worker.prefetch is prefetch
        for index, entry in enumerate(cases):
            folder = tmp_path / f"{prefetch}" / entry.case
            folder.mkdir(parents=True)
            upcoming = cases[index + 1] if index + 1 < len(cases) else None
            assert worker.run(entry, folder, upcoming).status == "done"
            outputs[prefetch, entry.case] = (folder / "labels.nii.gz").read_bytes()
    for entry in cases:
        assert outputs[True, entry.case] == outputs[False, entry.case]


def test_another_recipe_is_refused_in_the_same_folder_unless_redo(tmp_path):
    recipe, manifest = make_batch(tmp_path / "data", good=2, bad=False)
    out = tmp_path / "out"
    run_batch(recipe, manifest, out, workers=0)
    other = recipe.with_name("other.yaml")
    other.write_text(recipe.read_text().replace("high: 150", "high: 160"))
    with pytest.raises(SegTruthError, match="different recipe"):
        run_batch(other, manifest, out, workers=0)
    assert sorted(run_batch(other, manifest, out, workers=0, redo=True).done) == ["c00", "c01"]


def test_one_batch_at_a_time_per_folder(tmp_path):
    recipe, manifest = make_batch(tmp_path / "data", good=1, bad=False)
    out = tmp_path / "out"
    out.mkdir()
    with batch_lock(out), pytest.raises(SegTruthError, match=r"another batch .* is writing into this folder"):
        run_batch(recipe, manifest, out, workers=0)


def test_leftovers_of_a_killed_run_are_removed(tmp_path):
    recipe, manifest = make_batch(tmp_path / "data", good=1, bad=False)
    out = tmp_path / "out"
    (out / ".c00.abcd.part").mkdir(parents=True)
    (out / ".c00.abcd.part" / "labels.nii.gz").write_bytes(b"half")
    run_batch(recipe, manifest, out, workers=0)
    assert sorted(p.name for p in out.iterdir()) == [".segtruth-batch.lock", "batch.json", "c00", "summary.csv"]


def test_cases_from_a_folder_a_glob_and_manifest_errors(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for index in range(3):
        write_case(data, f"s{index}", index)
    (data / "s1.seg.nrrd").write_bytes(b"x")
    (data / "notes.txt").write_text("not an image")
    folder = find_cases(data)
    assert [c.case for c in folder] == ["s0", "s1", "s2"]
    assert folder[1].segmentation == (data / "s1.seg.nrrd").absolute() and folder[0].segmentation is None
    assert all(c.images[0].is_absolute() for c in folder)
    assert [c.case for c in find_cases(str(data / "s[01].nii.gz"))] == ["s0", "s1"]
    assert find_cases(str(data / "s1.*"))[0].segmentation is None  # a glob names images only
    with pytest.raises(SegTruthError, match="matches no image files"):
        find_cases(str(data / "*.mha"))
    duplicate = data / "dup.csv"
    duplicate.write_text("case,image,segmentation\na,s0.nii.gz,\na,gone.nii.gz,\n")
    with pytest.raises(SegTruthError, match="case id 'a' is used twice"):
        find_cases(duplicate)
    bad_id = data / "bad.csv"
    bad_id.write_text("case,image,segmentation\na b,gone.nii.gz,\n")
    with pytest.raises(SegTruthError, match="may only hold letters"):
        find_cases(bad_id)


def test_gpu_plan_spreads_workers_and_shares_memory():
    assert gpu_plan(3, []) == [(None, None)] * 3
    assert gpu_plan(2, ["0", "1"]) == [("0", None), ("1", None)]
    assert gpu_plan(3, ["5"]) == [("5", 1 / 3)] * 3
    assert gpu_plan(3, ["0", "1"]) == [("0", 0.5), ("1", None), ("0", 0.5)]


def test_a_worker_that_dies_fails_only_the_case_it_was_running(tmp_path):
    recipe_path, manifest = make_batch(tmp_path / "data", good=8, bad=False)
    recipe = Recipe.read(recipe_path)
    job = BatchJob(recipe, tuple(recipe.outputs), fingerprint(recipe, recipe.outputs))
    out = tmp_path / "out"
    out.mkdir()
    states = []

    def on_state(state):
        if not states:  # kill the first worker that finished a case: it is running (or loading) the next one
            os.kill(int(state.worker.rsplit(":", 1)[1]), signal.SIGKILL)
        states.append(state)

    run_local(job, out, find_cases(manifest), on_state, workers=2, threads=1)
    assert sorted(s.case for s in states) == [f"c{i:02d}" for i in range(8)]  # every case has exactly one record
    crashed = [s for s in states if s.status == "failed"]
    assert len(crashed) <= 1
    for state in crashed:
        assert "the worker process was killed by signal 9 (SIGKILL) while " in state.error
    assert all(read_state(out, s.case).status == s.status for s in states)


def test_model_step_loads_the_model_once_per_worker(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is not installed: the model step cannot run")
    from inference_helpers import write_bright_model

    card = write_bright_model(tmp_path / "model")
    data = tmp_path / "data"
    data.mkdir()
    rows = ["case,image,segmentation"]
    images = {}
    for index in range(4):
        images[f"m{index}"] = np.random.default_rng(index).random((12, 14, 16)).astype(np.float32)
        sitk.WriteImage(sitk.GetImageFromArray(images[f"m{index}"]), str(data / f"m{index}.nii.gz"))
        rows.append(f"m{index},m{index}.nii.gz,")
    (data / "manifest.csv").write_text("\n".join(rows) + "\n")
    recipe = data / "recipe.yaml"
    recipe.write_text(f"steps:\n  - segment: {{model: {card}, device: cpu}}\noutputs: [bright.nii.gz]\n")
    out = tmp_path / "out"
    result = run_batch(recipe, data / "manifest.csv", out, workers=2, device="cpu")
    assert sorted(result.done) == ["m0", "m1", "m2", "m3"]
    for case, image in images.items():
        assert np.array_equal(labels_of(out / case / "bright.nii.gz"), np.where(image > 0.5, 7, 0))
        assert read_state(out, case).models_loaded == 1
    assert len({read_state(out, case).worker for case in images}) <= 2

    from SegTruthLogic.cli import main

    assert main(["run", str(recipe), str(data / "m0.nii.gz"), "-o", str(tmp_path / "single"), "-q"]) == 0
    assert (tmp_path / "single" / "bright.nii.gz").read_bytes() == (out / "m0" / "bright.nii.gz").read_bytes()


def test_a_model_that_does_not_load_stops_the_batch(tmp_path):
    recipe, manifest = make_batch(tmp_path / "data", good=1, bad=False)
    recipe.write_text("steps:\n  - segment: {model: no-such-model}\noutputs: [x.nii.gz]\n")
    with pytest.raises(SegTruthError, match="no-such-model: no such model"):
        run_batch(recipe, manifest, tmp_path / "out", workers=0)
    assert read_state(tmp_path / "out", "c00") is None


def test_slicer_script_runs_the_same_command(tmp_path):
    recipe, manifest = make_batch(tmp_path / "data", good=2, bad=False)
    script = ROOT / "Resources" / "Scripts" / "batch.py"
    done = subprocess.run(
        [sys.executable, str(script), "--", str(recipe), str(manifest), "-o", str(tmp_path / "out"), "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "batch: 2 done, 0 failed" in done.stdout
    assert json.loads((tmp_path / "out" / "c01" / "case.json").read_text())["status"] == "done"
    assert np.array_equal(labels_of(tmp_path / "out" / "c01" / "labels.nii.gz"), expected_labels(1))


def test_add_commands_puts_batch_on_the_segtruth_parser(tmp_path, capsys):
    import argparse

    from SegTruthLogic.batch.commands import add_commands
    from SegTruthLogic.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "batch" not in sub.choices:  # until cli.py wires it

        def command(name, help_text, handler):
            p = sub.add_parser(name, help=help_text, description=help_text)
            p.set_defaults(handler=handler)
            return p

        add_commands(sub, command)
    recipe, manifest = make_batch(tmp_path / "data", good=1, bad=False)
    args = parser.parse_args(["batch", str(recipe), str(manifest), "-o", str(tmp_path / "out"), "--workers", "0"])
    assert args.handler(args) == 0
    captured = capsys.readouterr()
    assert "batch: 1 done, 0 failed" in captured.out
    assert "100%" in captured.err and "done in" in captured.err  # the progress bar


def test_a_segment_step_without_a_model_is_refused_before_any_case(tmp_path):
    recipe, manifest = make_batch(tmp_path / "data", good=1, bad=False)
    recipe.write_text("steps:\n  - segment: {device: cpu}\noutputs: [x.nii.gz]\n")
    with pytest.raises(SegTruthError, match=r"step 1 \(segment\): give the model"):
        run_batch(recipe, manifest, tmp_path / "out", workers=0)


def test_a_two_channel_case_reaches_the_model_as_two_channels(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is not installed: the model step cannot run")
    from inference_helpers import write_bright_model

    card = write_bright_model(tmp_path / "model", input={"channels": 2})
    data = tmp_path / "data"
    data.mkdir()
    first = np.random.default_rng(0).random((10, 12, 14)).astype(np.float32)
    sitk.WriteImage(sitk.GetImageFromArray(first), str(data / "t1.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(1 - first), str(data / "t2.nii.gz"))
    (data / "manifest.csv").write_text("case,image_0000,image_0001,segmentation\nmr,t1.nii.gz,t2.nii.gz,\n")
    recipe = data / "recipe.yaml"
    recipe.write_text(f"steps:\n  - segment: {{model: {card}}}\noutputs: [bright.nii.gz]\n")
    result = run_batch(recipe, data / "manifest.csv", tmp_path / "out", workers=0, device="cpu")
    assert result.done == ["mr"], result.rows
    assert np.array_equal(labels_of(tmp_path / "out" / "mr" / "bright.nii.gz"), np.where(first > 0.5, 7, 0))
    (data / "manifest.csv").write_text("case,image,segmentation\nmr,t1.nii.gz,\n")
    result = run_batch(recipe, data / "manifest.csv", tmp_path / "out", workers=0, redo=True)
    assert result.failed == ["mr"]
    assert "expects 2 input channels" in read_state(tmp_path / "out", "mr").error
