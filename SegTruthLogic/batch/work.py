"""One case of a batch, and the state a process keeps between cases (scenes, loaded models, the next case).

The same ``Worker`` runs in a local worker process, in a Ray task's process, and in the Slicer application
(``--workers 0``), so every engine writes the same bytes. Headless, a worker keeps two scenes: while the recipe
runs on one case, a thread loads the next case into the other scene (reading and decompressing an image is
mostly I/O and zlib, which leave the interpreter free).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import Cancelled, SegTruthError
from ..core.progress import CancelToken
from ..dataset.manifest import CaseEntry
from ..workflow.recipe import TOOLS
from .state import DONE, FAILED, LOG_FILE, CaseState, now

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",
)


@dataclass(frozen=True)
class BatchJob:
    """What every case of a batch runs; picklable, sent once to each worker."""

    recipe: object  # recipe.Recipe
    outputs: tuple[str, ...]
    fingerprint: str
    device: str | None = None
    engine: str = "local"
    started: str = field(default_factory=now)  # records finished since then belong to this run
    tools: tuple[tuple[str, str], ...] = ()  # the recipe.TOOLS entries its steps use (taken from the recipe)

    def __post_init__(self) -> None:
        if not self.tools:
            object.__setattr__(self, "tools", step_tools(self.recipe))


def step_tools(recipe) -> tuple[tuple[str, str], ...]:
    """The ``recipe.TOOLS`` entries of the recipe's steps, as this process knows them.

    A step the caller registered in ``TOOLS`` must run in worker processes too, which start with the built-in
    table only: the job carries the entries and each ``Worker`` registers them.
    """
    names = sorted({step.name.replace("-", "_") for step in recipe.steps})
    return tuple((name, TOOLS[name]) for name in names if name in TOOLS)


def limit_threads(threads: int) -> None:
    """Cap the compute threads of one worker, so N workers share the cores instead of fighting over them.

    Environment variables must be set before torch/ITK start (worker processes call this first thing); the
    library calls catch what was already imported.
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    try:
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    except ImportError:  # pragma: no cover - SimpleITK is a dependency
        pass


@dataclass
class _Loaded:
    """A case loaded into a scene (or the error loading it raised), with the seconds it took."""

    case: object | None = None
    error: BaseException | None = None
    seconds: float = 0.0


