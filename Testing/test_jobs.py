"""The job runner's two back ends: progress, cancel (a process's whole tree), and how errors reach the caller."""

from __future__ import annotations

import logging
import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from SegTruthLogic.core.errors import Cancelled, SegTruthError
from SegTruthLogic.core.jobs import Job, ProcessJob, ThreadJob, describe_exit
from SegTruthLogic.core.progress import CancelToken

posix_only = pytest.mark.skipif(os.name != "posix", reason="process groups are POSIX")


def alive(pid: int) -> bool:
    """Whether a process still runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def python(script: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(script)]


def steps(count: int, delay: float = 0.0):
    def work(progress, cancel):
        for step in range(count):
            cancel.raise_if_cancelled("counting")
            time.sleep(delay)
            progress((step + 1) / count, f"step {step + 1}")
        return count

    return work


# -- progress --------------------------------------------------------------------------------------------------------
def test_thread_progress_reaches_the_callback_and_the_poll():
    seen: list[tuple[float, str]] = []
    job: Job = ThreadJob(steps(4), "counting", progress=lambda f, m: seen.append((f, m)))
    assert job.wait(10) == 4
    assert seen == [(0.25, "step 1"), (0.5, "step 2"), (0.75, "step 3"), (1.0, "step 4")]
    assert job.done and job.progress() == (1.0, "step 4")


def test_finished_waits_for_the_end_or_the_timeout():
    release = threading.Event()
    job: Job = ThreadJob(lambda progress, cancel: release.wait(10), "waiting")
    start = time.perf_counter()
    assert not job.finished(0.05)  # still running: back after the timeout
    assert time.perf_counter() - start >= 0.05
    release.set()
    assert job.finished(10) and job.wait(0) is True  # back as soon as the work ended


def test_process_progress_reaches_the_callback_and_other_events_their_handler():
    seen: list[tuple[float, str]] = []
    events: list[dict] = []
    script = """
        import json
        for n in (1, 2):
            print(json.dumps({"event": "progress", "fraction": n / 4, "message": f"tile {n}"}), flush=True)
        print("a line that is not JSON", flush=True)
        print(json.dumps({"event": "notice", "message": "spacing differs"}), flush=True)
    """
    job: Job = ProcessJob(
        python(script), "tiling", progress=lambda f, m: seen.append((f, m)), on_event=events.append, result=lambda: 7
    )
    assert job.wait(30) == 7
    assert seen == [(0.25, "tile 1"), (0.5, "tile 2"), (1.0, "done")]
    assert events == [{"event": "notice", "message": "spacing differs"}]


# -- cancel ----------------------------------------------------------------------------------------------------------
def test_cancel_of_a_thread_job_raises_cancelled():
    job = ThreadJob(steps(10_000, 0.001), "counting")
    while job.progress()[0] == 0.0:
        time.sleep(0.001)
    job.cancel()
    with pytest.raises(Cancelled, match=r"^The counting was cancelled\.$"):
        job.wait(10)
    assert job.cancelled and 0.0 < job.progress()[0] < 1.0


def test_a_thread_job_that_ignores_cancel_gives_no_value_and_a_shared_token_cancels_it():
    started, release = threading.Event(), threading.Event()

    def stubborn(progress, cancel):
        started.set()
        release.wait(10)
        return "value"

    token = CancelToken()
    job = ThreadJob(stubborn, "stubborn work", cancel=token)
    started.wait(10)
    token.cancel()
    release.set()
    with pytest.raises(Cancelled):
        job.wait(10)
    finished = ThreadJob(steps(1), "counting")
    assert finished.wait(10) == 1
    finished.cancel()  # a job already done keeps its outcome
    assert finished.wait(0) == 1 and not finished.cancelled


GRANDPARENT = """
    import json, signal, subprocess, sys, time
    if {ignore_term}:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # and the grandchild inherits the ignored signal
    grandchild = subprocess.Popen(["sleep", "60"])
    print(json.dumps({{"event": "started", "pid": grandchild.pid}}), flush=True)
    time.sleep(60)
