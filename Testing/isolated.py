"""Run a ``segtruth`` command, or any reader, in its own process, cheaply, and see how it ended.

A bad input must never kill the process (a signal inside Slicer's or ITK's C++ readers), hang it, or end in a
traceback. Seeing that needs a separate process per case; starting Python and importing Slicer costs seconds,
so a fork server imports SegTruth once and forks one child per case (tens of milliseconds each).

    outcome = run_cli(["info", "broken.seg.nrrd"])
    assert outcome.returncode == 1 and outcome.one_error_line
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from SegTruthLogic.cli import main

_context = multiprocessing.get_context("forkserver")
_starting = threading.Lock()
# torch too where it is installed (a missing module is skipped): model commands then start as fast as the rest.
_context.set_forkserver_preload(["SegTruthLogic.cli", "slicer", "SimpleITK", "vtk", "numpy", "torch"])


@dataclass
class Outcome:
    """How a child process ended: its exit code (negative: the signal that killed it), its output."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def killed_by_signal(self) -> bool:
        return self.returncode is not None and self.returncode < 0

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("segtruth: error: ")]

    @property
    def one_error_line(self) -> bool:
        """stderr ends with exactly one ``segtruth: error:`` line and holds no traceback."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return (
            len(self.error_lines) == 1
            and bool(lines)
            and lines[-1].startswith("segtruth: error: ")
            and "Traceback" not in self.stderr
        )

    def describe(self) -> str:
        how = "timed out" if self.timed_out else f"exit {self.returncode}"
        return f"{how}\n--- stdout\n{self.stdout[-2000:]}\n--- stderr\n{self.stderr[-4000:]}"


def _child(function: Callable[..., Any], args: tuple, cwd: str | None, out: str, err: str, status: str) -> None:
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        os.dup2(stdout.fileno(), 1)
        os.dup2(stderr.fileno(), 2)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115 - lives as long as the child
    sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    if cwd:
        os.chdir(cwd)
    code = 0
    try:
        result = function(*args)
        code = result if isinstance(result, int) else 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 99  # an exception escaped: distinct from every exit code SegTruth uses
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    Path(status).write_text(str(code))  # the fork server's report of it can be lost (then it says 255)
    os._exit(code)


def run_isolated(
    function: Callable[..., Any], *args: Any, timeout: float = 120.0, cwd: str | Path | None = None
) -> Outcome:
    """Call ``function(*args)`` (module-level, picklable) in a forked child; its return value is the exit code."""
    with tempfile.TemporaryDirectory(prefix="segtruth-isolated-") as folder:
        out, err, status = (os.path.join(folder, name) for name in ("stdout", "stderr", "status"))
        process = _context.Process(target=_child, args=(function, args, str(cwd) if cwd else None, out, err, status))
        with _starting:  # one start at a time: the fork server's protocol is not meant for concurrent requests
            process.start()
        process.join(timeout)
        timed_out = process.is_alive()
        if timed_out:
            process.kill()
            process.join()

        def read(path: str) -> str:
            return Path(path).read_text(encoding="utf-8", errors="replace") if os.path.exists(path) else ""

        code = None if timed_out else process.exitcode
        if code == 255 and read(status).strip():
            code = int(read(status))  # the child ended normally with this code; only its report went missing
        return Outcome(code, read(out), read(err), timed_out)


def cli_main(argv: Sequence[str]) -> int:
    return main(list(argv))


def run_cli(argv: Sequence[str], timeout: float = 120.0, cwd: str | Path | None = None) -> Outcome:
    """``segtruth ARGV`` in a child process, as a user's shell would run it."""
    return run_isolated(cli_main, [str(a) for a in argv], timeout=timeout, cwd=cwd)
