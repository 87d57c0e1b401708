"""MONAI Decathlon-style datalists: ``{"training": [{"image", "label"}], "validation": [...], "testing": [...]}``.

The cases are converted like the nnU-Net export (NIfTI images and labels on each image's own grid, values
from the label table) into a folder named after the datalist, beside it, because MONAI's readers cannot open
a Slicer ``.seg.nrrd`` and read NRRD only with ITK installed. Paths in the datalist are relative to its
folder, which is what ``monai.data.load_decathlon_datalist`` joins them with. The validation split and the
folds depend only on the case ids and the seed, so a re-export with more cases keeps earlier assignments
stable only when the seed and case list are unchanged; both are recorded in the datalist.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

from ..core.atomic import atomic_folder, atomic_write_text, check_output_file, full_suffix
from ..core.errors import SegTruthError
from ..core.labels import LabelTable
from ..core.progress import CancelToken, ProgressCallback, report
from ..scene.session import Session
from .cases import DatasetLabels, write_cases
from .manifest import CaseEntry

FILE_ENDING = ".nii.gz"


def split_cases(
    cases: Sequence[str], validation_fraction: float = 0.2, folds: int | None = None, seed: int = 0
) -> tuple[list[str], list[str], dict[str, int]]:
    """Training ids, validation ids and (with ``folds``) each training id's fold, shuffled by ``seed``."""
    if not 0.0 <= validation_fraction < 1.0:
        raise SegTruthError(f"The validation fraction {validation_fraction:g} must be at least 0 and below 1.")
    order = sorted(cases)
    random.Random(seed).shuffle(order)
    count = round(len(order) * validation_fraction)
    if validation_fraction > 0 and len(order) > 1:
        count = min(max(count, 1), len(order) - 1)
    validation, training = sorted(order[:count]), order[count:]
    fold_of: dict[str, int] = {}
    if folds is not None:
        used = fold_count(folds, len(training))
        fold_of = {case: n % used for n, case in enumerate(training)}
    return sorted(training), validation, fold_of


def fold_count(requested: int, training: int) -> int:
    """The folds a split makes: as many as requested, at most one per training case (each fold validates one).

    Fewer training cases than folds would leave folds with nothing to validate on, so the count is capped
    (the datalist records both numbers and the command says so) rather than failing a small first try.
    """
    if requested < 2:
        raise SegTruthError(f"{requested} folds: cross-validation needs at least 2.")
    if training < 2:
        raise SegTruthError(
            f"{requested} folds need at least 2 training cases; there are {training} after the validation split."
        )
    return min(requested, training)


def folds_note(datalist: str | Path) -> str | None:
    """A line saying that a written datalist has fewer folds than were asked for, or None."""
    split = json.loads(Path(datalist).read_text(encoding="utf-8")).get("split", {})
    requested, used = split.get("folds_requested"), split.get("folds")
    if requested is None or requested == used:
        return None
    return (
        f"note: {requested} folds were asked for but only {split.get('training_cases')} cases are left for "
        f"training, so {used} folds were made."
    )


def data_folder(datalist: str | Path) -> Path:
    """Where the converted images and labels go: a folder beside the datalist named after it."""
    datalist = Path(datalist)
    if full_suffix(datalist) != ".json":
        raise SegTruthError(f"{datalist}: a datalist must be a .json file.")
    return datalist.with_name(datalist.name[: -len(".json")])


def export_monai(
    session: Session,
    entries: Sequence[CaseEntry],
    datalist: str | Path,
    table: LabelTable | None = None,
    validation_fraction: float = 0.2,
    folds: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Convert the cases and write the datalist; all or nothing. Returns the datalist path."""
    datalist = Path(datalist)
    folder = data_folder(datalist)
    check_output_file(datalist, overwrite, parent_made=True)
    if not entries:
        raise SegTruthError("The case list is empty; nothing to export.")
    labelled = [entry.case for entry in entries if entry.labelled]
    if not labelled:
        raise SegTruthError("No case has a segmentation; a training datalist needs labelled cases.")
    training, validation, fold_of = split_cases(labelled, validation_fraction, folds, seed)
    channels = len(entries[0].images)

    def layout(entry: CaseEntry) -> tuple[list[str], str | None]:
        images = "imagesTr" if entry.labelled else "imagesTs"
        names = (
            [f"{images}/{entry.case}{FILE_ENDING}"]
            if channels == 1
            else [f"{images}/{entry.case}_{c:04d}{FILE_ENDING}" for c in range(channels)]
        )
        return names, (f"labelsTr/{entry.case}{FILE_ENDING}" if entry.labelled else None)

    labels = DatasetLabels(table)
    wrote_datalist = False
    try:
        with atomic_folder(folder, overwrite) as temp:
            for sub in ("imagesTr", "labelsTr"):
                (temp / sub).mkdir()
            if len(labelled) < len(entries):
                (temp / "imagesTs").mkdir()
            written = {
                case.case: case for case in write_cases(session, entries, temp, layout, labels, progress, cancel)
            }

            def item(case: str) -> dict:
                entry = written[case]
                images = [f"{folder.name}/{name}" for name in entry.images]
                record: dict = {"image": images[0] if channels == 1 else images}
                if entry.label is not None:
                    record["label"] = f"{folder.name}/{entry.label}"
                if case in fold_of:
                    record["fold"] = fold_of[case]
                return record

            final = labels.table
            content = {
                "name": folder.name,
                "description": "Exported by SegTruth: images and labels on each image's own grid.",
                "labels": {"0": "background", **{str(label.value): label.name for label in final}},
                "modality": {str(c): f"image_{c:04d}" if channels > 1 else "image" for c in range(channels)},
                "numTraining": len(labelled),
                "split": {
                    "seed": seed,
                    "validation_fraction": validation_fraction,
                    "folds": None if folds is None else fold_count(folds, len(training)),
                    **({} if folds is None else {"folds_requested": folds, "training_cases": len(training)}),
                },
                "training": [item(case) for case in training],
                "validation": [item(case) for case in validation],
                "testing": [item(entry.case) for entry in entries if not entry.labelled],
            }
            atomic_write_text(temp / "labels.json", final.to_json())
            # Written last, inside the block: if it fails the folder is not renamed into place, and if the
            # rename fails the datalist is removed again.
            atomic_write_text(datalist, json.dumps(content, indent=2) + "\n", overwrite)
            wrote_datalist = True
    except BaseException:
        if wrote_datalist:  # the folder it names was not renamed into place
            datalist.unlink(missing_ok=True)
        raise
    report(progress, 1.0, f"{len(written)} cases written to {folder}")
    return datalist
