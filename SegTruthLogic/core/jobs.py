"""Background work, one way: a ``Job`` protocol with a thread back end and a process back end.

Both back ends report progress to a callback and to ``progress()`` (for a GUI timer to poll), can be cancelled
from any thread, and end in ``wait()``: the value, or an error that says what happened:

- a ``SegTruthError`` raised by the work (bad input) passes through unchanged; ``Cancelled`` after a cancel;
- any other exception is a bug: it is logged here with its traceback and handed on as a one-sentence
  ``SegTruthError`` chained to it (``__cause__``), so the person reads a sentence and the log keeps the trace.

A thread shares the caller's memory and stops cooperatively: the work checks its ``CancelToken`` between steps.
A process (``ProcessJob``) runs in its own session, so a cancel reaches everything it started: the whole
process group gets SIGTERM (the child can clean up), then SIGKILL after a grace period. Its stdout speaks JSON
lines: ``{"event": "progress", "fraction": f, "message": m}`` updates progress; other events go to ``on_event``.
``run_worker`` is the child's side: SIGTERM stops the work, and an error leaves one line on stderr.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .errors import Cancelled, SegTruthError
from .progress import CancelToken, ProgressCallback

log = logging.getLogger(__name__)

GRACE_S = 5.0  # how long a cancelled process group has to exit after SIGTERM before SIGKILL
POLL_S = 0.02  # how often a process job's watcher looks at the process and the cancel token
STDERR_LINES = 200  # the tail of a worker's stderr kept for its error message and the log


class Job(Protocol):
    """Work running elsewhere; every method is safe to call from any thread."""

    @property
    def done(self) -> bool: ...

    @property
    def cancelled(self) -> bool: ...

    def progress(self) -> tuple[float, str]: ...

    def cancel(self) -> None: ...

    def finished(self, timeout: float | None = None) -> bool: ...

    def wait(self, timeout: float | None = None) -> Any:
        """The work's value once done; raises its error (``Cancelled`` after a cancel), TimeoutError if still running."""
        ...


def _title(what: str) -> str:
    return what[:1].upper() + what[1:]


def unexpected(what: str, error: BaseException) -> SegTruthError:
    """A bug in ``what``: logged with its traceback, returned as a one-sentence error chained to it."""
    log.error("%s failed unexpectedly", _title(what), exc_info=error)
    wrapped = SegTruthError(f"{_title(what)} failed: {type(error).__name__}: {error}")
    wrapped.__cause__ = error
    return wrapped


class _Outcome:
    """State shared by both back ends: progress, the cancel token, and the value or error ``wait`` hands out."""

    def __init__(self, what: str, progress: ProgressCallback | None, cancel: CancelToken | None) -> None:
        self.what = what
        self._callback = progress
        self._token = cancel if cancel is not None else CancelToken()
        self._done = threading.Event()
        self._latest = (0.0, "starting")  # one tuple, replaced whole: a poll never sees half an update
        self._value: Any = None
        self._error: BaseException | None = None

    def _report(self, fraction: float, message: str) -> None:
        self._latest = latest = (min(max(float(fraction), 0.0), 1.0), str(message))
        if self._callback is not None:
            self._callback(*latest)

    def report(self, fraction: float, message: str) -> None:
        """Progress from outside the work itself (a handler parsing a tool's output)."""
        self._report(fraction, message)

    def _settle(self, run: Callable[[], Any]) -> None:
        """Run ``run`` and keep its value or its error, classified as the module doc says; then mark done."""
        try:
            value = run()
            if self._token.cancelled:  # the work ignored a cancel: its value is not taken
                raise Cancelled(self.what)
            self._value = value
        except SegTruthError as error:  # bad input or Cancelled: the message is meant for the person
            self._error = error
        except Exception as error:  # a bug
            self._error = unexpected(self.what, error)
        except BaseException as error:  # SystemExit, KeyboardInterrupt: handed on as they are
            self._error = error
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def finished(self, timeout: float | None = None) -> bool:
        """Block until the work has ended or ``timeout`` passed; whether it has ended (its outcome: ``wait``)."""
        return self._done.wait(timeout)

    @property
    def cancelled(self) -> bool:
        return self._token.cancelled

    def progress(self) -> tuple[float, str]:
        return self._latest

    def cancel(self) -> None:
        """Ask the work to stop; a job already done keeps its outcome."""
        if not self._done.is_set():
            self._token.cancel()

    def stop(self, timeout: float | None = None) -> bool:
        """Cancel and block until the work has ended (True) or ``timeout`` passed (False); raises nothing."""
        self.cancel()
        return self._done.wait(timeout)

    def wait(self, timeout: float | None = None) -> Any:
        if not self._done.wait(timeout):
            raise TimeoutError(f"The {self.what} is still running.")
        if self._error is not None:
            raise self._error
        return self._value


