"""The ``segtruth`` command: the same logic functions as scripts and the Slicer module.

Every command writes its outputs atomically on the source image's grid and exits 0 on success, or prints
one clear sentence and exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

from .atomic import atomic_path
from .errors import Cancelled, SegTruthError
from .export import check_output_path

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def _progress_printer(quiet: bool) -> Callable[[float, str], None] | None:
    if quiet:
        return None
    tty = sys.stderr.isatty()

    def show(fraction: float, message: str) -> None:
        line = f"[{fraction * 100:5.1f}%] {message}"
        if tty:
            sys.stderr.write("\r" + line.ljust(70) + ("\n" if fraction >= 1.0 else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return show


def _open(args: argparse.Namespace, segmentation: str | None = None):
    from .case import Case

    return Case.open(args.image, segmentation, getattr(args, "labels", None))


def _save(case, out: str, overwrite: bool) -> None:
    path = case.save(out, overwrite=overwrite)
    print(f"wrote {path}")


def cmd_info(args: argparse.Namespace) -> int:
    from .info import describe, format_info
    from .session import Session

    info = describe(Session.create(), args.file)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def cmd_threshold(args: argparse.Namespace) -> int:
    from .labels import LabelTable
    from .tools.threshold import threshold

    check_output_path(args.output)
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
    _save(case, args.output, args.overwrite)
    return 0


def cmd_grow(args: argparse.Namespace) -> int:
    from .tools.grow import grow_from_seeds

    check_output_path(args.output)
    case = _open(args, args.seeds)
    grow_from_seeds(case.session, case.segmentation, case.volume, progress=_progress_printer(args.quiet))
    _save(case, args.output, args.overwrite)
    return 0


def cmd_islands(args: argparse.Namespace) -> int:
    from .segments import segment_ids
    from .tools import islands

    check_output_path(args.output)
    case = _open(args, args.segmentation)
    segmentation = case.segmentation.GetSegmentation()
    names = (
        [args.segment]
        if args.segment
        else [segmentation.GetSegment(s).GetName() for s in segment_ids(case.segmentation)]
    )
    size = {"min_mm3": args.min_size} if args.mm3 else {"min_voxels": int(args.min_size or 0)}
    for name in names:
        if args.keep_largest:
            islands.keep_largest_island(case.session, case.segmentation, case.volume, name)
        elif args.split:
            islands.split_islands(case.session, case.segmentation, case.volume, name)
        else:
            islands.remove_small_islands(case.session, case.segmentation, case.volume, name, **size)
    if args.split:
        case.table = None  # split islands are new segments: the table is rebuilt from the segments
    _save(case, args.output, args.overwrite)
    return 0


def cmd_fill_between(args: argparse.Namespace) -> int:
    from .tools.fill_between import fill_between_slices

    check_output_path(args.output)
    case = _open(args, args.segmentation)
    fill_between_slices(case.session, case.segmentation, case.volume)
    _save(case, args.output, args.overwrite)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    check_output_path(args.output)
    case = _open(args, args.segmentation)
    _save(case, args.output, args.overwrite)
    if args.masks:
        from .export import write_segment_masks

        for path in write_segment_masks(
            case.session, case.segmentation, case.volume, args.masks, overwrite=args.overwrite
        ):
            print(f"wrote {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .recipe import Recipe

    recipe = Recipe.read(args.recipe)
    outputs = args.outputs or recipe.outputs
    if not outputs:
        raise SegTruthError(f"{args.recipe}: the recipe lists no outputs; add 'outputs:' or give --output-name.")
    for name in outputs:
        check_output_path(name)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    from .case import Case

    case = Case.open(args.image, args.segmentation or recipe.segmentation, recipe.table)
    recipe.run(case.session, case.segmentation, case.volume, progress=_progress_printer(args.quiet))
    write_all(case, [outdir / name for name in outputs], args.overwrite)
    return 0


def write_all(case, paths: Sequence[Path], overwrite: bool) -> None:
    """Write several outputs so that either all appear or none does."""
    with ExitStack() as stack:
        temps = [stack.enter_context(atomic_path(path, overwrite)) for path in paths]
        for temp in temps:
            case.save(temp)
    for path in paths:
        print(f"wrote {path}")


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(Path(args.outdir), progress=_progress_printer(args.quiet))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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

    p = command("islands", "Keep the largest island, remove small islands, or split islands.", cmd_islands)
    p.add_argument("image")
    p.add_argument("segmentation", metavar="SEG", help=".seg.nrrd or labelmap on IMAGE's grid")
    group = p.add_mutually_exclusive_group(required=True)
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
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except Cancelled as error:
        print(f"segtruth: {error}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("segtruth: interrupted; nothing was written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SegTruthError as error:
        print(f"segtruth: error: {error}", file=sys.stderr)
        return EXIT_ERROR
