"""``segtruth dataset nnunet|monai``, ``slices``, ``crop``, ``compare``, ``dicom-seg`` and ``report``.

``add_commands(sub, command)`` registers them on the main parser with the same ``command(name, help,
handler)`` helper as the other commands. Handlers return an exit code and raise SegTruthError on bad input;
work over many cases shows a progress bar with the time left on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.atomic import Outputs
from ..core.commands import Command
from ..core.errors import SegTruthError
from ..core.progress import progress_bar


def _session():
    from ..scene.session import Session

    return Session.create()


def _table(args: argparse.Namespace):
    from ..core.labels import LabelTable

    return LabelTable.read(args.labels) if getattr(args, "labels", None) else None


def _cases(manifest: str, table, rois: list[str] | None = None) -> tuple[list, list[str]]:
    """A manifest's cases, or a DICOM tree's (each image series with the RTSTRUCT or SEG that refers to it).

    The one reading of a dataset's cases for every command that takes many; ``rois`` (``--roi``) picks the
    structures of each case's RTSTRUCT or SEG.
    """
    from .dicom_tree import cases_from_dicom_tree, is_dicom_tree, with_rois
    from .manifest import read_cases

    if is_dicom_tree(manifest):
        found = cases_from_dicom_tree(manifest, table)
        return with_rois(found.entries, rois), found.report()
    return with_rois(read_cases(manifest), rois), []


def cmd_dataset_nnunet(args: argparse.Namespace) -> int:
    from .nnunet import dataset_folder_name, export_nnunet, verify_with_nnunet
    from .report import check_report_path, dataset_report

    channel_names = [n.strip() for n in args.channel_names.split(",")] if args.channel_names else None
    target = Path(args.output) / dataset_folder_name(args.id, args.name)
    with Outputs(args.overwrite, inputs=[args.manifest, args.labels]) as outputs:
        report_path = outputs.file(check_report_path(args.report)) if args.report else None
        staged = outputs.folder(target, create_parents=True)
        table = _table(args)
        entries, notes = _cases(args.manifest, table, args.roi)
        session = _session()
        export_nnunet(
            session,
            entries,
            args.output,
            args.id,
            args.name,
            table,
            channel_names,
            args.overwrite,
            progress_bar(args.quiet),
            staged=staged,
            require_channel_names=True,
        )
        if report_path is not None:
            cases = dataset_report(session, staged, report_path, progress=progress_bar(args.quiet))
    print(f"wrote {target} ({len(entries)} cases)")
    for note in notes:
        print(f"note: {note}")
    if args.report:
        _print_report(args.report, cases)
    if args.verify:
        passed, output = verify_with_nnunet(target)
        if not passed:
            print(output, file=sys.stderr)
            raise SegTruthError(f"{target}: nnU-Net's verify_dataset_integrity failed (its output is above).")
        print("nnU-Net's verify_dataset_integrity passed")
    return 0


def cmd_dataset_monai(args: argparse.Namespace) -> int:
    from .monai_datalist import export_monai, folds_note

    table = _table(args)
    entries, notes = _cases(args.manifest, table, args.roi)
    path = export_monai(
        _session(),
        entries,
        args.output,
        table,
        args.validation,
        args.folds,
        args.seed,
        args.overwrite,
        progress_bar(args.quiet),
    )
    print(f"wrote {path} ({len(entries)} cases)")
    for line in notes:
        print(f"note: {line}")
    note = folds_note(path)
    if note:
        print(note)
    return 0


def cmd_dataset_sample(args: argparse.Namespace) -> int:
    from .sample import write_sample_cases

    folder = write_sample_cases(_session(), args.output, args.overwrite)
    print(f"wrote {folder} (3 annotated chest CT cases: CASE.nrrd|.nii.gz + CASE.seg.nrrd)")
    return 0


def _entries(inputs: list[str], table=None, rois: list[str] | None = None):
    from .dicom_tree import with_rois
    from .manifest import CaseEntry

    if len(inputs) == 1:
        entries, notes = _cases(inputs[0], table, rois)
        for line in notes:
            print(f"note: {line}")
        return entries
    if len(inputs) == 2:
        image = Path(inputs[0])
        name = image.name.split(".")[0] or "case"
        return with_rois([CaseEntry(name, (image,), Path(inputs[1]))], rois)
    raise SegTruthError("Give a manifest, or one image and its segmentation.")


def cmd_slices(args: argparse.Namespace) -> int:
    from .slices import export_slices

    table = _table(args)
    folder = export_slices(
        _session(),
        _entries(args.inputs, table, args.roi),
        args.output,
        args.view,
        args.format,
        tuple(args.window) if args.window else None,
        args.labelled_only,
        table,
        args.overwrite,
        progress_bar(args.quiet),
    )
    print(f"wrote {folder}")
    return 0


def cmd_crop(args: argparse.Namespace) -> int:
    from .crop import crop_case

    first_last = None
    if args.box:
        first_last = (tuple(args.box[0::2]), tuple(args.box[1::2]))
    roi = (tuple(args.roi[:3]), tuple(args.roi[3:])) if args.roi else None
    box = crop_case(
        _session(),
        args.image,
        args.segmentation,
        args.output,
        args.mask_output,
        first_last,  # type: ignore[arg-type]
        roi,  # type: ignore[arg-type]
        args.margin,
        args.label,
        _table(args),
        args.overwrite,
        args.structure,
    )
    print(f"cropped to voxels {box.describe()} ({'x'.join(map(str, box.size))})")
    print(f"wrote {args.output}\nwrote {args.mask_output}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ..core.atomic import atomic_write_text
    from .compare import compare_segmentations

    with Outputs(inputs=[args.a, args.b, args.image, args.labels]) as outputs:
        csv = outputs.file(args.csv) if args.csv else None  # checked before the comparison is computed
        comparison = compare_segmentations(_session(), args.a, args.b, args.image, _table(args), args.roi)
        print(comparison.format())
        if csv is not None:
            atomic_write_text(csv, comparison.to_csv())
    if args.csv:
        print(f"wrote {args.csv}")
    return 0


def cmd_dicom_seg(args: argparse.Namespace) -> int:
    from .dicom_seg import write_dicom_seg

    path = write_dicom_seg(
        _session(), args.dicom, args.segmentation, args.output, _table(args), args.series, args.overwrite, args.roi
    )
    print(f"wrote {path}")
    return 0


def cmd_rtstruct(args: argparse.Namespace) -> int:
    from .rtstruct_export import write_rtstruct

    path = write_rtstruct(
        _session(), args.dicom, args.segmentation, args.output, _table(args), args.series, args.overwrite, args.roi
    )
    print(f"wrote {path}")
    return 0


def _print_report(output: str | Path, cases: list) -> None:
    problems = sum(len(case.problems) for case in cases)
    print(f"wrote {output} ({len(cases)} cases, {problems} problem(s))")


def cmd_report(args: argparse.Namespace) -> int:
    from .report import dataset_report

    cases = dataset_report(
        _session(), args.source, args.output, args.pictures, progress=progress_bar(args.quiet), rois=args.roi
    )
    _print_report(args.output, cases)
    if args.pictures:
        print(f"wrote {args.pictures}")
    return 0


def add_commands(
    sub: argparse._SubParsersAction,
    command: Command,
) -> None:
    """Register the dataset commands on ``segtruth``'s sub-command parser."""

    def common(p: argparse.ArgumentParser, labels: bool = True) -> None:
        if labels:
            p.add_argument("--labels", help="label table (.json or .csv) every case must follow")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    def add_roi(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--roi", action="append", metavar="NAME", help="RTSTRUCT/SEG structure to take (name or glob; repeatable)"
        )

    manifest_help = (
        "manifest .csv/.json (columns case,image,segmentation; several channels: image_0000,image_0001,...; "
        "paths relative to it), or a folder with one, or a folder of CASE.nrrd + CASE.seg.nrrd pairs, or a DICOM "
        "tree (each image series with the RTSTRUCT or SEG that refers to it)"
    )
    p = command("dataset", "Export annotated cases as a training dataset: nnU-Net v2 or a MONAI datalist.", _usage)
    formats = p.add_subparsers(dest="dataset_format", metavar="FORMAT")
    formats.required = True

    q = formats.add_parser(
        "nnunet",
        help="nnU-Net v2 raw dataset DIR/DatasetNNN_NAME (imagesTr, labelsTr, imagesTs, dataset.json)",
        description="Write an nnU-Net v2 raw dataset; all cases or nothing.",
    )
    q.set_defaults(handler=cmd_dataset_nnunet)
    q.add_argument("manifest", metavar="MANIFEST", help=manifest_help)
    q.add_argument("-o", "--output", required=True, metavar="DIR", help="nnUNet_raw folder to put the dataset in")
    q.add_argument("--name", required=True, help="dataset name (letters, digits, _ and -)")
    q.add_argument("--id", required=True, type=int, metavar="NNN", help="dataset id, 1-999")
    q.add_argument(
        "--channel-names",
        help="comma-separated, e.g. CT or T1,T2 (nnU-Net normalises CT specially); needed unless the images record "
        "their modality (DICOM series, dcm2niix CASE.json sidecars)",
    )
    q.add_argument("--report", metavar="HTML", help="also write the QC report of the exported dataset")
    q.add_argument("--verify", action="store_true", help="also run nnU-Net's verify_dataset_integrity (needs nnunetv2)")
    q.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder of that name")
    add_roi(q)
    common(q)

    q = formats.add_parser(
        "monai",
        help="MONAI Decathlon-style datalist FILE.json and converted images in a folder FILE/ beside it",
        description="Write a MONAI datalist with a seeded training/validation split; all cases or nothing.",
    )
    q.set_defaults(handler=cmd_dataset_monai)
    q.add_argument("manifest", metavar="MANIFEST", help=manifest_help)
    q.add_argument("-o", "--output", required=True, metavar="FILE", help="datalist .json")
    q.add_argument("--validation", type=float, default=0.2, metavar="F", help="validation fraction (default 0.2)")
    q.add_argument("--folds", type=int, help="also give each training case a 'fold' (K-fold cross-validation)")
    q.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    q.add_argument("--overwrite", action="store_true", help="replace an existing datalist and its folder")
    add_roi(q)
    common(q)

    q = formats.add_parser(
        "sample",
        help="a folder of 3 annotated cases made from the sample chest CT, to try the exports on",
        description="Write 3 annotated cases (CASE.nrrd|.nii.gz + CASE.seg.nrrd) made from slicerio's chest CT.",
    )
    q.set_defaults(handler=cmd_dataset_sample)
    q.add_argument("output", metavar="DIR", help="new folder")
    q.add_argument("--overwrite", action="store_true", help="replace an existing folder")

    p = command("slices", "Write 2D image and mask slices (PNG, NPZ or NIfTI) for 2D networks.", cmd_slices)
    p.add_argument(
        "inputs", nargs="+", metavar="MANIFEST | IMAGE SEG", help="a manifest, or an image and its segmentation"
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="new folder for the slices")
    p.add_argument("--view", default="axial", choices=("axial", "coronal", "sagittal"), help="slice direction")
    p.add_argument("--format", default="png", choices=("png", "npz", "nii.gz"))
    p.add_argument("--window", nargs=2, type=float, metavar=("CENTER", "WIDTH"), help="PNG intensity window")
    p.add_argument("--labelled-only", action="store_true", help="only slices that hold a label")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    add_roi(p)
    common(p)

    p = command("crop", "Crop an image and its mask to a box, a RAS region or the labels plus a margin.", cmd_crop)
    p.add_argument("image")
    p.add_argument("segmentation", metavar="SEG", help=".seg.nrrd or labelmap on IMAGE's grid")
    p.add_argument("-o", "--output", required=True, help="cropped image (.nii.gz, .nii, .nrrd, .mha)")
    p.add_argument("-m", "--mask-output", required=True, help="cropped labelmap (.nii.gz, .nii, .nrrd)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--box", nargs=6, type=int, metavar=("I0", "I1", "J0", "J1", "K0", "K1"), help="voxels, inclusive"
    )
    where.add_argument("--roi", nargs=6, type=float, metavar=("R0", "A0", "S0", "R1", "A1", "S1"), help="RAS mm")
    where.add_argument("--margin", type=float, metavar="MM", help="the labels' extent plus MM on every side")
    p.add_argument("--label", help="with --margin: the extent of this label only")
    p.add_argument(
        "--structure",
        action="append",
        metavar="NAME",
        help="RTSTRUCT/SEG structure to take (name or glob; repeatable); what --roi means elsewhere, here --roi is "
        "the RAS box",
    )
    p.add_argument("--no-overwrite", dest="overwrite", action="store_false", help="refuse to replace outputs")
    common(p)

    p = command("compare", "Dice, IoU, HD95, mean surface distance and volumes of B against A, per label.", cmd_compare)
    p.add_argument("a", metavar="A", help="segmentation (.seg.nrrd, labelmap, RTSTRUCT, DICOM SEG), e.g. the reference")
    p.add_argument("b", metavar="B", help="segmentation to compare with A")
    p.add_argument("--image", help="compare on this image's grid (default: A's grid; an RTSTRUCT's series)")
    add_roi(p)
    p.add_argument("--csv", metavar="OUT", help="also write the table as CSV")
    common(p)

    p = command("dicom-seg", "Write a DICOM SEG of a segmentation of a DICOM series (highdicom).", cmd_dicom_seg)
    p.add_argument("dicom", metavar="DICOM_DIR", help="folder holding the series")
    p.add_argument("segmentation", metavar="SEG", help=".seg.nrrd or labelmap on the series' grid")
    p.add_argument("-o", "--output", required=True, metavar="OUT.dcm")
    p.add_argument("--series", metavar="UID", help="the series to use when the folder holds several")
    p.add_argument("--no-overwrite", dest="overwrite", action="store_false", help="refuse to replace OUT")
    add_roi(p)
    common(p)

    p = command(
        "rtstruct", "Write an RT Structure Set of a segmentation of a DICOM series (pixel-edge contours).", cmd_rtstruct
    )
    p.add_argument("dicom", metavar="DICOM_DIR", help="folder holding the series")
    p.add_argument("segmentation", metavar="SEG", help=".seg.nrrd, labelmap, RTSTRUCT or DICOM SEG on the series' grid")
    p.add_argument("-o", "--output", required=True, metavar="OUT.dcm")
    p.add_argument("--series", metavar="UID", help="the series to use when the folder holds several")
    p.add_argument("--no-overwrite", dest="overwrite", action="store_false", help="refuse to replace OUT")
    add_roi(p)
    common(p)

    p = command("report", "Write a self-contained HTML quality report of a dataset.", cmd_report)
    p.add_argument("source", metavar="DIR", help="nnU-Net dataset folder, MONAI datalist .json, or manifest")
    p.add_argument("-o", "--output", required=True, metavar="report.html")
    p.add_argument("--pictures", metavar="DIR", help="also write one QC PNG per case into this new folder")
    add_roi(p)
    common(p, labels=False)


def _usage(args: argparse.Namespace) -> int:
    raise SegTruthError("Choose a dataset format: segtruth dataset nnunet ... or segtruth dataset monai ...")
