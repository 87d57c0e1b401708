"""Auto-segmentation as long work for the front ends (the Slicer panel, the web app): a job-runner protocol, SegTruth's inference in a worker thread, a generic thread job.

The controller only knows ``JobRunner.start(request) -> JobHandle``; the handle is polled from the GUI's timer
(``done``, ``progress()``), cancelled from any thread, and ``finish()`` is called once, on the main thread,
to put the result into MRML (which is not thread-safe). The jobs run on ``SegTruthLogic.core.jobs``; a runner of
the process back end fits the same protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core import jobs
from ..core.labels import LabelTable
from ..core.progress import CancelToken


@dataclass(frozen=True)
class AutoSegmentRequest:
    """What Apply asks for: a volume node, a model (catalog name or folder), a device name, test-time augmentation."""

    volume: Any
    model: str
    device: str = "auto"
    tta: bool = False


@dataclass
class Outcome:
    """A finished job's effect: the segmentation node written, the labels it used, what the person should know."""

    segmentation: Any
    table: LabelTable
    notices: list[str] = field(default_factory=list)
    summary: str = ""


class JobHandle(Protocol):
    @property
    def done(self) -> bool: ...

    def progress(self) -> tuple[float, str]: ...

    def cancel(self) -> None: ...

    def finish(self, segmentation_node) -> Outcome:
        """Main thread, once ``done``: write the result (raises ``Cancelled`` or ``SegTruthError`` instead)."""
        ...


class JobRunner(Protocol):
    def start(self, request: AutoSegmentRequest) -> JobHandle: ...


class InferenceHandle:
    """An ``inference.InferenceJob`` seen through the ``JobHandle`` protocol."""

    def __init__(self, job, session, request: AutoSegmentRequest) -> None:
        self.job, self.session, self.request = job, session, request

    @property
    def done(self) -> bool:
        return self.job.done

    def progress(self) -> tuple[float, str]:
        return float(self.job.fraction), str(self.job.message)

    def cancel(self) -> None:
        self.job.cancel()

    def finish(self, segmentation_node) -> Outcome:
        result = self.job.wait(0)
        node = self.job.apply(segmentation_node, self.session)
        summary = (
            f"Model {self.request.model!r} labelled {len(result.table)} structure(s) in {result.seconds:.1f} s "
            f"on {result.device}."
        )
        return Outcome(node, result.table, list(self.job.notices), summary)


class InferenceThreadRunner:
    """SegTruth's engine in a worker thread (arrays are read on the main thread when the job starts)."""

    def __init__(self, session) -> None:
        self.session = session

    def start(self, request: AutoSegmentRequest) -> InferenceHandle:
        from . import run_in_thread  # imports torch: only once dependencies are there

        job = run_in_thread(request.volume, request.model, device=request.device, tta=request.tta)
        return InferenceHandle(job, self.session, request)


class ThreadJob(jobs.ThreadJob):
    """Any ``work(progress, cancel) -> value`` in a daemon thread; ``apply(value, segmentation)`` on finish.

    ``work`` reports through ``progress(fraction, message)`` and checks ``cancel`` between steps.
    """

    def __init__(
        self,
        work: Callable[[Callable[[float, str], None], CancelToken], Any],
        apply: Callable[[Any, Any], Outcome],
        name: str = "SegTruth job",
    ) -> None:
        self._apply = apply
        super().__init__(work, name)

    def wait(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """True once the job is done (its outcome is taken by ``finish``)."""
        return self._done.wait(timeout)

    def finish(self, segmentation_node) -> Outcome:
        if not self.done:
            raise RuntimeError("finish() called before the job was done.")
        return self._apply(jobs.ThreadJob.wait(self, 0), segmentation_node)
