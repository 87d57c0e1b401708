"""``run_batch``: a recipe over every case of a manifest, resumable, on this process, N processes, or Ray.

    from SegTruthLogic.batch import run_batch
    report = run_batch("recipe.yaml", "manifest.csv", "out", workers=2)
    print(report.done, report.failed)

A re-run of the same command skips the cases whose folder says they are done (see state.py), skips the failed
ones unless ``retry_failed``, and runs the rest; ``redo`` runs everything again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core.errors import SegTruthError
from ..core.formats import check_output_path
from ..core.progress import CancelToken, ProgressCallback, report
from ..dataset.case_sources import find_cases
from ..dataset.manifest import CaseEntry
from .state import (
    DONE,
    FAILED,
    CaseState,
    batch_lock,
    check_batch_file,
    fingerprint,
    is_done,
    now,
    read_state,
    remove_leftovers,
    summary_rows,
    write_case_folder,
    write_failed_case,
    write_summary,
)
from .work import BatchJob

ENGINES = ("local", "ray")


@dataclass
class BatchReport:
    """What a batch did; ``rows`` is the summary table (also in OUTDIR/summary.csv)."""

    outdir: Path
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped_done: list[str] = field(default_factory=list)
    skipped_failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    rows: list[dict[str, Any]] = field(default_factory=list)
    workers: int = 1
    engine: str = "local"

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped_failed

    @property
    def cases_per_minute(self) -> float:
        ran = len(self.done) + len(self.failed)
        return 60.0 * ran / self.seconds if self.seconds > 0 else 0.0


def run_batch(
    recipe,
    cases: str | Path | list[CaseEntry],
    outdir: str | Path,
    *,
    outputs: list[str] | None = None,
    engine: str = "local",
    workers: int = 1,
    device: str | None = None,
    address: str | None = None,
    retry_failed: bool = False,
    redo: bool = False,
    threads: int | None = None,
    gpus_per_case: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> BatchReport:
    """Apply ``recipe`` (a Recipe or its file) to every case; each case's outputs go to ``OUTDIR/<case>/``.

    ``workers``: 0 runs the cases in this process (on Slicer's scene inside Slicer); N > 0 starts N worker
    processes (``engine="local"``) or runs up to N cases at once on a Ray instance started here
    (``engine="ray"`` without ``address``; with one, as many as the cluster fits).
    """
    from ..workflow.recipe import Recipe

    if engine not in ENGINES:
        raise SegTruthError(f"Unknown batch engine {engine!r}; use one of {', '.join(ENGINES)}.")
    if address is not None and engine != "ray":
        raise SegTruthError(f"--address {address}: a cluster address is for --engine ray.")
    if workers < 0 or (engine == "ray" and workers == 0):
        raise SegTruthError(f"--workers {workers}: give 0 (this process) or more, and at least 1 with Ray.")
    recipe = recipe if isinstance(recipe, Recipe) else Recipe.read(recipe)
    outputs = list(outputs or recipe.outputs)
    if not outputs:
        raise SegTruthError(f"{recipe.source}: the recipe lists no outputs; add 'outputs:' or give --output-name.")
    for name in outputs:
        check_output_path(name)
        if Path(name).name != name or name.startswith("."):
            raise SegTruthError(f"{name}: an output is a plain file name, written into each case's folder.")
    entries = cases if isinstance(cases, list) else find_cases(cases)
    if not entries:
        raise SegTruthError(f"{cases}: holds no cases.")
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise SegTruthError(f"{outdir}: is a file, not a folder.")
    outdir.mkdir(parents=True, exist_ok=True)
    key = fingerprint(recipe, outputs)
    result = BatchReport(outdir, workers=workers, engine=engine)
    start = time.perf_counter()
    with batch_lock(outdir):
        remove_leftovers(outdir)
        check_batch_file(outdir, recipe.source, key, redo)
        todo = _plan(outdir, entries, key, retry_failed, redo, result)
        job = BatchJob(_absolute_models(recipe), tuple(outputs), key, device, engine)
        total = len(todo)

        def on_state(state: CaseState) -> None:
            (result.done if state.status == DONE else result.failed).append(state.case)
            finished = len(result.done) + len(result.failed)
            report(
                progress,
                finished / total,
                f"{state.case} {state.status} ({len(result.done)} done, {len(result.failed)} failed of {total})",
            )

        report(progress, 0.0, f"{total} cases to run, {len(entries) - total} finished before")
        runnable = []
        for entry in todo:
            if entry.problem:
                on_state(_record_problem(outdir, job, entry))
            else:
                runnable.append(entry)
        if total == 0:
            report(progress, 1.0, "nothing to run")
        try:
            if runnable:
                _dispatch(job, outdir, runnable, on_state, engine, workers, address, threads, gpus_per_case, cancel)
        finally:
            remove_leftovers(outdir)  # cases that were running when a cancel or an error stopped the batch
            result.seconds = time.perf_counter() - start
            result.rows = summary_rows(outdir, [entry.case for entry in entries])
            write_summary(outdir, result.rows)
    return result


def _plan(
    outdir: Path, entries: list[CaseEntry], key: str, retry_failed: bool, redo: bool, result: BatchReport
) -> list[CaseEntry]:
    """The cases to run now; the others are noted as skipped (done before, or failed before)."""
    todo = []
    for entry in entries:
        state = read_state(outdir, entry.case)
        if redo or state is None:
            todo.append(entry)
        elif is_done(outdir, state, key):
            result.skipped_done.append(entry.case)
        elif state.status == FAILED and state.recipe == key and not retry_failed:
            result.skipped_failed.append(entry.case)
        else:
            todo.append(entry)
    return todo


def _absolute_models(recipe):
    """Model paths made absolute, so workers started elsewhere (Ray nodes, another folder) find the same files."""
    steps = []
    for step in recipe.steps:
        model = step.params.get("model") if step.name.replace("-", "_") == "segment" else None
        if isinstance(model, str) and Path(model).expanduser().exists():
            step = replace(step, params={**step.params, "model": str(Path(model).expanduser().resolve())})
        steps.append(step)
    return replace(recipe, steps=steps)


def _record_problem(outdir: Path, job: BatchJob, entry: CaseEntry) -> CaseState:
    """A case that cannot start (a missing file): its record says why, without loading anything."""
    state = CaseState(
        entry.case, FAILED, error=entry.problem or "", recipe=job.fingerprint, engine=job.engine, finished=now()
    )
    return write_failed_case(outdir, state, f"error: {state.error}")


def _dispatch(
    job: BatchJob,
    outdir: Path,
    cases: list[CaseEntry],
    on_state: Callable[[CaseState], None],
    engine: str,
    workers: int,
    address: str | None,
    threads: int | None,
    gpus_per_case: float | None,
    cancel: CancelToken | None,
) -> None:
    """Hand the cases to the engine: Ray, worker processes, or this process (``workers == 0``)."""
    cores = os.cpu_count() or 1
    if engine == "ray":
        from .ray_engine import run_ray

        run_ray(job, outdir, cases, on_state, address, workers, threads or 1, gpus_per_case, cancel)
    elif workers == 0:
        _run_here(job, outdir, cases, on_state, cancel)
    else:
        from ..inference.recipe_step import recipe_models
        from .local import run_local, visible_gpus

        needs_gpu = bool(recipe_models(job.recipe)) and job.device not in ("cpu", "mps")
        gpus = visible_gpus() if needs_gpu else []
        count = min(workers, len(cases))
        run_local(job, outdir, cases, on_state, count, threads or max(cores // count, 1), gpus, cancel)


def _run_here(
    job: BatchJob, outdir: Path, cases: list[CaseEntry], on_state: Callable[[CaseState], None], cancel
) -> None:
    """Every case in this process (inside Slicer: on the application's scene)."""
    from .work import Worker

    worker = Worker(job)
    worker.warm_up()
    for index, entry in enumerate(cases):
        if cancel is not None:
            cancel.raise_if_cancelled("batch")
        upcoming = cases[index + 1] if index + 1 < len(cases) else None
        on_state(write_case_folder(outdir, entry.case, lambda f, e=entry, u=upcoming: worker.run(e, f, u, cancel)))
