"""The local engine: N worker processes on this machine, each with its own scene and models, fed by the driver.

The driver hands each worker two cases (the one it runs and the one it loads meanwhile) and one more each time
it finishes one, so it always knows which cases a worker holds, and the worker tells it what it does with each
(reading which files, which recipe step). If a worker dies (a native reader aborting on a damaged file, a
segfault, the out-of-memory killer), the one case it was busy with is recorded as failed with what killed the
worker and what it was doing; the others go back to the queue and a new worker takes over. When it was busy
with two (running one case while reading the next), neither is blamed: both run again, each alone on a worker,
so only the guilty one fails. A worker that dies before it is ready stops the batch (every case would kill it).
Workers publish each case's folder themselves (outputs, log, record; see state.py), so the driver only counts.
If the driver dies, even by SIGKILL, its workers die with it (Linux: the kernel's parent-death signal;
elsewhere: they notice their parent is gone within a second).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

from ..core.errors import SegTruthError
from ..core.progress import CancelToken
from ..dataset.manifest import CaseEntry
from .state import FAILED, CaseState, now, read_state, write_case_folder, write_failed_case
from .work import BatchJob, limit_threads

LOOKAHEAD = 2  # cases a worker holds: the one running and the one loading


def gpu_plan(workers: int, visible: list[str]) -> list[tuple[str | None, float | None]]:
    """Worker i uses GPU i mod n; workers sharing a GPU each get an equal share of its memory (None: no cap)."""
    if not visible:
        return [(None, None)] * workers
    plan: list[tuple[str | None, float | None]] = []
    for index in range(workers):
        sharing = len(range(index % len(visible), workers, len(visible)))
        plan.append((visible[index % len(visible)], 1.0 / sharing if sharing > 1 else None))
    return plan


def visible_gpus() -> list[str]:
    """The CUDA devices this process may use, as CUDA_VISIBLE_DEVICES names them (none without CUDA)."""
    try:
        import torch
    except ImportError:
        return []
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return listed[:count] if listed else [str(index) for index in range(count)]


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this worker when the driver dies, however it dies."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the driver died before the request took effect
        os._exit(1)


def _message(error: BaseException) -> str:
    return str(error) if isinstance(error, SegTruthError) else f"{type(error).__name__}: {error}"


def worker_main(
    conn: Connection,
    job: BatchJob,
    outdir: str,
    threads: int,
    gpu: str | None,
    memory_fraction: float | None,
    parent: int,
) -> None:
    """A worker process: set up once (threads, GPU, scenes, models), then run the cases the driver sends."""
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle; it stops the workers
    limit_threads(threads)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    try:
        from .work import Worker

        if memory_fraction is not None:
            import torch

            if torch.cuda.is_available():
                torch.cuda.set_per_process_memory_fraction(memory_fraction)
        worker = Worker(job)
        worker.warm_up()
    except BaseException as error:
        conn.send(("fatal", _message(error)))
        return
    lock = threading.Lock()  # the prefetch thread reports its reading too

    def send(message) -> None:
        with lock:
            conn.send(message)

    worker.on_activity = lambda case, text: send(("activity", (case, text)))
    send(("ready", worker.name))
    inbox: deque[CaseEntry] = deque()
    stopping = False
    try:
        while True:
            while True:  # take what the driver sent; wait only when there is nothing to run
                if inbox or stopping:
                    if not conn.poll():
                        break
                elif not conn.poll(1.0):
                    if os.getppid() != parent:
                        return
                    continue
                message = conn.recv()
                if message is None:
                    stopping = True
                else:
                    inbox.append(message)
            if not inbox:
                return
            entry = inbox.popleft()
            upcoming = inbox[0] if inbox else None
            send(("started", entry.case))
            state = write_case_folder(
                Path(outdir), entry.case, lambda folder, e=entry, u=upcoming: worker.run(e, folder, u)
            )
            send(("finished", state))
    except (EOFError, BrokenPipeError):
        return
    except BaseException as error:  # writing a case folder failed (disk full, permissions): the batch must stop
        with contextlib.suppress(OSError):
            send(("fatal", _message(error)))


@dataclass
class _Slot:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    held: deque[CaseEntry] = field(default_factory=deque)
    busy: dict[str, str] = field(default_factory=dict)  # case -> what the worker is doing with it now
    ready: bool = False
    closed: bool = False


def death(exitcode: int | None) -> str:
    """How a process ended, for a sentence: "was killed by signal 6 (SIGABRT)", "exited with code 1"."""
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            return f"was killed by signal {-exitcode}"
        return f"was killed by signal {-exitcode} ({name})"
    return f"exited with code {exitcode}"


def record_crash(outdir: Path, job: BatchJob, entry: CaseEntry, why: str) -> CaseState:
    """A case whose worker died: recorded as failed (with a log) so the batch report and a re-run see it.

    A worker that died just after publishing the case's folder finished it: that record stands.
    """
    published = read_state(outdir, entry.case)
    if published is not None and published.recipe == job.fingerprint and published.finished >= job.started:
        return published
    state = CaseState(
        entry.case,
        FAILED,
        error=f"{entry.describe()}: {why}",
        images=[str(p) for p in entry.images],
        segmentation=str(entry.segmentation) if entry.segmentation else None,
        recipe=job.fingerprint,
        engine=job.engine,
        finished=now(),
    )
    return write_failed_case(outdir, state, state.error)


def run_local(
    job: BatchJob,
    outdir: Path,
    cases: list[CaseEntry],
    on_state: Callable[[CaseState], None],
    workers: int,
    threads: int,
    gpus: list[str] | None = None,
    cancel: CancelToken | None = None,
) -> None:
    """Run ``cases`` on ``workers`` processes; ``on_state`` gets each case's record as it finishes."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no VTK or CUDA state copied by fork
    plan = gpu_plan(workers, gpus or [])
    queue: deque[CaseEntry] = deque(cases)
    slots: list[_Slot] = []
    suspects: set[str] = set()  # cases a dead worker was busy with beside another: each runs alone next time
    remaining = len(cases)

    def start(index: int) -> _Slot:
        here, there = context.Pipe(duplex=True)
        gpu, fraction = plan[index % len(plan)]
        process = context.Process(
            target=worker_main,
            args=(there, job, str(outdir), threads, gpu, fraction, os.getpid()),
            name=f"segtruth-batch-{index}",
            daemon=True,
        )
        process.start()
        there.close()
        slot = _Slot(process, here)
        slots.append(slot)
        feed(slot)
        return slot

    def feed(slot: _Slot) -> None:
        if slot.closed:
            return
        while len(slot.held) < LOOKAHEAD and queue:
            if any(e.case in suspects for e in slot.held) or (slot.held and queue[0].case in suspects):
                break  # a suspect is neither read nor run beside another case
            entry = queue.popleft()
            slot.held.append(entry)
            slot.conn.send(entry)
        if not queue and not slot.closed:
            slot.conn.send(None)  # no more cases: the worker stops once it has run what it holds
            slot.closed = True

    def lost(slot: _Slot) -> None:
        """A worker died: fail the case it was busy with, give the others back, start a replacement if needed."""
        nonlocal remaining
        slots.remove(slot)
        slot.conn.close()
        slot.process.join(timeout=5)
        how = death(slot.process.exitcode)
        if not slot.ready:
            raise SegTruthError(f"A batch worker process {how} while starting, before it could run any case.")
        busy = [entry for entry in slot.held if entry.case in slot.busy]
        for entry in reversed(slot.held):
            if len(busy) == 1 and entry is busy[0]:
                why = f"the worker process {how} while {slot.busy[entry.case]}."
                on_state(record_crash(outdir, job, entry, why))
                remaining -= 1
            else:
                queue.appendleft(entry)
        if len(busy) > 1:
            suspects.update(entry.case for entry in busy)
        if queue:  # workers already told 'no more cases' are left to finish; a new one takes the returned cases
            for other in slots:
                feed(other)
            if len(slots) < workers or all(other.closed for other in slots):
                start(len(slots))

    def receive(slot: _Slot, kind: str, payload) -> None:
        nonlocal remaining
        if kind == "fatal":
            raise SegTruthError(payload)
        if kind == "ready":
            slot.ready = True
        elif kind == "started":
            slot.busy.setdefault(payload, "running this case")  # a prefetch may still be reading it
        elif kind == "activity":
            case, text = payload
            if text is None:
                slot.busy.pop(case, None)
            else:
                slot.busy[case] = text
        elif kind == "finished":
            slot.held.popleft()
            slot.busy.pop(payload.case, None)
            remaining -= 1
            on_state(payload)
            feed(slot)

    try:
        for index in range(min(workers, len(cases))):
            start(index)
        while remaining > 0:
            if cancel is not None:
                cancel.raise_if_cancelled("batch")
            if not slots:
                raise SegTruthError("Every batch worker stopped before the cases were done.")
            ready = wait([s.conn for s in slots] + [s.process.sentinel for s in slots], timeout=1.0)
            for slot in list(slots):
                if slot.conn in ready:
                    try:
                        kind, payload = slot.conn.recv()
                    except (EOFError, OSError):
                        lost(slot)
                        continue
                    receive(slot, kind, payload)
                elif slot.process.sentinel in ready and not slot.conn.poll():
                    if slot.held:
                        lost(slot)
                    else:
                        slots.remove(slot)
    finally:
        _stop(slots)


def _stop(slots: list[_Slot]) -> None:
    """Stop the workers: those with nothing left exit by themselves; others are terminated (a re-run redoes them)."""
    deadline = time.monotonic() + 10
    for slot in slots:
        if slot.held:
            slot.process.terminate()
    for slot in slots:
        slot.process.join(timeout=max(deadline - time.monotonic(), 0.1))
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join(timeout=5)
        slot.conn.close()
