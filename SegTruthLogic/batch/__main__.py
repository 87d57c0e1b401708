"""``python -m SegTruthLogic.batch RECIPE CASES -o OUTDIR``: the ``segtruth batch`` command on its own."""

from .commands import main

raise SystemExit(main(prog="python -m SegTruthLogic.batch"))