@dataclass
class Worker:
    """A process's reusable state: its scene(s), loaded models (see inference.recipe_step), and the case being prefetched.

    ``on_activity(case, text)`` hears what the worker is doing with a case ("reading FILES", "running the recipe
    (step 2/3: margin)", ``None`` when a prefetch read ends), from either thread: a local worker forwards it to
    the driver, which can then say what a worker was doing when it died, and with which case.
    """

    job: BatchJob
    prefetch: bool = True
    sessions: list = field(default_factory=list)
    on_activity: Callable[[str, str | None], None] | None = None
    _turn: int = 0
    _next: tuple[CaseEntry, threading.Thread, _Loaded] | None = None

    def __post_init__(self) -> None:
        from ..inference.recipe_step import override_device
        from ..scene.session import Session

        TOOLS.update(dict(self.job.tools))
        override_device(self.job.device)
        first = Session.create()
        self.sessions = [first]
        if self.prefetch and first.headless:
            self.sessions.append(Session.new_headless())
        self.prefetch = len(self.sessions) == 2
        # Inside the Slicer application the scene may hold a person's work: only the batch's own nodes go.
        self._keep = set() if first.headless else {node.GetID() for node in _nodes(first.scene)}

    def _reset(self, session) -> None:
        """Empty the scene for the next case (inside Slicer: remove only what the batch added)."""
        if session.headless:
            session.clear()
            return
        for node in _nodes(session.scene):
            if node.GetID() not in self._keep and session.scene.IsNodePresent(node):
                session.scene.RemoveNode(node)
        session._editor = None  # its parameter node was one of the batch's nodes

    @property
    def name(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}"

    def warm_up(self) -> None:
        """Load the recipe's models now: a model that cannot load stops the batch instead of failing every case."""
        from ..inference.recipe_step import loaded_model, recipe_models

        for model in recipe_models(self.job.recipe):
            loaded_model(model)

    def _report(self, case: str, text: str | None) -> None:
        if self.on_activity is not None:
            self.on_activity(case, text)

    # -- loading --------------------------------------------------------------------------------------------
    def _load(self, entry: CaseEntry, session) -> _Loaded:
        from ..inference.recipe_step import CHANNEL_REFERENCE
        from ..scene.case import Case
        from ..scene.volumes import load_volume

        start = time.perf_counter()
        result = _Loaded()
        try:
            if entry.problem:
                raise SegTruthError(entry.problem)
            recipe = self.job.recipe
            files = [*entry.images, *[p for p in (entry.segmentation or recipe.segmentation,) if p is not None]]
            self._report(entry.case, f"reading {', '.join(str(p) for p in files)}")
            self._reset(session)
            case = Case.open(entry.images[0], entry.segmentation or recipe.segmentation, recipe.table, session=session)
            for number, path in enumerate(entry.images[1:], start=1):
                channel = load_volume(session, path, name=f"{case.volume.GetName()} channel {number}")
                case.volume.AddNodeReferenceID(CHANNEL_REFERENCE, channel.GetID())
            result.case = case
        except BaseException as error:  # handed to the case that owns it
            result.error = error
        result.seconds = time.perf_counter() - start
        return result

    def _take(self, entry: CaseEntry) -> _Loaded:
        """The case loaded: by the prefetch thread if it was started for this case, else now."""
        if self._next is not None:
            expected, thread, loaded = self._next
            self._next = None
            thread.join()
            if expected == entry:
                return loaded
            if loaded.case is not None:  # the driver sent another case than announced: drop the prefetched one
                self._reset(loaded.case.session)
        self._turn = (self._turn + 1) % len(self.sessions)
        return self._load(entry, self.sessions[self._turn])

    def _start_prefetch(self, entry: CaseEntry | None) -> None:
        if entry is None or not self.prefetch:
            return
        self._turn = (self._turn + 1) % len(self.sessions)
        loaded = _Loaded()

        def work(session=self.sessions[self._turn]) -> None:
            result = self._load(entry, session)
            loaded.case, loaded.error, loaded.seconds = result.case, result.error, result.seconds
            self._report(entry.case, None)

        thread = threading.Thread(target=work, name=f"segtruth-prefetch-{entry.case}", daemon=True)
        thread.start()
        self._next = (entry, thread, loaded)

    # -- one case ---------------------------------------------------------------------------------------------
    def run(
        self,
        entry: CaseEntry,
        folder: Path,
        upcoming: CaseEntry | None = None,
        cancel: CancelToken | None = None,
    ) -> CaseState:
        """Run the recipe on ``entry`` and write its outputs and log into ``folder``; start loading ``upcoming``.

        A bad case (unreadable file, failing step, any unexpected exception) comes back as a failed state with
        a one-sentence error and the details in its log; only a cancel stops the batch.
        """
        log = _Log()
        state = CaseState(
            entry.case,
            FAILED,
            images=[str(p) for p in entry.images],
            segmentation=str(entry.segmentation) if entry.segmentation else None,
            recipe=self.job.fingerprint,
            worker=self.name,
            engine=self.job.engine,
        )
        log(f"case {entry.case} on {self.name} ({self.job.engine})")
        loaded = self._take(entry)
        self._start_prefetch(upcoming)
        start = time.perf_counter() - loaded.seconds

        def progress(fraction: float, message: str) -> None:
            log(message)
            self._report(entry.case, f"running the recipe ({message})")

        try:
            if loaded.error is not None:
                raise loaded.error
            case = loaded.case
            log(f"loaded {', '.join(state.images)} ({loaded.seconds:.2f} s)")
            self._report(entry.case, "running the recipe")
            self.job.recipe.run(case.session, case.segmentation, case.volume, progress=progress, cancel=cancel)
            for name in self.job.outputs:
                self._report(entry.case, f"writing {name}")
                path = case.save(folder / name)
                state.outputs[name] = path.stat().st_size
                log(f"wrote {name} ({state.outputs[name]} bytes)")
            state.status = DONE
        except (Cancelled, KeyboardInterrupt):
            raise
        except SegTruthError as error:
            state.error = _one_line(str(error), entry)
            state.outputs.clear()
            log(f"error: {state.error}")
        except Exception as error:  # one bad case must not stop the batch
            state.error = _one_line(f"unexpected {type(error).__name__}: {error}", entry)
            state.outputs.clear()
            log(f"error: {state.error}\n{traceback.format_exc()}")
        finally:
            if loaded.case is not None:
                self._reset(loaded.case.session)
        if state.status != DONE:
            for path in folder.iterdir():  # a failed case keeps its record and log, never partial outputs
                path.unlink()
        from ..inference.recipe_step import models_loaded

        state.seconds = round(time.perf_counter() - start, 3)
        state.models_loaded = models_loaded()
        state.finished = now()
        log(f"{state.status} in {state.seconds:.2f} s")
        (folder / LOG_FILE).write_text(log.text(), encoding="utf-8")
        return state


def _nodes(scene) -> list:
    collection = scene.GetNodes()
    return [collection.GetItemAsObject(index) for index in range(collection.GetNumberOfItems())]


def _one_line(message: str, entry: CaseEntry) -> str:
    """One sentence naming the case: the message as is when it names the case already."""
    text = " ".join(message.split())
    return text if text.startswith(f"Case {entry.case!r}") else f"{entry.describe()}: {text}"


class _Log:
    """A case's log lines, with the seconds since the case started."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.lines: list[str] = []

    def __call__(self, message: str) -> None:
        self.lines.append(f"[{time.perf_counter() - self.start:7.2f} s] {message}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"
