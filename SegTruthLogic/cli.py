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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from .core.atomic import Outputs, check_creatable, check_parent
from .core.errors import Cancelled, SegTruthError
from .core.formats import check_output_path
from .core.progress import progress_bar

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
DEBUG_VARIABLE = "SEGTRUTH_DEBUG"  # set to 1: unexpected errors end in their traceback instead of a log file

log = logging.getLogger(__name__)


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


def _open(args: argparse.Namespace, segmentation: str | None = None):
    from .scene.case import Case

    return Case.open(args.image, segmentation, getattr(args, "labels", None))


def cmd_info(args: argparse.Namespace) -> int:
    from .scene.info import describe, format_info
    from .scene.session import Session

    info = describe(Session.create(), args.file)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def cmd_threshold(args: argparse.Namespace) -> int:
    from .core.labels import LabelTable
    from .tools.threshold import threshold

    with command_outputs(args, args.image, args.labels) as outputs:
        out = segmentation_output(outputs, args.output)
        case = _open(args)
        if case.table is None:
            case.table = LabelTable([]).with_label(args.name, 1)
        elif case.table.by_name(args.name) is None:
            raise SegTruthError(f"The label table has no label named {args.name!r} (give --name).")
        low, high = args.range if args.range else (None, None)
        used = threshold(
            case.session, case.segmentation, case.volume, args.name, low, high, method=args.method, table=case.table
        )
        print(f"threshold {used[0]:g} .. {used[1]:g}")
        case.save(out)
    return 0


def cmd_grow(args: argparse.Namespace) -> int:
    from .tools.grow import grow_from_seeds

    with command_outputs(args, args.image, args.seeds, args.labels) as outputs:
        out = segmentation_output(outputs, args.output)
        case = _open(args, args.seeds)
        grow_from_seeds(case.session, case.segmentation, case.volume, progress=progress_bar(args.quiet))
        case.save(out)
    return 0


def cmd_islands(args: argparse.Namespace) -> int:
    from .scene.segments import segment_ids
    from .tools import islands

    if not (args.keep_largest or args.split or args.min_size is not None or args.remove_border):
        raise SegTruthError(
            "Choose what to do with the islands: --keep-largest, --min-size, --split or --remove-border."
        )
    with command_outputs(args, args.image, args.segmentation, args.labels) as outputs:
        out = segmentation_output(outputs, args.output)
        case = _open(args, args.segmentation)
        segmentation = case.segmentation.GetSegmentation()
        names = (
            [args.segment]
            if args.segment
            else [segmentation.GetSegment(s).GetName() for s in segment_ids(case.segmentation)]
        )
        size = {"min_mm3": args.min_size} if args.mm3 else {"min_voxels": int(args.min_size or 0)}
        for name in names:
            if args.remove_border:
                islands.remove_border_islands(case.session, case.segmentation, case.volume, name)
            if args.keep_largest:
                islands.keep_largest_island(case.session, case.segmentation, case.volume, name)
            elif args.split:
                islands.split_islands(case.session, case.segmentation, case.volume, name)
            elif args.min_size is not None:
                islands.remove_small_islands(case.session, case.segmentation, case.volume, name, **size)
        if args.split:
            case.table = None  # split islands are new segments: the table is rebuilt from the segments
        case.save(out)
    return 0


def cmd_fill_between(args: argparse.Namespace) -> int:
    from .tools.fill_between import fill_between_slices

    with command_outputs(args, args.image, args.segmentation, args.labels) as outputs:
        out = segmentation_output(outputs, args.output)
        case = _open(args, args.segmentation)
        fill_between_slices(case.session, case.segmentation, case.volume)
        case.save(out)
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

    def outputs(p: argparse.ArgumentParser, labels: bool = True) -> None:
        p.add_argument("-o", "--output", required=True, help="OUT: .nii.gz, .nii, .nrrd (labelmap) or .seg.nrrd")
        if labels:
            p.add_argument("--labels", help="label table (.json or .csv): names, values, colors, terminology")
        p.add_argument("--no-overwrite", dest="overwrite", action="store_false", help="refuse to replace OUT")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress output")

    p = command("info", "Show a file's grid and its labels or segments.", cmd_info)
    p.add_argument("file", help="image, labelmap, .seg.nrrd or DICOM folder")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("threshold", "Voxels with LO <= value <= HI get label 1 (or --name's value).", cmd_threshold)
    p.add_argument("image")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--range", nargs=2, type=float, metavar=("LO", "HI"))
    group.add_argument("--method", help="automatic threshold: otsu, triangle, maximum_entropy, ...")
    p.add_argument("--name", default="threshold", help="segment/label name (default: threshold)")
    outputs(p)

    p = command("grow", "Grow from seeds: each non-zero seed value fills its region and keeps its value.", cmd_grow)
    p.add_argument("image")
    p.add_argument("--seeds", required=True, help="seed labelmap on IMAGE's grid (0 = unknown) or .seg.nrrd")
    outputs(p)

    p = command("islands", "Keep the largest island, remove small or border islands, or split islands.", cmd_islands)
    p.add_argument("image")
    p.add_argument("segmentation", metavar="SEG", help=".seg.nrrd or labelmap on IMAGE's grid")
    p.add_argument(
        "--remove-border",
        action="store_true",
        help="first remove islands touching the image's sides (outside the body; the end slices do not count)",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--keep-largest", action="store_true")
    group.add_argument("--min-size", type=float, metavar="N", help="remove islands smaller than N voxels")
    group.add_argument("--split", action="store_true", help="each island becomes its own segment")
    p.add_argument("--mm3", action="store_true", help="--min-size is in mm³ instead of voxels")
    p.add_argument("--segment", help="only this segment (default: every segment)")
    outputs(p)

    p = command("fill-between", "Interpolate segments drawn on a few slices into 3D.", cmd_fill_between)
    p.add_argument("image")
    p.add_argument("segmentation", metavar="SEG")
    outputs(p)

    p = command("export", "Write a segmentation on IMAGE's exact grid with stable label values.", cmd_export)
    p.add_argument("image")
    p.add_argument("segmentation", metavar="SEG", help=".seg.nrrd or labelmap")
    p.add_argument("--masks", metavar="DIR", help="also write one binary mask per segment into DIR")
    outputs(p)

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
    from .web.commands import add_commands as web_commands

    for add_commands in (inference_commands, dataset_commands, batch_commands, web_commands):
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
