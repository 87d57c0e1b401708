"""``segtruth batch RECIPE CASES -o OUTDIR``: a recipe over many cases, resumable, locally or on Ray.

``add_commands(sub, command)`` registers it on the main parser with cli.py's ``command(name, help, handler)``
helper; ``main(argv)`` is the same command on its own (``python -m SegTruthLogic.batch``, the Slicer script).
Exit codes: 0 every case done, 3 some cases failed (the batch still ran the others), 1 bad input, 130 stopped
by a signal (the finished cases stay finished; run the same command again to go on).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..core.commands import Command
from ..core.errors import Cancelled, SegTruthError
from ..core.progress import CancelToken, progress_bar
from ..inference.commands import add_precision_argument
from ..inference.precision import ENVIRONMENT as PRECISION_ENVIRONMENT

EXIT_ERROR = 1
EXIT_CASES_FAILED = 3
EXIT_INTERRUPTED = 130
HELP = "Apply a recipe to every case of a manifest, folder or glob; resumable, on N processes or Ray."


def add_batch_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="recipe (.yaml/.json), as for 'segtruth run'")
    p.add_argument(
        "cases",
        metavar="CASES",
        help="manifest (.csv/.json: case,image,segmentation; segmentation optional), a folder, or a quoted glob",
    )
    p.add_argument("-o", "--outdir", required=True, help="OUTDIR: one folder per case, summary.csv, batch.json")
    p.add_argument(
        "--workers", type=int, default=1, help="worker processes (default 1; 0: in this process, as inside Slicer)"
    )
    p.add_argument(
        "--device", choices=["auto", "cpu", "cuda", "mps"], help="device for model steps (default: the step's own)"
    )
    add_precision_argument(p)  # through SEGTRUTH_PRECISION, which the workers inherit
    p.add_argument("--engine", choices=["local", "ray"], default="local", help="local processes (default) or Ray")
    p.add_argument("--address", help="Ray cluster address (e.g. auto, HOST:6379, ray://HOST:10001); default: start one")
    p.add_argument("--retry-failed", action="store_true", help="run the cases that failed before again")
    p.add_argument("--redo", action="store_true", help="run every case again, finished or not")
    p.add_argument("--output-name", dest="outputs", action="append", help="output file name (repeatable)")
    p.add_argument("--threads", type=int, help="compute threads per worker (default: cores / workers; Ray: 1)")
    p.add_argument("--gpus-per-case", type=float, help="Ray: GPUs a case asks for (default 1 when a model runs on GPU)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def add_commands(sub, command: Command) -> None:
    """Add ``batch`` to the segtruth command."""
    add_batch_arguments(command("batch", HELP, cmd_batch))


@contextmanager
def _signals_stop(cancel) -> Iterator[None]:
    """SIGTERM (and SIGINT) stop the batch like Ctrl-C: workers end, finished cases stay finished."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        cancel.cancel()
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def cmd_batch(args: argparse.Namespace) -> int:
    with _precision(getattr(args, "precision", None)):
        return _batch(args)


@contextmanager
def _precision(name: str | None) -> Iterator[None]:
    """``--precision`` for this batch's model steps: the environment variable its workers inherit."""
    saved = os.environ.get(PRECISION_ENVIRONMENT)
    if name:
        os.environ[PRECISION_ENVIRONMENT] = name
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(PRECISION_ENVIRONMENT, None)
        else:
            os.environ[PRECISION_ENVIRONMENT] = saved


def _batch(args: argparse.Namespace) -> int:
    from .run import run_batch

    progress = progress_bar(args.quiet)
    cancel = CancelToken()
    try:
        with _signals_stop(cancel):
            result = run_batch(
                args.recipe,
                args.cases,
                args.outdir,
                outputs=args.outputs,
                engine=args.engine,
                workers=args.workers,
                device=args.device,
                address=args.address,
                retry_failed=args.retry_failed,
                redo=args.redo,
                threads=args.threads,
                gpus_per_case=args.gpus_per_case,
                progress=progress,
                cancel=cancel,
            )
    except (KeyboardInterrupt, Cancelled):
        print(
            f"segtruth: batch stopped; finished cases are kept in {args.outdir}, cases that were running were "
            "discarded; run the same command again to go on.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(format_report(result))
    return 0 if result.ok else EXIT_CASES_FAILED


def format_report(result) -> str:
    """The closing lines: counts, speed, the failed cases with their errors, where the table and logs are."""
    ran = len(result.done) + len(result.failed)
    minutes, seconds = divmod(round(result.seconds), 60)
    lines = [
        f"batch: {len(result.done)} done, {len(result.failed)} failed"
        + (f", {len(result.skipped_done)} done before" if result.skipped_done else "")
        + (f", {len(result.skipped_failed)} failed before (not retried)" if result.skipped_failed else "")
        + f" in {minutes}:{seconds:02d}"
        + (f" ({result.cases_per_minute:.1f} cases/min)" if ran else "")
    ]
    failed = [row for row in result.rows if row["status"] == "failed"]
    if failed:
        width = max(len(row["case"]) for row in failed)
        lines.append(f"{'case'.ljust(width)}  error")
        lines += [f"{row['case'].ljust(width)}  {row['error']}" for row in failed]
        if result.skipped_failed:
            lines.append("(--retry-failed runs the failed cases again)")
    outdir = Path(result.outdir)
    lines.append(f"summary: {outdir / 'summary.csv'}; logs: {outdir}/<case>/case.log")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, prog: str = "segtruth batch") -> int:
    """``segtruth batch`` on its own: one error line and exit code 1 for bad input, as the other commands."""
    parser = argparse.ArgumentParser(prog=prog, description=HELP)
    add_batch_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return cmd_batch(args)
    except SegTruthError as error:
        print(f"segtruth: error: {error}", file=sys.stderr)
        return EXIT_ERROR
