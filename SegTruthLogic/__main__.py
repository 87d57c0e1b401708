"""``python -m SegTruthLogic`` is the ``segtruth`` command."""

from .cli import main

raise SystemExit(main())
