"""Headless Slicer batch: the ``segtruth batch`` command run by the Slicer application on Slicer's own scene.

    Slicer --no-main-window --python-script <SegTruth module folder>/Resources/Scripts/batch.py -- \\
        RECIPE CASES -o OUTDIR [--workers N] [--retry-failed] ...

The arguments after ``--`` are those of ``segtruth batch``. Inside Slicer the cases run in the application's
process on ``slicer.mrmlScene`` (``--workers 0``) unless ``--workers`` says otherwise; the nodes the batch adds
are removed after each case, so a scene's other content is left alone. The same script also runs with a
plain Python that has the ``slicer-core`` wheel (``python batch.py RECIPE CASES -o OUTDIR``). Slicer exits
with the command's exit code: 0 all cases done, 3 some failed, 1 bad input, 130 stopped.
"""

import sys
from pathlib import Path


def _arguments(argv: list[str]) -> list[str]:
    """The command's arguments: what follows ``--`` when present, else everything after the script."""
    args = list(argv[1:])
    return args[args.index("--") + 1 :] if "--" in args else args


def _inside_slicer() -> bool:
    try:
        import slicer
    except ImportError:
        return False
    return hasattr(slicer, "app")


def run(argv: list[str]) -> int:
    # SegTruthLogic sits two folders up, beside Resources/ (in the source tree and in the installed module).
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    from SegTruthLogic.batch.commands import main

    args = _arguments(argv)
    if _inside_slicer() and not any(a == "--workers" or a.startswith("--workers=") for a in args):
        args += ["--workers", "0"]
    return main(args, prog="Slicer --python-script batch.py --")


def _exit(code: int) -> None:
    if _inside_slicer():
        import slicer

        if hasattr(slicer.util, "exit"):
            slicer.util.exit(code)
            return
        slicer.app.exit(code)
        return
    raise SystemExit(code)


if __name__ == "__main__":
    _exit(run(sys.argv))
