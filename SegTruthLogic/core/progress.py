"""Progress reporting and cooperative cancellation for long work (grow from seeds, batch, inference)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from .errors import Cancelled

ProgressCallback = Callable[[float, str], None]
"""Called with a fraction in [0, 1] and a short message."""


@dataclass
class CancelToken:
    """Set from any thread (a GUI button, a signal handler); long work checks it between steps."""

    _event: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self, what: str = "operation") -> None:
        if self._event.is_set():
            raise Cancelled(what)


def report(progress: ProgressCallback | None, fraction: float, message: str) -> None:
    """Call the progress callback if there is one."""
    if progress is not None:
        progress(min(max(fraction, 0.0), 1.0), message)


# -- on a terminal -------------------------------------------------------------------------------------------------
class ProgressBar:
    """A bar with the fraction done and the time left: redrawn in place on a terminal, one line per step otherwise."""

    def __init__(self, stream: TextIO | None = None, width: int = 24) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.start: float | None = None
        self.tty = self.stream.isatty()

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if self.start is None:
            self.start = now
        elapsed = now - self.start
        filled = round(self.width * fraction)
        bar = "#" * filled + "." * (self.width - filled)
        if fraction >= 1.0:
            timing = f"done in {_clock(elapsed)}"
        elif fraction > 0:
            timing = f"ETA {_clock(elapsed * (1 - fraction) / fraction)}"
        else:
            timing = "ETA --:--"
        line = f"[{bar}] {fraction * 100:3.0f}%  {timing}  {message}"
        if self.tty:
            self.stream.write("\r" + line[:110].ljust(110) + ("\n" if fraction >= 1.0 else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def progress_bar(quiet: bool) -> ProgressCallback | None:
    return None if quiet else ProgressBar()


# -- for a parent process ------------------------------------------------------------------------------------------
def json_progress(fraction: float, message: str) -> None:
    """One JSON line on stdout per step: what ``core.jobs.ProcessJob`` reads from a worker process."""
    print(json.dumps({"event": "progress", "fraction": round(fraction, 4), "message": message}), flush=True)


def progress_printer(quiet: bool, as_json: bool = False) -> ProgressCallback | None:
    """A command's progress: JSON lines for a parent process (a worker's ``--progress-json``), else the bar."""
    return json_progress if as_json else progress_bar(quiet)
