"""``segtruth threshold|grow|islands|fill-between|smooth|hollow|watershed|flood-fill|local-threshold|fast-marching|
scissors``: the editing tools on a case from the command line.

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


def _names(case, segment: str | None) -> list[str]:
    """The segment named on the command line, or every segment of the case."""
    from ..scene.segments import segment_ids

    if segment:
        return [segment]
    segmentation = case.segmentation.GetSegmentation()
    return [segmentation.GetSegment(s).GetName() for s in segment_ids(case.segmentation)]


def _new_label(case, name: str) -> None:
    """A segment a command creates must be in the case's label table (or the table is made for it)."""
    from ..core.labels import LabelTable

    if case.table is None:
        case.table = LabelTable([]).with_label(name, 1)
    elif case.table.by_name(name) is None and not case.segmentation.GetSegmentation().GetSegmentIdBySegmentName(name):
        raise SegTruthError(f"The label table has no label named {name!r} (give --name).")


def _point(text: str) -> list[float]:
    """``X,Y,Z`` (RAS mm) as three numbers; argparse turns the ValueError into its usage error."""
    parts = text.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"a RAS point is X,Y,Z (three numbers), not {text!r}")
    try:
        return [float(v) for v in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a RAS point is X,Y,Z (three numbers), not {text!r}") from None


def _polygon(text: str) -> list[list[float]]:
    """``X,Y,Z;X,Y,Z;...`` (RAS mm) as a list of points."""
    return [_point(part) for part in text.split(";") if part.strip()]


def cmd_smooth(args: argparse.Namespace) -> int:
    from . import smoothing

    with command_outputs(args, args.image, args.segmentation, args.labels) as outputs:
        out = segmentation_output(outputs, args.output)
        case = _open(args, args.segmentation)
        if args.method == "joint":
            smoothing.joint_smooth(
                case.session,
                case.segmentation,
                case.volume,
                [args.segment] if args.segment else None,
                args.sigma_mm,
                progress=progress_bar(args.quiet),
            )
        else:
            for name in _names(case, args.segment):
                smoothing.smooth(
                    case.session, case.segmentation, case.volume, name, args.method, args.kernel_mm, args.sigma_mm
                )
        case.save(out)
    return 0


def cmd_hollow(args: argparse.Namespace) -> int:
    from .hollow import hollow

    with command_outputs(args, args.image, args.segmentation, args.labels) as outputs:
        out = segmentation_output(outputs, args.output)
        case = _open(args, args.segmentation)
        for name in _names(case, args.segment):
            hollow(case.session, case.segmentation, case.volume, name, args.thickness, args.mode)
        case.save(out)
    return 0


def cmd_watershed(args: argparse.Namespace) -> int:
    from .watershed import watershed

    with command_outputs(args, args.image, args.segmentation, args.labels) as outputs:
        out = segmentation_output(outputs, args.output)
        case = _open(args, args.segmentation)
        watershed(
            case.session,
            case.segmentation,
            case.volume,
            object_scale_mm=args.object_scale,
            progress=progress_bar(args.quiet),
        )
        case.save(out)
    return 0


def cmd_flood_fill(args: argparse.Namespace) -> int:
    from .flood_fill import flood_fill

    with command_outputs(args, args.image, args.segmentation, args.labels) as outputs:
        out = segmentation_output(outputs, args.output)
        case = _open(args, args.segmentation)
        _new_label(case, args.name)
        count = flood_fill(
            case.session,
            case.segmentation,
            case.volume,
            args.name,
            args.at,
            args.tolerance,
            args.neighbourhood_mm,
            table=case.table,
        )
        print(f"filled {count} voxels")
        case.save(out)
    return 0


def cmd_local_threshold(args: argparse.Namespace) -> int:
    from .local_threshold import local_threshold

    with command_outputs(args, args.image, args.segmentation, args.labels) as outputs:
        out = segmentation_output(outputs, args.output)
        case = _open(args, args.segmentation)
        _new_label(case, args.name)
        low, high = args.range if args.range else (None, None)
        used = local_threshold(
            case.session,
            case.segmentation,
            case.volume,
            args.name,
            args.at,
            low,
            high,
            args.minimum_diameter,
            args.feature_size,
            args.algorithm,
            args.brush_mm,
            table=case.table,
            progress=progress_bar(args.quiet),
        )
        print(f"threshold {used[0]:g} .. {used[1]:g}")
        case.save(out)
    return 0


def cmd_fast_marching(args: argparse.Namespace) -> int:
    from .fast_marching import fast_marching

    with command_outputs(args, args.image, args.segmentation, args.labels) as outputs:
        out = segmentation_output(outputs, args.output)
        case = _open(args, args.segmentation)
        result = fast_marching(
            case.session,
            case.segmentation,
            case.volume,
            args.segment,
            args.max_volume,
            args.volume_fraction,
            progress=progress_bar(args.quiet),
        )
        print(f"marched {result.voxels} voxels, kept {result.voxels_for_fraction(args.volume_fraction)}")
        case.save(out)
    return 0


def cmd_scissors(args: argparse.Namespace) -> int:
    from .scissors import scissors

    with command_outputs(args, args.image, args.segmentation, args.labels) as outputs:
        out = segmentation_output(outputs, args.output)
        case = _open(args, args.segmentation)
        if args.operation.startswith("fill"):
            _new_label(case, args.segment)
        scissors(
            case.session,
            case.segmentation,
            case.volume,
            args.segment,
            args.polygon,
            args.operation,
            args.reach,
            args.slab_mm,
            args.normal,
            table=case.table,
            slab_side=args.slab_side,
        )
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

    p = command("smooth", "Smooth segments: median, opening, closing, Gaussian, or joint (all at once).", cmd_smooth)
    p.add_argument("image")
    p.add_argument("segmentation", metavar="SEG")
    p.add_argument("--method", choices=["median", "opening", "closing", "gaussian", "joint"], default="median")
    p.add_argument("--kernel-mm", type=float, default=3.0, help="median/opening/closing kernel size (default 3)")
    p.add_argument("--sigma-mm", type=float, default=1.0, help="Gaussian/joint standard deviation (default 1)")
    p.add_argument("--segment", help="only this segment (default: every segment)")
    add_segmentation_output(p)

    p = command("hollow", "Replace segments by shells of a thickness in mm.", cmd_hollow)
    p.add_argument("image")
    p.add_argument("segmentation", metavar="SEG")
    p.add_argument("--thickness", type=float, required=True, metavar="MM")
    p.add_argument(
        "--mode",
        choices=["inside_surface", "medial_surface", "outside_surface"],
        default="inside_surface",
        help="the segment is the shell's inside surface (shell outside; default), its medial or outside surface",
    )
    p.add_argument("--segment", help="only this segment (default: every segment)")
    add_segmentation_output(p)

    p = command("watershed", "Grow every non-empty segment as a basin of the image's gradient.", cmd_watershed)
    p.add_argument("image")
    p.add_argument("segmentation", metavar="SEG", help="seeds: two or more non-empty segments")
    p.add_argument("--object-scale", type=float, default=2.0, metavar="MM", help="gradient smoothing (default 2)")
    add_segmentation_output(p)

    p = command("flood-fill", "Fill the voxels connected to a point within an intensity tolerance.", cmd_flood_fill)
    p.add_argument("image")
    p.add_argument("--at", type=_point, required=True, metavar="X,Y,Z", help="RAS point in mm (--at=-1,2,3)")
    p.add_argument("--tolerance", type=float, default=10.0, help="intensity tolerance (default 10)")
    p.add_argument("--neighbourhood-mm", type=float, default=1.0, help="neighbourhood radius (default 1 mm)")
    p.add_argument("--segmentation", metavar="SEG", help="start from this segmentation")
    p.add_argument("--name", default="flood_fill", help="segment/label name (default: flood_fill)")
    add_segmentation_output(p)

    p = command("local-threshold", "Keep the structure at a point within a threshold range.", cmd_local_threshold)
    p.add_argument("image")
    p.add_argument(
        "--at", type=_point, required=True, metavar="X,Y,Z", action="append", help="RAS point (--at=-1,2,3; repeatable)"
    )
    p.add_argument("--range", nargs=2, type=float, metavar=("LO", "HI"), help="default: the values near the point")
    p.add_argument("--brush-mm", type=float, default=5.0, help="radius that picks the range (default 5)")
    p.add_argument("--minimum-diameter", type=float, default=3.0, metavar="MM", help="default 3")
    p.add_argument("--feature-size", type=float, default=3.0, metavar="MM", help="watershed scale (default 3)")
    p.add_argument("--algorithm", choices=["masking", "watershed", "growcut"], default="masking")
    p.add_argument("--segmentation", metavar="SEG", help="start from this segmentation")
    p.add_argument("--name", default="local_threshold", help="segment/label name (default: local_threshold)")
    add_segmentation_output(p)

    p = command("fast-marching", "Grow a segment from its voxels by Fast Marching.", cmd_fast_marching)
    p.add_argument("image")
    p.add_argument("segmentation", metavar="SEG")
    p.add_argument("--segment", required=True, help="the segment whose voxels are the seeds")
    p.add_argument("--max-volume", type=float, default=5.0, metavar="PCT", help="percent of the image (default 5)")
    p.add_argument("--volume-fraction", type=float, default=1.0, help="keep this fraction of the march (0..1)")
    add_segmentation_output(p)

    p = command("scissors", "Erase or fill inside or outside a polygon.", cmd_scissors)
    p.add_argument("image")
    p.add_argument("segmentation", metavar="SEG")
    p.add_argument("--segment", required=True)
    p.add_argument(
        "--polygon",
        type=_polygon,
        required=True,
        metavar="X,Y,Z;X,Y,Z;...",
        help="RAS points on a view plane (write --polygon='...' when it starts with a minus)",
    )
    p.add_argument(
        "--operation", choices=["erase_inside", "erase_outside", "fill_inside", "fill_outside"], default="erase_inside"
    )
    p.add_argument("--reach", choices=["all", "slice", "slab"], default="all")
    p.add_argument("--slab-mm", type=float, help="slab thickness (with --reach slab)")
    p.add_argument(
        "--slab-side",
        choices=["both", "positive", "negative"],
        default="both",
        help="the slab around the plane (both), or from it along the normal (positive) or against it",
    )
    p.add_argument("--normal", type=_point, metavar="X,Y,Z", help="the view's normal (default: the polygon's)")
    add_segmentation_output(p)
