"""``python -m SegTruthLogic.inference.worker IMAGE --model M -o OUT``: the subprocess side of run_in_subprocess."""

import sys

from .commands import main

if __name__ == "__main__":
    sys.exit(main())