"""


@posix_only
@pytest.mark.parametrize("ignore_term", [False, True], ids=["terminated", "killed-after-grace"])
def test_cancel_of_a_process_job_ends_the_grandchild_too(ignore_term):
    pids: list[int] = []
    job = ProcessJob(
        python(GRANDPARENT.format(ignore_term=ignore_term)),
        "sleeping",
        on_event=lambda event: pids.append(event["pid"]),
        grace=0.5,
    )
    try:
        deadline = time.monotonic() + 30
        while not pids and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pids and alive(pids[0]) and alive(job.process.pid)
        began = time.monotonic()
        job.cancel()
        with pytest.raises(Cancelled, match=r"^The sleeping was cancelled\.$"):
            job.wait(20)
        took = time.monotonic() - began
        assert not alive(job.process.pid)
        deadline = time.monotonic() + 5  # the grandchild was killed; its new parent reaps it
        while alive(pids[0]) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not alive(pids[0])
        assert job.process.returncode == (-signal.SIGKILL if ignore_term else -signal.SIGTERM)
        assert took >= 0.5 if ignore_term else took < 10  # SIGKILL only after the grace period
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_process_job_cancelled_before_it_starts_starts_nothing(tmp_path):
    token = CancelToken()
    token.cancel()
    marker = tmp_path / "ran"
    job = ProcessJob(python(f"open({str(marker)!r}, 'w').close()"), "marking", cancel=token)
    with pytest.raises(Cancelled):
        job.wait(5)
    assert job.process is None and not marker.exists()


# -- errors ----------------------------------------------------------------------------------------------------------
def test_an_unexpected_exception_is_logged_with_its_traceback_and_chained(caplog):
    def buggy_work(progress, cancel):
        return {}["missing key"]

    with caplog.at_level(logging.ERROR, logger="SegTruthLogic.core.jobs"):
        job = ThreadJob(buggy_work, "counting")
        with pytest.raises(SegTruthError, match=r"^Counting failed: KeyError: 'missing key'$") as raised:
            job.wait(10)
    assert isinstance(raised.value.__cause__, KeyError)
    [record] = [r for r in caplog.records if r.name == "SegTruthLogic.core.jobs"]
    assert record.exc_info is not None and record.exc_info[1] is raised.value.__cause__
    assert "Traceback (most recent call last)" in caplog.text and "in buggy_work" in caplog.text


def test_a_segtruth_error_passes_unchanged_and_is_not_logged(caplog):
    error = SegTruthError("scan.nrrd: the file is empty.")

    def work(progress, cancel):
        raise error

    with caplog.at_level(logging.DEBUG, logger="SegTruthLogic.core.jobs"):
        job = ThreadJob(work, "reading")
        with pytest.raises(SegTruthError) as raised:
            job.wait(10)
    assert raised.value is error and raised.value.__cause__ is None
    assert not caplog.records


def test_a_bug_in_an_event_handler_stops_the_process_and_is_chained(caplog):
    script = """
        import json, time
        print(json.dumps({"event": "notice"}), flush=True)
        time.sleep(60)
    """
    token = CancelToken()
    job = ProcessJob(python(script), "tiling", on_event=lambda event: event["message"], cancel=token, grace=0.5)
    failed = pytest.raises(SegTruthError, match=r"^Tiling failed: KeyError: 'message'$")
    with caplog.at_level(logging.ERROR, logger="SegTruthLogic.core.jobs"), failed as raised:
        job.wait(20)
    assert isinstance(raised.value.__cause__, KeyError)
    assert "in <lambda>" in caplog.text
    assert not alive(job.process.pid) and not token.cancelled  # the caller's token is left as it was


def test_a_failed_process_says_how_it_ended_and_logs_the_child_traceback(caplog):
    script = """
        import sys
        print("reading scan.nrrd", file=sys.stderr)
        raise ValueError("scan.nrrd: no voxels")
    """
    with caplog.at_level(logging.ERROR, logger="SegTruthLogic.core.jobs"):
        job = ProcessJob(python(script), "reading")
        with pytest.raises(SegTruthError) as raised:
            job.wait(30)
    assert str(raised.value) == (
        "Reading failed in its worker process, which exited with code 1: ValueError: scan.nrrd: no voxels"
    )
    assert "Traceback (most recent call last)" in caplog.text and "reading scan.nrrd" in caplog.text
    sentence = ProcessJob(
        python("import sys; sys.exit('segtruth: error: scan.nrrd: empty.')"),
        "reading",
        failure=lambda code, lines: SegTruthError(f"{lines[-1].removeprefix('segtruth: error: ')} ({code})"),
    )
    with pytest.raises(SegTruthError, match=r"^scan.nrrd: empty. \(1\)$"):
        sentence.wait(30)


def test_a_command_that_cannot_start_is_one_sentence(tmp_path):
    missing = tmp_path / "no-such-python"
    with pytest.raises(SegTruthError, match=r"no-such-python: could not start the reading process \(") as raised:
        ProcessJob([missing, "-c", "pass"], "reading")
    assert isinstance(raised.value.__cause__, OSError)


def test_describe_exit():
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(-9) == "was killed by signal 9 (SIGKILL)"
    assert describe_exit(-200) == "was killed by signal 200"