class ThreadJob(_Outcome):
    """``work(progress, cancel) -> value`` in a daemon thread; ``work`` checks ``cancel`` between steps.

    ``cancel``: a token of the caller's to share (a new one by default); ``progress`` is called from the thread.
    """

    def __init__(
        self,
        work: Callable[[ProgressCallback, CancelToken], Any],
        what: str = "job",
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        super().__init__(what, progress, cancel)
        self._thread = threading.Thread(
            target=self._settle, args=(lambda: work(self._report, self._token),), name=f"SegTruth {what}", daemon=True
        )
        self._thread.start()


def describe_exit(code: int) -> str:
    """How a process ended, for a sentence: "was killed by signal 9 (SIGKILL)", "exited with code 1"."""
    if code < 0:
        try:
            return f"was killed by signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _signal_group(group: int, signum: int) -> bool:
    """Send ``signum`` to a process group; False when no process of it is left."""
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member changed its user: the others were signalled
        return True
    return True


def end_process_tree(process: subprocess.Popen, grace: float = GRACE_S) -> None:
    """End a process started in its own session and everything it started: SIGTERM, then SIGKILL after ``grace``.

    Ending only the direct child would leave its own children (a launcher's interpreter, a data loader's
    workers) running and holding memory; the group holds them all, even after the child itself has exited.
    """
    if os.name != "posix":  # no process groups to signal: the direct child only
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return
    group = process.pid  # start_new_session=True made the child the leader of its own group
    if not _signal_group(group, signal.SIGTERM):
        process.poll()
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()  # reap the child, or its zombie keeps the group alive
        if not _signal_group(group, 0):
            return
        time.sleep(POLL_S)
    _signal_group(group, signal.SIGKILL)
    process.wait()


class ProcessJob(_Outcome):
    """A command in a child process of its own session; ``wait()`` gives ``result()`` (default: None).

    ``on_event(event)`` gets each JSON event other than progress, ``on_line(text)`` each other line of stdout (a
    tool that does not speak JSON: its own parser reports progress); ``failure(code, stderr_lines)`` turns a
    non-zero exit into the error to raise (default: one sentence with the exit and stderr's last line).
    """

    def __init__(
        self,
        command: Sequence[str],
        what: str = "job",
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        on_event: Callable[[dict], None] | None = None,
        on_line: Callable[[str], None] | None = None,
        result: Callable[[], Any] | None = None,
        failure: Callable[[int, list[str]], SegTruthError] | None = None,
        env: dict[str, str] | None = None,
        grace: float = GRACE_S,
    ) -> None:
        super().__init__(what, progress, cancel)
        self.command = [str(part) for part in command]
        self._on_event, self._on_line, self._result, self._failure = on_event, on_line, result, failure
        self._grace = grace
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._reader_error: BaseException | None = None
        self._halt = threading.Event()  # a handler failed: end the process without touching the caller's token
        self.process: subprocess.Popen | None = None
        if self._token.cancelled:  # cancelled before it started: start nothing
            self._settle(self._watch)
            return
        try:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                bufsize=1,
                env=env,
                start_new_session=os.name == "posix",
            )
        except OSError as error:
            raise SegTruthError(f"{self.command[0]}: could not start the {what} process ({error}).") from error
        self._readers = [
            threading.Thread(target=self._read_stdout, name=f"SegTruth {what} stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name=f"SegTruth {what} stderr", daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        threading.Thread(target=self._settle, args=(self._watch,), name=f"SegTruth {what}", daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = None
            try:
                if not isinstance(event, dict):
                    log.debug("%s worker: %s", self.what, line.rstrip())
                    if self._on_line is not None:
                        self._on_line(line.rstrip("\n"))
                elif event.get("event") == "progress":
                    self._report(float(event["fraction"]), str(event["message"]))
                elif self._on_event is not None:
                    self._on_event(event)
            except Exception as error:  # a bug in a handler: stop the work, hand the bug on
                if self._reader_error is None:
                    self._reader_error = error
                self._halt.set()

    def _read_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr.append(line.rstrip("\n"))

    def _watch(self) -> Any:
        process = self.process
        if process is None:
            raise Cancelled(self.what)
        while process.poll() is None and not self._token.cancelled and not self._halt.is_set():
            time.sleep(POLL_S)
        if self._token.cancelled or self._halt.is_set():  # also once the child has exited: what it started may run
            end_process_tree(process, self._grace)
        for reader in self._readers:
            reader.join(timeout=5)  # a grandchild left running may hold the pipes open
        if self._reader_error is not None:
            raise self._reader_error
        if self._token.cancelled:
            raise Cancelled(self.what)
        code = process.returncode
        if code != 0:
            lines = list(self._stderr)
            if any(line.startswith("Traceback (most recent call last)") for line in lines):
                log.error("%s worker process %s:\n%s", _title(self.what), describe_exit(code), "\n".join(lines))
            raise self._failure(code, lines) if self._failure is not None else self._default_failure(code, lines)
        self._report(1.0, "done")
        return self._result() if self._result is not None else None

    def _default_failure(self, code: int, lines: list[str]) -> SegTruthError:
        last = next((line.strip() for line in reversed(lines) if line.strip()), "no message")
        return SegTruthError(f"{_title(self.what)} failed in its worker process, which {describe_exit(code)}: {last}")


WORKER_EXIT_ERROR, WORKER_EXIT_CANCELLED = 1, 130


def worker_error(code: int, lines: list[str]) -> SegTruthError:
    """A ``ProcessJob`` ``failure`` for ``run_worker`` children: their one stderr line, without its prefix."""
    last = next((line.strip() for line in reversed(lines) if line.strip()), f"exit code {code}")
    return SegTruthError(last.removeprefix("segtruth: error: ").removeprefix("segtruth: "))


def run_worker(work: Callable[[], int], what: str, cancel: CancelToken | None = None) -> int:
    """A worker process's main: ``work()``'s exit code; SIGTERM (a ``ProcessJob``'s cancel) stops it.

    With ``cancel``, SIGTERM sets the token and the work stops at its next check (a training ends its batch and
    keeps its last checkpoint); without one, SIGTERM raises ``Cancelled`` where the work is, unwinding its
    ``finally`` blocks. Bad input or a cancel: one line on stderr, exit 1 or 130 (``ProcessJob`` reads the line).
    """

    def stop(_signum, _frame) -> None:
        if cancel is None:
            raise Cancelled(what)
        cancel.cancel()

    signal.signal(signal.SIGTERM, stop)
    try:
        return work()
    except Cancelled as error:
        print(f"segtruth: {error}", file=sys.stderr)
        return WORKER_EXIT_CANCELLED
    except SegTruthError as error:
        print(f"segtruth: error: {error}", file=sys.stderr)
        return WORKER_EXIT_ERROR
