"""``segtruth threshold|grow|islands|fill-between``: the editing tools on a case from the command line.

Wired into ``segtruth`` by cli.py with ``add_commands(sub, command)``. Each command opens the image (and a
segmentation on its grid), runs one tool as the Slicer panel and recipes do, and writes the result on the
image's exact grid.
"""

from __future__ import annotations

import argparse

from ..core.commands import Command, add_segmentation_output, command_outputs, segmentation_output
from ..core.errors import SegTruthError
from ..core.progress import progress_bar


def _open(args: argparse.Namespace, segmentation: str | None = None):
    from ..scene.case import Case

    return Case.open(args.image, segmentation, getattr(args, "labels", None))


def cmd_threshold(args: argparse.Namespace) -> int:
    from ..core.labels import LabelTable
    from .threshold import threshold

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
    from .grow import grow_from_seeds

    with command_outputs(args, args.image, args.seeds, args.labels) as outputs:
        out = segmentation_output(outputs, args.output)
        case = _open(args, args.seeds)
        grow_from_seeds(case.session, case.segmentation, case.volume, progress=progress_bar(args.quiet))
        case.save(out)
    return 0


def cmd_islands(args: argparse.Namespace) -> int:
    from ..scene.segments import segment_ids
    from . import islands

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
    from .fill_between import fill_between_slices

    with command_outputs(args, args.image, args.segmentation, args.labels) as outputs:
        out = segmentation_output(outputs, args.output)
        case = _open(args, args.segmentation)
        fill_between_slices(case.session, case.segmentation, case.volume)
        case.save(out)
    return 0


def add_commands(sub: argparse._SubParsersAction, command: Command) -> None:
    """Register the tool commands on ``segtruth``'s sub-command parser."""
    p = command("threshold", "Voxels with LO <= value <= HI get label 1 (or --name's value).", cmd_threshold)
    p.add_argument("image")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--range", nargs=2, type=float, metavar=("LO", "HI"))
    group.add_argument("--method", help="automatic threshold: otsu, triangle, maximum_entropy, ...")
    p.add_argument("--name", default="threshold", help="segment/label name (default: threshold)")
    add_segmentation_output(p)

    p = command("grow", "Grow from seeds: each non-zero seed value fills its region and keeps its value.", cmd_grow)
    p.add_argument("image")
    p.add_argument("--seeds", required=True, help="seed labelmap on IMAGE's grid (0 = unknown) or .seg.nrrd")
    add_segmentation_output(p)

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
    add_segmentation_output(p)

    p = command("fill-between", "Interpolate segments drawn on a few slices into 3D.", cmd_fill_between)
    p.add_argument("image")
    p.add_argument("segmentation", metavar="SEG")
    add_segmentation_output(p)
