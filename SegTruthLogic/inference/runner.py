"""Running inference off the GUI's main thread: in a worker thread, or in a separate process.

A thread shares the scene's process: the arrays are read on the main thread, the network runs in the thread,
and ``apply`` puts the result into MRML on the main thread again (MRML is not thread-safe). A subprocess
(``python -m SegTruthLogic.inference.worker``) reads and writes files; cancelling it ends the process and all it started,
which frees all of their GPU memory at once, and its output appears atomically or not at all.
Both run on ``SegTruthLogic.core.jobs`` and give an ``InferenceJob`` to poll for progress (e.g. from a Qt timer) and to cancel.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..core.errors import SegTruthError
from ..core.geometry import Grid, move_array
from ..core.jobs import Job, ProcessJob, ThreadJob, worker_error


class InferenceJob:
    """Inference running elsewhere (a ``jobs.Job``) with its notices; all but ``apply`` are safe from any thread."""

    def __init__(self, context: dict[str, Any] | None = None) -> None:
        self.notices: list[str] = []
        self._context: dict[str, Any] = context or {}
        self._job: Job | None = None

    @property
    def fraction(self) -> float:
        return self._job.progress()[0] if self._job is not None else 0.0

    @property
    def message(self) -> str:
        return self._job.progress()[1] if self._job is not None else "starting"

    @property
    def done(self) -> bool:
        return self._job is not None and self._job.done

    @property
    def cancelled(self) -> bool:
        return self._job is not None and self._job.cancelled

    def cancel(self) -> None:
        """Ask the work to stop; a subprocess and all it started are ended (its atomic write leaves nothing)."""
        if self._job is not None:
            self._job.cancel()

    def wait(self, timeout: float | None = None):
        """Block until finished; the result, or the job's SegTruthError (``Cancelled`` after a cancel)."""
        if self._job is None:
            raise TimeoutError("The inference job is still running.")
        return self._job.wait(timeout)

    def apply(self, segmentation_node=None, session=None):
        """Main thread only: put a thread job's labels into a segmentation node (created if None); returns it."""
        import types

        from ..scene.segments import ensure_segment, import_labelmap, new_segmentation

        result = self.wait()
        volume = self._context.get("volume")
        if volume is None:
            raise SegTruthError("apply() is for jobs from run_in_thread; a subprocess job wrote its output file.")
        labels = move_array(result.labels, result.grid, Grid.from_node(volume))
        owner = session or types.SimpleNamespace(scene=volume.GetScene())
        node = segmentation_node or new_segmentation(owner, volume, f"{volume.GetName()} {self._context['name']}")
        import_labelmap(owner, node, labels, volume, result.table)
        for label in result.table:
            ensure_segment(node, label.name, result.table)
        return node


def run_in_thread(
    volume_node, model, device: str = "auto", tta: bool = False, batch_size: int | None = None
) -> InferenceJob:
    """Start inference on a volume node in a worker thread; call ``job.apply()`` on the main thread when done."""
    from slicer.util import arrayFromVolume

    from ..core.sources import source_grid
    from .catalog import load_model
    from .engine import predict

    nodes = list(volume_node) if isinstance(volume_node, (list, tuple)) else [volume_node]
    grid = source_grid(nodes[0])
    channels = [move_array(arrayFromVolume(n), Grid.from_node(n), grid) for n in nodes]
    names = [n.GetName() for n in nodes]
    job = InferenceJob({"volume": nodes[0], "name": model.card.name if hasattr(model, "card") else str(model)})

    def work(progress, cancel):
        loaded = load_model(model, progress=progress, cancel=cancel)
        job._context["name"] = loaded.card.name
        result = predict(loaded, channels, grid, device, tta, batch_size, progress, cancel, names)
        job.notices.extend(result.notices)
        return result

    job._job = ThreadJob(work, "inference")
    return job


def run_in_subprocess(
    image: str | Path,
    model: str | Path,
    output: str | Path,
    device: str = "auto",
    tta: bool = False,
    python: str | None = None,
    env: dict[str, str] | None = None,
) -> InferenceJob:
    """Start ``segtruth segment`` in a separate Python process; ``wait()`` returns the output path.

    ``python``: the interpreter to run (inside Slicer, its ``PythonSlicer``); default: this one.
    """
    command = [python or sys.executable, "-m", "SegTruthLogic.inference.worker", str(image), "--model", str(model)]
    command += ["-o", str(output), "--device", device] + (["--tta"] if tta else [])
    job = InferenceJob()

    def on_event(event: dict) -> None:
        if event.get("event") == "notice":
            job.notices.append(str(event["message"]))

    job._job = ProcessJob(
        command, "inference", on_event=on_event, result=lambda: Path(output), failure=worker_error, env=env
    )
    return job
