"""``segtruth train``: the built-in trainer from the command line.

Wired into ``segtruth`` by cli.py with ``add_commands(sub, command)``; torch and MONAI load only when the command
runs. A second run of the same command after an interruption resumes from the checkpoint folder.
"""

from __future__ import annotations

import argparse
import sys

from ..core.commands import Command
from ..core.errors import SegTruthError
from ..core.progress import progress_printer


def _names(text: str | None) -> list[str] | None:
    if not text:
        return None
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise SegTruthError(f"{text!r}: give names separated by commas, none empty.")
    return names


def _progress(args: argparse.Namespace):
    """The bar on a terminal; JSON lines when a parent process runs the command (training.worker)."""
    return progress_printer(args.quiet, getattr(args, "progress_json", False))


# Options of the built-in trainer that nnU-Net's has no counterpart for: refused with --backend nnunet.
BUILT_IN_ONLY = {"minutes": None, "init": None, "dimensions": None, "sparse": False, "only": None, "labels": None,
                 "channel_names": None, "iterations": 50, "filters": None}  # fmt: skip


def cmd_train_nnunet(args: argparse.Namespace) -> int:
    from .nnunet_backend import train_nnunet

    given = [name for name, default in BUILT_IN_ONLY.items() if getattr(args, name) != default]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise SegTruthError(
            f"{flag} is the built-in trainer's; nnU-Net plans its own (with --backend nnunet give --epochs, "
            "--configuration, --folds)."
        )
    result = train_nnunet(
        args.dataset,
        args.output,
        epochs=args.epochs,
        configuration=args.configuration,
        folds=_names(args.folds) or ["0"],
        device=args.device,
        python=args.nnunet_python,
        overwrite=args.overwrite,
        restart=args.restart,
        progress=_progress(args),
        cancel=getattr(args, "cancel", None),
    )
    print(result.describe())
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ..core.labels import LabelTable
    from .trainer import train

    if args.backend == "nnunet":
        return cmd_train_nnunet(args)

    table = LabelTable.read(args.labels) if args.labels else None
    result = train(
        args.dataset,
        args.output,
        epochs=args.epochs,
        minutes=args.minutes,
        device=args.device,
        init=args.init,
        seed=args.seed,
        dimensions=args.dimensions,
        sparse=args.sparse,
        labels=_names(args.only),
        table=table,
        channel_names=_names(args.channel_names),
        iterations=args.iterations,
        base_filters=args.filters,
        overwrite=args.overwrite,
        restart=args.restart,
        progress=_progress(args),
        cancel=getattr(args, "cancel", None),
    )
    print(
        f"wrote {result.model}: {len(result.history)} epoch(s), best validation Dice {result.best_dice:.3f} at epoch "
        f"{result.best_epoch}, {result.seconds:.0f} s (stopped by {result.stopped})"
    )
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from .bootstrapping import bootstrap

    bootstrap(
        args.dataset,
        args.output,
        minutes=args.minutes,
        epochs=args.epochs,
        device=args.device,
        seed=args.seed,
        labels=_names(args.only),
        channel_names=_names(args.channel_names),
        overwrite=args.overwrite,
        progress=_progress(args),
        cancel=getattr(args, "cancel", None),
    )
    print(f"wrote {args.output}")
    return 0


def cmd_rank(args: argparse.Namespace) -> int:
    from ..core.atomic import Outputs, atomic_write_text
    from .ranking import rank_cases

    with Outputs(inputs=[args.cases, args.model]) as outputs:
        csv = outputs.file(args.output) if args.output else None  # checked before any case is scored
        ranking = rank_cases(args.cases, args.model, device=args.device, sparse=args.sparse,
                             progress=_progress(args), cancel=getattr(args, "cancel", None))  # fmt: skip
        print(ranking.format())
        if csv is not None:
            atomic_write_text(csv, ranking.to_csv())
    if args.output:
        print(f"wrote {args.output}")
    for case in ranking.failed:
        print(f"segtruth: error: {case.error}", file=sys.stderr)
    # A worker's parent reads the failed cases from the CSV; on the command line they make the exit 1.
    return 1 if ranking.failed and not getattr(args, "progress_json", False) else 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, help="time budget (default 10 when --epochs is not given)")
    p.add_argument("--epochs", type=int, help="number of epochs (whichever of --epochs and --minutes ends first)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed trains the same weights")
    p.add_argument("--only", metavar="NAMES", help="train only these labels (comma-separated names)")
    p.add_argument("--channel-names", metavar="NAMES", help="modality per channel, e.g. CT (CT normalisation)")
    p.add_argument("--overwrite", action="store_true", help="replace a model folder SegTruth wrote before")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def add_commands(sub, command: Command) -> None:
    """Add ``train``, ``bootstrap`` and ``rank`` to the segtruth command."""
    p = command(
        "train",
        "Train a segmentation model on labelled cases (nnU-Net raw folder, cases folder or manifest); OUTPUT is a "
        "model folder that segment loads.",
        cmd_train,
    )
    p.add_argument("dataset", metavar="DATASET", help="nnU-Net raw dataset folder, cases folder or manifest")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model folder to write")
    _common(p)
    p.add_argument("--init", metavar="MODEL", help="fine-tune a model segtruth train wrote (same labels)")
    p.add_argument("--dimensions", type=int, choices=[2, 3], help="2: a 2D model on axial slices (default: the data's)")
    p.add_argument(
        "--sparse",
        action="store_true",
        help="only axial slices holding a label are annotated; the others are unknown, not background",
    )
    p.add_argument("--labels", help="label table (.json or .csv) for a cases folder or manifest")
    p.add_argument("--iterations", type=int, default=50, help="batches per epoch (default 50)")
    p.add_argument("--filters", type=int, help="filters of the first stage (default 16 on a CPU, 32 on a GPU)")
    p.add_argument("--restart", action="store_true", help="ignore a checkpoint of an earlier training")
    p.add_argument(
        "--backend",
        choices=["segtruth", "nnunet"],
        default="segtruth",
        help="segtruth: the built-in trainer (default); nnunet: nnunetv2's own planning and training, run from the "
        "environment that has it (an nnU-Net raw dataset; OUTPUT is its results folder)",
    )
    p.add_argument("--configuration", default="3d_fullres", help="with --backend nnunet: 2d, 3d_fullres (default), ...")
    p.add_argument("--folds", metavar="F,F", help="with --backend nnunet: folds to train (default 0)")
    p.add_argument(
        "--nnunet-python", metavar="PYTHON", help="with --backend nnunet: the python of nnunetv2's environment"
    )

    p = command(
        "bootstrap",
        "From cases labelled on a few axial slices: a 2D model, its predictions on the whole volumes, then a 3D "
        "model trained on those predictions with the labelled slices kept as drawn.",
        cmd_bootstrap,
    )
    p.add_argument("dataset", metavar="DATASET", help="cases labelled on some axial slices (folder or manifest)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="the 3D model folder to write")
    _common(p)

    p = command(
        "rank",
        "Order unlabelled cases by the model's uncertainty (what to label next) and labelled ones by how much "
        "their labels disagree with it (what to review).",
        cmd_rank,
    )
    p.add_argument(
        "cases", metavar="CASES", help="folder (images, CASE.seg.nrrd beside the labelled), manifest or glob"
    )
    p.add_argument("--model", required=True, help="model folder or catalog name (e.g. what segtruth train wrote)")
    p.add_argument("-o", "--output", metavar="CSV", help="also write the ranking as CSV")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
    p.add_argument(
        "--sparse", action="store_true", help="labelled cases are annotated on some axial slices: compare those only"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
