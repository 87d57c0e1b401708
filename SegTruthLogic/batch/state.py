"""What a batch's output folder says about each case, so a re-run knows exactly which cases are finished.

Each case's folder ``OUTDIR/<case>/`` is built as ``OUTDIR/.<case>.XXXX.part`` (outputs, then ``case.log``,
then ``case.json`` last) and renamed into place in one step, so a folder that exists is complete: it holds a
done case with all its outputs or a failed case with its error. A kill leaves only ``.part`` folders, which the
next run deletes. ``batch.json`` records the recipe's fingerprint: finished cases made by another recipe are
never silently mixed with new ones.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_text
from ..core.errors import SegTruthError

STATE_FILE = "case.json"
LOG_FILE = "case.log"
BATCH_FILE = "batch.json"
SUMMARY_FILE = "summary.csv"
LOCK_FILE = ".segtruth-batch.lock"
DONE, FAILED = "done", "failed"


@dataclass
class CaseState:
    """A case's record in ``OUTDIR/<case>/case.json``."""

    case: str
    status: str
    error: str = ""
    seconds: float = 0.0
    outputs: dict[str, int] = field(default_factory=dict)  # file name -> size in bytes
    images: list[str] = field(default_factory=list)
    segmentation: str | None = None
    recipe: str = ""  # fingerprint
    worker: str = ""
    engine: str = ""
    finished: str = ""
    models_loaded: int = 0  # models this worker process had loaded so far (each once)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> CaseState:
        data = json.loads(text)
        return cls(**{key: value for key, value in data.items() if key in cls.__dataclass_fields__})


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def fingerprint(recipe, outputs: list[str]) -> str:
    """A hash of what the recipe does (steps, labels, outputs): cases made by another recipe are not 'done'."""
    data = {
        "steps": [[step.name, step.params] for step in recipe.steps],
        "outputs": list(outputs),
        "labels": json.loads(recipe.table.to_json()) if recipe.table is not None else None,
        "segmentation": str(recipe.segmentation) if recipe.segmentation else None,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_state(outdir: Path, case: str) -> CaseState | None:
    """The case's record, or None when the case has not finished (or its record is unreadable)."""
    path = outdir / case / STATE_FILE
    try:
        return CaseState.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return None


def is_done(outdir: Path, state: CaseState | None, fingerprint_: str) -> bool:
    """Done by this recipe, with every output still there at the size that was written."""
    if state is None or state.status != DONE or state.recipe != fingerprint_:
        return False
    folder = outdir / state.case
    for name, size in state.outputs.items():
        try:
            if (folder / name).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


def write_case_folder(outdir: Path, case: str, fill: Callable[[Path], CaseState]) -> CaseState:
    """Build the case's folder beside its place with ``fill(folder)`` (which writes outputs and log) and rename it in.

    ``case.json`` is written last, inside the new folder, so the rename publishes outputs and record together.
    """
    from ..core.atomic import atomic_folder

    with atomic_folder(outdir / case, overwrite=True) as folder:
        state = fill(folder)
        atomic_write_text(folder / STATE_FILE, state.to_json())
    return state


def write_failed_case(outdir: Path, state: CaseState, log: str) -> CaseState:
    """Publish a failed case's folder: its record and a one-line log, nothing else."""

    def fill(folder: Path) -> CaseState:
        (folder / LOG_FILE).write_text(log + "\n", encoding="utf-8")
        return state

    return write_case_folder(outdir, state.case, fill)


def leftovers(outdir: Path) -> list[Path]:
    """Half-built case folders (``.<case>.XXXX.part`` and their ``.old`` twins) left by a killed run."""
    return [p for p in outdir.glob(".*.part*") if p.is_dir()]


def remove_leftovers(outdir: Path) -> int:
    found = leftovers(outdir)
    for path in found:
        shutil.rmtree(path, ignore_errors=True)
    return len(found)


@contextmanager
def batch_lock(outdir: Path) -> Iterator[None]:
    """One batch at a time per output folder; the lock goes away with the process, even on SIGKILL."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; one batch per folder is then up to the user
        yield
        return
    handle = open(outdir / LOCK_FILE, "a+")  # noqa: SIM115 (held for the whole block)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise SegTruthError(
                f"{outdir}: another batch ({owner}) is writing into this folder; wait for it or use another folder."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()


def check_batch_file(outdir: Path, recipe_source: str, fingerprint_: str, redo: bool) -> None:
    """Refuse to mix cases of two recipes in one folder, unless ``redo`` asks for every case to run again."""
    path = outdir / BATCH_FILE
    if path.is_file() and not redo:
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            previous = {}
        if previous.get("fingerprint") not in (None, fingerprint_):
            raise SegTruthError(
                f"{outdir}: holds cases made by a different recipe ({previous.get('recipe', '?')}); "
                "use another output folder, or --redo to run every case again with this one."
            )
    atomic_write_text(
        path,
        json.dumps({"recipe": recipe_source, "fingerprint": fingerprint_, "updated": now()}, indent=2) + "\n",
    )


SUMMARY_COLUMNS = ["case", "status", "seconds", "outputs", "error"]


def summary_rows(outdir: Path, cases: list[str]) -> list[dict[str, Any]]:
    """One row per case of this batch, from the records on disk (the source of truth, also after a kill)."""
    rows = []
    for case in cases:
        state = read_state(outdir, case)
        if state is None:
            rows.append({"case": case, "status": "not run", "seconds": "", "outputs": "", "error": ""})
            continue
        rows.append(
            {
                "case": case,
                "status": state.status,
                "seconds": f"{state.seconds:.2f}",
                "outputs": " ".join(state.outputs),
                "error": state.error,
            }
        )
    return rows


def write_summary(outdir: Path, rows: list[dict[str, Any]]) -> Path:
    out = io.StringIO()
    writer = csv.DictWriter(out, SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(outdir / SUMMARY_FILE, out.getvalue())
