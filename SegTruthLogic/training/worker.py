"""``python -m SegTruthLogic.training.worker {train|bootstrap|rank} ...``: the subprocess side of training.runner.

The arguments are ``segtruth train``'s, ``bootstrap``'s and ``rank``'s; progress goes to stdout as JSON lines,
an error to stderr as one line, and SIGTERM stops the work at its next batch (``core.jobs.run_worker``): the
checkpoint of the last finished epoch stays for a resume and no model folder is written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..core.jobs import run_worker
from ..core.progress import CancelToken
from .commands import add_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segtruth-training-worker")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, handler) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.set_defaults(handler=handler)
        return p

    add_commands(sub, command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.progress_json = True
    args.cancel = CancelToken()
    return run_worker(lambda: args.handler(args), args.command, args.cancel)


if __name__ == "__main__":
    sys.exit(main())
