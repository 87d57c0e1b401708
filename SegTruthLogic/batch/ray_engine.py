"""The Ray engine: each case is a Ray task; the driver writes what the tasks return into OUTDIR.

A task runs the same ``Worker.run`` as a local worker, in a scratch folder on whichever node Ray picked, and
returns the files it made as bytes, so the output folder only has to exist where the driver runs (the input
images must be readable at the same paths on every node). Ray keeps a task's worker process for later tasks
(``max_calls=0``, also for GPU tasks), so each process loads its scene and models once. Tasks are not retried
(``max_retries=0``): a case whose worker dies is recorded as failed, like on the local engine, and
``--retry-failed`` runs it again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..core.errors import SegTruthError
from ..core.progress import CancelToken
from ..dataset.manifest import CaseEntry
from ..inference.recipe_step import recipe_models
from .local import record_crash
from .state import STATE_FILE, CaseState, write_case_folder
from .work import BatchJob, limit_threads

_WORKERS: dict[str, object] = {}  # job fingerprint -> Worker, per Ray worker process


def _process_worker(job: BatchJob, threads: int, memory_fraction: float | None):
    """This process's Worker for the job, made on its first case."""
    worker = _WORKERS.get(job.fingerprint)
    if worker is None:
        from .work import Worker

        limit_threads(threads)
        if memory_fraction is not None:
            import torch

            if torch.cuda.is_available():
                torch.cuda.set_per_process_memory_fraction(memory_fraction)
        worker = Worker(job, prefetch=False)
        worker.warm_up()
        _WORKERS[job.fingerprint] = worker
    return worker


def ray_case(
    job: BatchJob, entry: CaseEntry, threads: int, memory_fraction: float | None
) -> tuple[CaseState, dict[str, bytes]]:
    """One case in a scratch folder; its record and files (outputs and log) come back to the driver."""
    worker = _process_worker(job, threads, memory_fraction)
    scratch = Path(tempfile.mkdtemp(prefix=f"segtruth-{entry.case}-"))
    try:
        state = worker.run(entry, scratch)  # type: ignore[attr-defined]
        files = {path.name: path.read_bytes() for path in sorted(scratch.iterdir())}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return state, files


def _write_returned(outdir: Path, state: CaseState, files: dict[str, bytes]) -> CaseState:
    def fill(folder: Path) -> CaseState:
        for name, data in files.items():
            if name != STATE_FILE and "/" not in name and not name.startswith("."):
                (folder / name).write_bytes(data)
        return state

    return write_case_folder(outdir, state.case, fill)


def connect(address: str | None, cpus: int):
    """Connect to the cluster at ``address``, or start a Ray instance on this machine (loopback only)."""
    if address is None:
        # A Ray started here serves this machine only: keep all of its traffic on 127.0.0.1.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise SegTruthError("--engine ray needs Ray: pip install ray (or use --engine local).") from None
    if ray.is_initialized():
        return ray, False
    options = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        if address is None:
            ray.init(address="local", num_cpus=cpus, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise SegTruthError(f"Could not reach a Ray cluster at {address or 'this machine'} ({error}).") from None
    return ray, True


def run_ray(
    job: BatchJob,
    outdir: Path,
    cases: list[CaseEntry],
    on_state: Callable[[CaseState], None],
    address: str | None = None,
    workers: int = 1,
    cpus_per_case: int = 1,
    gpus_per_case: float | None = None,
    cancel: CancelToken | None = None,
) -> None:
    """Run each case as a Ray task; GPUs are requested only when the recipe runs a model on one."""
    ray, started = connect(address, max(workers, 1) * cpus_per_case)
    try:
        resources = ray.cluster_resources()
        gpus = _gpus_per_case(job, gpus_per_case, float(resources.get("GPU", 0)))
        if gpus and float(resources.get("GPU", 0)) < gpus:
            raise SegTruthError(
                f"The recipe runs a model on {job.device or 'cuda'}, but the Ray cluster has no GPU; "
                "use --device cpu or a cluster with GPUs."
            )
        task = ray.remote(max_calls=0, max_retries=0)(ray_case).options(
            num_cpus=cpus_per_case, num_gpus=gpus, name="segtruth-case"
        )
        job_ref = ray.put(job)
        fraction = gpus if 0 < gpus < 1 else None
        window = max(2 * int(resources.get("CPU", 1) // cpus_per_case), 2)
        queue = list(reversed(cases))
        pending: dict = {}
        while queue or pending:
            if cancel is not None:
                cancel.raise_if_cancelled("batch")
            while queue and len(pending) < window:
                entry = queue.pop()
                pending[task.remote(job_ref, entry, cpus_per_case, fraction)] = entry
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                entry = pending.pop(ref)
                try:
                    state, files = ray.get(ref)
                except ray.exceptions.RayError as error:
                    if isinstance(getattr(error, "cause", None), SegTruthError):
                        raise SegTruthError(str(error.cause)) from None  # the model would not load: stop the batch
                    on_state(record_crash(outdir, job, entry, _task_failure(ray, error)))
                    continue
                on_state(_write_returned(outdir, state, files))
    except BaseException:
        for ref in list(locals().get("pending", {})):
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


def _task_failure(ray, error: BaseException) -> str:
    """Why a task gave no result, as the end of one sentence (Ray does not say which signal killed a worker)."""
    if isinstance(error, ray.exceptions.WorkerCrashedError):
        return "the worker process died while running this case (Ray's python-core-worker-*.log files say how)."
    text = " ".join(str(error).split())
    first = text.split(". ")[0].rstrip(".") if text else type(error).__name__
    return f"its Ray task failed ({first})."


def _gpus_per_case(job: BatchJob, asked: float | None, cluster_gpus: float) -> float:
    """GPUs per task: as asked; else one when the recipe runs a model, the device allows CUDA and GPUs exist."""
    if asked is not None:
        return asked
    if not recipe_models(job.recipe) or job.device in ("cpu", "mps"):
        return 0.0
    if job.device == "cuda":
        return 1.0
    return 1.0 if cluster_gpus > 0 else 0.0
