"""Running inference off the GUI's main thread: in a worker thread, or in a separate process.

A thread shares the scene's process: the arrays are read on the main thread, the network runs in the thread,
and ``apply`` puts the result into MRML on the main thread again (MRML is not thread-safe). A subprocess
(``python -m SegTruthLogic.inference.worker``) reads and writes files; cancelling it ends the process, which
frees all of its GPU memory at once, and its output appears atomically or not at all.
Both give an ``InferenceJob`` to poll for progress (e.g. from a Qt timer) and to cancel.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Cancelled, SegTruthError
from ..geometry import Grid, move_array
from ..progress import CancelToken


@dataclass
class InferenceJob:
    """Progress, state and result of inference running elsewhere; every method is safe to call from the GUI."""

    fraction: float = 0.0
    message: str = "starting"
    notices: list[str] = field(default_factory=list)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _token: CancelToken = field(default_factory=CancelToken, repr=False)
    _result: Any = None
    _error: BaseException | None = None
    _process: subprocess.Popen | None = field(default=None, repr=False)
    _context: dict[str, Any] = field(default_factory=dict, repr=False)

    def _progress(self, fraction: float, message: str) -> None:
        self.fraction, self.message = fraction, message

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def cancelled(self) -> bool:
        return self._token.cancelled

    def cancel(self) -> None:
        """Ask the work to stop; a subprocess is ended (its partial output is discarded by its atomic write)."""
        self._token.cancel()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def wait(self, timeout: float | None = None):
        """Block until finished; the result, or the job's SegTruthError (``Cancelled`` after a cancel)."""
        if not self._done.wait(timeout):
            raise TimeoutError("The inference job is still running.")
        if self._error is not None:
            raise self._error
        return self._result

    def apply(self, segmentation_node=None, session=None):
        """Main thread only: put a thread job's labels into a segmentation node (created if None); returns it."""
        import types

        from ..segments import ensure_segment, import_labelmap, new_segmentation

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


def run_in_thread(volume_node, model, device: str = "auto", tta: bool = False, batch_size: int = 1) -> InferenceJob:
    """Start inference on a volume node in a worker thread; call ``job.apply()`` on the main thread when done."""
    from slicer.util import arrayFromVolume

    from ..volumes import source_grid
    from .catalog import load_model
    from .engine import predict

    job = InferenceJob()
    nodes = list(volume_node) if isinstance(volume_node, (list, tuple)) else [volume_node]
    grid = source_grid(nodes[0])
    channels = [move_array(arrayFromVolume(n), Grid.from_node(n), grid) for n in nodes]
    names = [n.GetName() for n in nodes]
    job._context = {"volume": nodes[0], "name": model.card.name if hasattr(model, "card") else str(model)}

    def work() -> None:
        try:
            loaded = load_model(model, progress=job._progress, cancel=job._token)
            job._context["name"] = loaded.card.name
            job._result = predict(loaded, channels, grid, device, tta, batch_size, job._progress, job._token, names)
            job.notices.extend(job._result.notices)
        except BaseException as error:  # handed to the main thread by wait()
            job._error = error if isinstance(error, SegTruthError) else SegTruthError(f"Inference failed: {error}")
        finally:
            job._done.set()

    threading.Thread(target=work, name="SegTruth inference", daemon=True).start()
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
    try:
        job._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1, env=env
        )
    except OSError as error:
        raise SegTruthError(f"{command[0]}: could not start the inference process ({error}).") from None

    def watch() -> None:
        process = job._process
        assert process is not None and process.stdout is not None and process.stderr is not None
        error_lines: list[str] = []
        reader = threading.Thread(target=lambda: error_lines.extend(process.stderr), daemon=True)  # type: ignore[union-attr]
        reader.start()
        for line in process.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("event") == "progress":
                job._progress(float(event["fraction"]), str(event["message"]))
            elif event.get("event") == "notice":
                job.notices.append(str(event["message"]))
        code = process.wait()
        reader.join(timeout=5)
        if job._token.cancelled:
            job._error = Cancelled("inference")
        elif code != 0:
            last = next((line.strip() for line in reversed(error_lines) if line.strip()), f"exit code {code}")
            job._error = SegTruthError(last.removeprefix("segtruth: error: "))
        else:
            job._result = Path(output)
            job._progress(1.0, "done")
        job._done.set()

    threading.Thread(target=watch, name="SegTruth inference process", daemon=True).start()
    return job
