"""nnU-Net v2 raw datasets: ``DatasetNNN_Name/imagesTr/{case}_{channel:04d}.nii.gz``, ``labelsTr/``, ``dataset.json``.

nnU-Net reads label values as class indices, so they must be 0 (background) and 1..N without gaps; a table
with gaps is refused before anything is written rather than renumbered behind the user's back. Unlabelled
cases go to ``imagesTs/``. The label table (names, colors, DICOM terminology) is kept beside ``dataset.json``
as ``labels.json`` so predictions can be brought back into Slicer with the same meaning.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..core.atomic import atomic_folder, atomic_write_text
from ..core.errors import SegTruthError
from ..core.labels import LabelTable
from ..core.progress import CancelToken, ProgressCallback, report
from ..scene.session import Session
from .cases import DatasetLabels, write_cases
from .manifest import CaseEntry
from .modality import channel_names_for

FILE_ENDING = ".nii.gz"
TABLE_NAME = "labels.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """``Dataset042_Femur``; nnU-Net finds datasets by this pattern."""
    if not 1 <= dataset_id <= 999:
        raise SegTruthError(f"nnU-Net dataset id {dataset_id} must be between 1 and 999.")
    if not _NAME.fullmatch(name):
        raise SegTruthError(f"nnU-Net dataset name {name!r} may only hold letters, digits, '_' and '-'.")
    return f"Dataset{dataset_id:03d}_{name}"


def check_consecutive(table: LabelTable) -> None:
    """nnU-Net needs label values 1..N without gaps, and no label called background."""
    values = sorted(label.value for label in table)
    if values != list(range(1, len(values) + 1)):
        raise SegTruthError(
            f"The {table.source} has values {values}; nnU-Net needs 1..{len(values)} without gaps, so give a label "
            "table that numbers the labels that way."
        )
    if table.by_name("background") is not None:
        raise SegTruthError(f"The {table.source} has a label named 'background', which nnU-Net reserves for 0.")


def dataset_json(
    name: str, table: LabelTable, channel_names: Sequence[str], training: int, description: str = ""
) -> dict:
    """The ``dataset.json`` nnU-Net v2 reads: channel_names, labels, numTraining, file_ending."""
    labels = {"background": 0, **{label.name: label.value for label in sorted(table, key=lambda lb: lb.value)}}
    return {
        "name": name,
        "description": description or "Exported by SegTruth: images and labels on each image's own grid.",
        "channel_names": {str(c): channel for c, channel in enumerate(channel_names)},
        "labels": labels,
        "numTraining": training,
        "file_ending": FILE_ENDING,
    }


def _other_datasets_with_id(raw_folder: Path, dataset_id: int, folder_name: str) -> list[str]:
    if not raw_folder.is_dir():
        return []
    prefix = f"Dataset{dataset_id:03d}_"
    return sorted(p.name for p in raw_folder.iterdir() if p.name.startswith(prefix) and p.name != folder_name)


def export_nnunet(
    session: Session,
    entries: Sequence[CaseEntry],
    raw_folder: str | Path,
    dataset_id: int,
    name: str,
    table: LabelTable | None = None,
    channel_names: Sequence[str] | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    staged: Path | None = None,
    require_channel_names: bool = False,
) -> Path:
    """Write ``raw_folder/DatasetNNN_Name``; all cases or nothing. Returns the dataset folder.

    Without ``channel_names`` each channel is named after the modality its images record (a DICOM series'
    Modality, a dcm2niix sidecar), else ``zscore``; with ``require_channel_names`` an unrecorded modality is
    an error instead (see :mod:`.modality`).

    ``staged``: build the folder there instead, a path an :class:`~SegTruthLogic.core.atomic.Outputs` transaction
    publishes as ``raw_folder/DatasetNNN_Name`` together with the command's other outputs.
    """
    raw_folder = Path(raw_folder)
    folder_name = dataset_folder_name(dataset_id, name)
    target = staged or raw_folder / folder_name
    others = _other_datasets_with_id(raw_folder, dataset_id, folder_name)
    if others:
        raise SegTruthError(
            f"{raw_folder}: already holds {others[0]} with id {dataset_id}; nnU-Net would not know which to use, "
            "so choose another id."
        )
    if not entries:
        raise SegTruthError("The case list is empty; nothing to export.")
    if not any(entry.labelled for entry in entries):
        raise SegTruthError("No case has a segmentation; nnU-Net needs labelled training cases.")
    if table is not None:
        check_consecutive(table)
    channels = len(entries[0].images)
    names = channel_names_for(entries, channel_names, require_channel_names)

    def layout(entry: CaseEntry) -> tuple[list[str], str | None]:
        images = "imagesTr" if entry.labelled else "imagesTs"
        return (
            [f"{images}/{entry.case}_{c:04d}{FILE_ENDING}" for c in range(channels)],
            f"labelsTr/{entry.case}{FILE_ENDING}" if entry.labelled else None,
        )

    labels = DatasetLabels(table)
    with atomic_folder(target, overwrite) as temp:
        for sub in ("imagesTr", "labelsTr"):
            (temp / sub).mkdir()
        if not all(entry.labelled for entry in entries):
            (temp / "imagesTs").mkdir()
        written = write_cases(session, entries, temp, layout, labels, progress, cancel, "nnU-Net export")
        final = labels.table
        if table is None:
            check_consecutive(final)
        training = sum(1 for case in written if case.label is not None)
        content = dataset_json(name, final, names, training)
        atomic_write_text(temp / "dataset.json", json.dumps(content, indent=2) + "\n")
        atomic_write_text(temp / TABLE_NAME, final.to_json())
    report(progress, 1.0, f"{len(written)} cases written to {raw_folder / folder_name}")  # where they are published
    return target


def read_dataset_json(folder: str | Path) -> dict:
    """An nnU-Net raw dataset's ``dataset.json``; a clear error when the folder is not one."""
    path = Path(folder) / "dataset.json"
    if not path.is_file():
        raise SegTruthError(f"{folder}: has no dataset.json, so it is not an nnU-Net raw dataset.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise SegTruthError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}).") from None
    for key in ("labels", "channel_names", "file_ending"):
        if key not in data:
            raise SegTruthError(f"{path}: lacks the key {key!r} nnU-Net needs.")
    return data


_VERIFY = (
    "import sys\n"
    "from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity\n"
    "verify_dataset_integrity(sys.argv[1], int(sys.argv[2]))\n"
)


def verify_with_nnunet(folder: str | Path, processes: int = 1, timeout: float = 600) -> tuple[bool, str]:
    """Run nnU-Net's own ``verify_dataset_integrity`` on a dataset folder; returns (passed, its output).

    It runs in a child interpreter: nnU-Net checks cases in a spawned process pool, which re-imports the
    caller's main module, and its output and asserts stay out of this process. Needs ``nnunetv2`` installed
    (it does not import torchvision for this check).
    """
    folder = Path(folder).resolve()
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "nnUNet_raw": str(folder.parent)}
        env.setdefault("nnUNet_preprocessed", scratch)
        env.setdefault("nnUNet_results", scratch)
        try:
            result = subprocess.run(
                [sys.executable, "-c", _VERIFY, str(folder), str(processes)],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False, f"nnU-Net's verify_dataset_integrity did not finish within {timeout:g} s."
    output = (result.stdout + result.stderr).strip()
    if "No module named 'nnunetv2'" in output:
        raise SegTruthError("nnU-Net's checker needs the nnunetv2 package: pip install nnunetv2.")
    return result.returncode == 0, output
