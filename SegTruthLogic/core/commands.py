"""What every feature's ``segtruth`` commands share: the way they are registered and the way they write.

Each feature has a ``commands.py`` whose ``add_commands(sub, command)`` adds its sub-commands with the
``Command`` helper cli.py passes in; handlers return an exit code and raise SegTruthError for bad input.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .atomic import Outputs
from .formats import check_output_path

Handler = Callable[[argparse.Namespace], int]
Command = Callable[[str, str, Handler], argparse.ArgumentParser]  # (name, help, handler) -> its parser


@contextmanager
def command_outputs(args: argparse.Namespace, *inputs: str | Path | None) -> Iterator[Outputs]:
    """The outputs of one command as one transaction; each published path is printed once all are in place."""
    with Outputs(getattr(args, "overwrite", True), inputs) as outputs:
        yield outputs
    for target in outputs.targets:
        print(f"wrote {target}")


def segmentation_output(outputs: Outputs, path: str | Path) -> Path:
    """A labelmap or .seg.nrrd output, checked (extension, folder, overwrite) before any work."""
    check_output_path(path)
    return outputs.file(path)


def add_segmentation_output(p: argparse.ArgumentParser, labels: bool = True) -> None:
    """``-o OUT`` (a labelmap or .seg.nrrd), ``--labels``, ``--no-overwrite`` and ``--quiet``."""
    p.add_argument("-o", "--output", required=True, help="OUT: .nii.gz, .nii, .nrrd (labelmap) or .seg.nrrd")
    if labels:
        p.add_argument("--labels", help="label table (.json or .csv): names, values, colors, terminology")
    p.add_argument("--no-overwrite", dest="overwrite", action="store_false", help="refuse to replace OUT")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


__all__ = ["Command", "Handler", "add_segmentation_output", "command_outputs", "segmentation_output"]
