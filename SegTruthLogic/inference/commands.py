"""``segtruth models`` and ``segtruth segment``: the catalog and the engine from the command line.

Wired into ``segtruth`` by cli.py with ``add_commands(sub, command)``; handlers return an exit code and raise
SegTruthError for bad input, which the CLI prints as one line.
"""

from __future__ import annotations

import argparse
import json

from ..core.atomic import Outputs
from ..core.commands import Command
from ..core.jobs import run_worker
from ..core.progress import progress_printer


def cmd_models(args: argparse.Namespace) -> int:
    from .catalog import describe_models

    rows = describe_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['name']}: {row['description']}")
        print(f"    weights: {row['weights']} (available: {row['available']})")
        if row["license"]:
            print(f"    license: {row['license']}")
    return 0


def cmd_segment(args: argparse.Namespace) -> int:
    from ..core.formats import check_output_path
    from ..scene.case import Case
    from .catalog import load_model
    from .engine import segment

    check_output_path(args.output)
    progress = progress_printer(args.quiet, getattr(args, "progress_json", False))
    with Outputs(args.overwrite, inputs=[args.image, args.model]) as outputs:
        out = outputs.file(args.output)  # checked before the model and the image are read
        model = load_model(args.model, progress=progress)  # before loading the image: a bad model fails fast
        case = Case.open(args.image)
        case.segmentation = segment(
            case.session,
            case.segmentation,
            case.volume,
            model,
            args.device,
            args.tta,
            args.batch_size,
            progress,
            precision=getattr(args, "precision", None),
        )
        case.table = model.card.labels
        case.save(out)
    if getattr(args, "progress_json", False):
        print(json.dumps({"event": "written", "path": str(args.output)}), flush=True)
    else:
        print(f"wrote {args.output}")
    return 0


def add_precision_argument(p: argparse.ArgumentParser) -> None:
    """``--precision``: shared by ``segment`` and ``batch``."""
    from .precision import PRECISIONS

    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="network arithmetic: auto (default; bfloat16 on CPUs with native bfloat16, float32 again where "
        "two classes are near a tie; float16 on CUDA), bfloat16 without that pass, float32 to force full "
        "precision (or set SEGTRUTH_PRECISION)",
    )


def add_segment_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="image file (NIfTI, NRRD, MHA) or DICOM folder")
    p.add_argument("--model", required=True, metavar="NAME_OR_PATH", help="catalog name, model folder or card")
    p.add_argument("-o", "--output", required=True, help="OUT: .nii.gz, .nii, .nrrd (labelmap) or .seg.nrrd")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"], help="default: auto")
    p.add_argument("--tta", action="store_true", help="average over mirrored inputs (slower, off by default)")
    p.add_argument(
        "--batch-size", type=int, help="tiles per network call (default: 1 for 3D models, a stack of tiles for 2D)"
    )
    add_precision_argument(p)
    p.add_argument("--no-overwrite", dest="overwrite", action="store_false", help="refuse to replace OUT")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def add_commands(sub, command: Command) -> None:
    """Add ``models`` and ``segment`` to the segtruth command."""
    p = command("models", "List the model catalog: names, where the weights come from, availability.", cmd_models)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = command(
        "segment", "Segment an image with a model; OUT on IMAGE's grid with the model's label values.", cmd_segment
    )
    add_segment_arguments(p)


def main(argv: list[str] | None = None) -> int:
    """The subprocess worker's entry: one JSON event per line on stdout, one error line on stderr."""
    parser = argparse.ArgumentParser(prog="segtruth-worker")
    add_segment_arguments(parser)
    args = parser.parse_args(argv)
    args.progress_json = True
    # A cancel from run_in_subprocess unwinds where the work is, so temporary files are removed.
    return run_worker(lambda: cmd_segment(args), "inference")
