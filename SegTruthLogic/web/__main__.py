"""``python -m SegTruthLogic.web [CASES] [--host H] [--port N]``: the same as ``segtruth serve`` (tests start it so)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..core.errors import SegTruthError
from .commands import add_commands


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m SegTruthLogic.web")
    sub = parser.add_subparsers(dest="command")

    def command(name, help_text, handler):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    add_commands(sub, command)
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.handler(args)
    except SegTruthError as error:
        print(f"segtruth: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
