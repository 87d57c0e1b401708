"""A batch killed midway by a signal: no visible case is half-written, and the re-run does exactly the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_batch_support import expected_labels, labels_of, make_batch

from SegTruthLogic.batch import run_batch
from SegTruthLogic.batch.state import STATE_FILE, read_state

CASES = 60
SHAPE = (24, 28, 32)


def finished(outdir: Path) -> dict[str, tuple[str, str, int]]:
    """Visible case folders: case -> (worker, finish time, inode of its record)."""
    found = {}
    for folder in outdir.iterdir():
        if folder.is_dir() and not folder.name.startswith("."):
            state = read_state(outdir, folder.name)
            assert state is not None, f"{folder} is visible but has no record"
            found[folder.name] = (state.worker, state.finished, (folder / STATE_FILE).stat().st_ino)
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_kill_midway_then_rerun_does_each_case_once(tmp_path, signum):
    recipe, manifest = make_batch(tmp_path / "data", good=CASES, bad=False, shape=SHAPE)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "SegTruthLogic.batch", str(recipe), str(manifest), "-o", str(out)]
    batch = subprocess.Popen([*command, "--workers", "2", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and batch.poll() is None:
        if out.is_dir() and len([p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]) >= 4:
            break
        time.sleep(0.02)
    assert batch.poll() is None, "the batch ended before it could be killed midway"
    os.kill(batch.pid, signum)
    _, stderr = batch.communicate(timeout=60)
    if signum == signal.SIGTERM:
        assert batch.returncode == 130
        assert "run the same command again to go on" in stderr.decode()
        assert not list(out.glob(".*.part*")), "a stopped batch removes the cases it was running"
    else:
        assert batch.returncode == -signal.SIGKILL
        time.sleep(2)  # the workers die with the driver: nothing is published after the kill
    before = finished(out)
    assert 4 <= len(before) < CASES
    assert before == finished(out)
    for case in before:  # whatever is visible is complete: every output, readable, with the recorded size
        state = read_state(out, case)
        assert state.status == "done"
        for name, size in state.outputs.items():
            assert (out / case / name).stat().st_size == size
        assert np.array_equal(labels_of(out / case / "labels.nii.gz"), expected_labels(int(case[1:]), SHAPE))

    again = run_batch(recipe, manifest, out, workers=0)
    assert sorted(again.skipped_done) == sorted(before)
    assert sorted(again.done) == sorted(set(f"c{i:02d}" for i in range(CASES)) - set(before))
    assert not again.failed
    after = finished(out)
    assert {case: after[case] for case in before} == before  # the finished cases were not touched again
    assert len(after) == CASES
    assert not list(out.glob(".*.part*"))
