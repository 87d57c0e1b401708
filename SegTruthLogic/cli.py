"""The ``segtruth`` command: the same logic functions as scripts and the Slicer module.

Every command writes its outputs atomically on the source image's grid and exits 0 on success, or prints
one clear sentence and exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from .core.atomic import check_creatable, check_parent
from .core.commands import add_segmentation_output, command_outputs, segmentation_output
from .core.errors import Cancelled, SegTruthError
from .core.formats import check_output_path
from .core.progress import progress_bar
from .tools.commands import add_commands as tool_commands

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
DEBUG_VARIABLE = "SEGTRUTH_DEBUG"  # set to 1: unexpected errors end in their traceback instead of a log file

log = logging.getLogger(__name__)


def _open(args: argparse.Namespace, segmentation: str | None = None):
    from .scene.case import Case

    return Case.open(args.image, segmentation, getattr(args, "labels", None), rois=getattr(args, "roi", None))


def cmd_info(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if path.is_dir() or (path.is_file() and path.suffix.lower() == ".dcm"):
        # a DICOM tree or object is listed from its headers, without loading Slicer or any pixel
        from .scene.dicom_listing import describe_dicom_object, describe_tree, format_tree

        listing = describe_tree(path) if path.is_dir() else describe_dicom_object(path)
        print(json.dumps(listing, indent=2) if args.json else format_tree(listing))
        return 0
    from .scene.info import describe, format_info
    from .scene.session import Session

    info = describe(Session.create(), args.file)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .scene.export import segment_mask_paths, write_segment_mask

    with command_outputs(args, args.image, args.segmentation, args.labels) as outputs:
        out = segmentation_output(outputs, args.output)
        if args.masks:
            check_parent(Path(args.masks) / "mask.nii.gz")
        case = _open(args, args.segmentation)
        case.save(out)
        if args.masks:
            for sid, path in segment_mask_paths(case.segmentation, args.masks).items():
                write_segment_mask(case.session, case.segmentation, sid, case.volume, outputs.file(path))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .scene.case import Case
    from .workflow.recipe import Recipe

    recipe = Recipe.read(args.recipe)
    names = args.outputs or recipe.outputs
    if not names:
        raise SegTruthError(f"{args.recipe}: the recipe lists no outputs; add 'outputs:' or give --output-name.")
    segmentation = args.segmentation or recipe.segmentation
    with command_outputs(args, args.recipe, args.image, segmentation) as outputs:
        outdir = check_creatable(args.outdir)
        for name in names:
            check_output_path(name)
        staged = [outputs.file(outdir / name) for name in names] if outdir.is_dir() else None
        case = Case.open(args.image, segmentation, recipe.table)  # checks the image before the folder is made
        if staged is None:
            outputs.make_folder(outdir)
            staged = [outputs.file(outdir / name) for name in names]
        recipe.run(case.session, case.segmentation, case.volume, progress=progress_bar(args.quiet))
        for path in staged:
            case.save(path)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .workflow.demo import run_demo

    run_demo(Path(args.outdir), progress=progress_bar(args.quiet))
    return 0


class Parser(argparse.ArgumentParser):
    """argparse with SegTruth's promise for usage errors too: one ``segtruth: error:`` line and exit 1."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.format_usage()}segtruth: error: {_sentence(message)}\n")


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "?", "!")) else text + "."


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="segtruth",
        description="Ground-truth segmentation on 3D Slicer's own classes; outputs on the source image's exact grid.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    p = command("info", "Show a file's grid and its labels or segments.", cmd_info)
    p.add_argument("file", help="image, labelmap, .seg.nrrd, DICOM folder tree, RTSTRUCT or SEG file")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    tool_commands(sub, command)

    p = command("export", "Write a segmentation on IMAGE's exact grid with stable label values.", cmd_export)
    p.add_argument("image")
    p.add_argument("segmentation", metavar="SEG", help=".seg.nrrd, labelmap, RTSTRUCT or DICOM SEG")
    p.add_argument(
        "--roi", action="append", metavar="NAME", help="RTSTRUCT/SEG structure to take (name or glob; repeatable)"
    )
    p.add_argument("--masks", metavar="DIR", help="also write one binary mask per segment into DIR")
    add_segmentation_output(p)

    p = command("run", "Apply a recipe (YAML/JSON list of steps) to an image.", cmd_run)
    p.add_argument("recipe")
    p.add_argument("image")
    p.add_argument("-o", "--outdir", required=True)
    p.add_argument("--segmentation", help="start from this segmentation instead of an empty one")
    p.add_argument("--output-name", dest="outputs", action="append", help="output file name (repeatable)")
    p.add_argument("--no-overwrite", dest="overwrite", action="store_false")
    p.add_argument("-q", "--quiet", action="store_true")

    p = command("demo", "Rebuild lungs and bone on the sample chest CT and score them against its reference.", cmd_demo)
    p.add_argument("-o", "--outdir", default="segtruth-demo")
    p.add_argument("-q", "--quiet", action="store_true")

    # Each feature adds its own commands; their imports stay light (torch, trame and ray load on use).
    from .batch.commands import add_commands as batch_commands
    from .dataset.commands import add_commands as dataset_commands
    from .inference.commands import add_commands as inference_commands
    from .training.commands import add_commands as training_commands
    from .web.commands import add_commands as web_commands

    for add_commands in (inference_commands, training_commands, dataset_commands, batch_commands, web_commands):
        add_commands(sub, command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as done:  # --help, or a usage error already printed as one line
            return done.code if isinstance(done.code, int) else EXIT_ERROR
        return args.handler(args)
    except Cancelled as error:
        print(f"segtruth: {error}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("segtruth: interrupted; nothing was written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SegTruthError as error:
        print(f"segtruth: error: {_sentence(str(error))}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # The reader of stdout went away (`segtruth info ... | head`): say nothing more, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as error:  # a bug: one sentence for the user, the traceback kept for the report
        if os.environ.get(DEBUG_VARIABLE) == "1":
            raise
        print(f"segtruth: error: {_internal_error(error)}", file=sys.stderr)
        return EXIT_ERROR


def _internal_error(error: Exception) -> str:
    """Log the traceback to a file and describe the failure in one sentence that points at it."""
    folder = Path(tempfile.gettempdir()) / "segtruth-logs"
    path = folder / f"segtruth-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    try:
        folder.mkdir(exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        where = f"set {DEBUG_VARIABLE}=1 to see the traceback"
    else:
        log.addHandler(handler)
        log.error("segtruth %s failed", " ".join(sys.argv[1:]), exc_info=error)
        log.removeHandler(handler)
        handler.close()
        where = f"the traceback is in {path}"
    detail = " ".join(str(error).split())[:200] or "no message"
    return f"SegTruth failed unexpectedly ({type(error).__name__}: {detail}); this is a bug, and {where}."
