"""Exporting one case: written on the source grid, with a QC picture and an optional nnU-Net entry.

The Slicer panel's Export and scripts use the same functions. ``plan_case_export`` turns the settings into exact paths (and says which already exist, so the GUI can ask
before replacing a person's annotation); ``run_export`` writes them, each file atomically. Dataset and DICOM
work runs in a private headless session, so no helper node flashes up in the person's scene.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import SimpleITK as sitk

from ..core.atomic import full_suffix
from ..core.errors import SegTruthError
from ..core.formats import IMAGE_SUFFIXES, ExportFormat
from ..core.geometry import Grid, index_map, move_array
from ..core.labels import LabelTable
from ..core.sources import SOURCE_FILE_ATTRIBUTE, SOURCE_GRID_ATTRIBUTE, source_grid
from ..scene.export import export, labels_on_source_grid, write_array, write_seg_nrrd
from ..scene.segments import segment_ids, table_from_segmentation
from ..scene.session import Session
from .manifest import CaseEntry
from .nnunet import check_consecutive, dataset_folder_name, export_nnunet, read_dataset_json

CASE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
SERIES_UID_ATTRIBUTE = "DICOM.SeriesInstanceUID"

DicomSource = Callable[[object], "tuple[Path, str | None] | None"]
"""Where a volume's DICOM series is: (folder holding its files, SeriesInstanceUID), or None."""


def dicom_source_from_attributes(volume) -> tuple[Path, str | None] | None:
    """The series folder SegTruth's own DICOM loader recorded on the node."""
    folder = volume.GetAttribute(SOURCE_FILE_ATTRIBUTE)
    if folder and Path(folder).is_dir():
        return Path(folder), volume.GetAttribute(SERIES_UID_ATTRIBUTE)
    return None


def dicom_source_from_database(volume, database) -> tuple[Path, str | None] | None:
    """The series folder of a volume loaded by SegTruth, or by Slicer's DICOM module from ``database``.

    ``database`` is Slicer's ``slicer.dicomDatabase`` (a ctkDICOMDatabase; None where the application has none).
    """
    found = dicom_source_from_attributes(volume)
    if found is not None:
        return found
    uids = (volume.GetAttribute("DICOM.instanceUIDs") or "").split()
    if not uids or database is None:
        return None
    path = database.fileForInstance(uids[0])
    if not path:
        return None
    return Path(path).parent, database.instanceValue(uids[0], "0020,000E") or None


def adopt_source_file(volume) -> bool:
    """Record the grid of the file a volume was loaded from by Slicer (Add Data), as SegTruth's loader does.

    Slicer flips left-handed files on load; knowing the file's grid lets exports land on it exactly. Returns
    whether the node now knows its source grid (False for volumes made in memory or resampled since loading).
    """
    if volume.GetAttribute(SOURCE_GRID_ATTRIBUTE):
        return True
    storage = volume.GetStorageNode()
    path = Path(storage.GetFileName()) if storage is not None and storage.GetFileName() else None
    if path is None or not path.is_file() or full_suffix(path) not in IMAGE_SUFFIXES:
        return False
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return False
    if reader.GetDimension() != 3:
        return False
    grid = Grid.from_sitk(reader)
    try:
        index_map(Grid.from_node(volume), grid)
    except SegTruthError:
        return False  # the node no longer holds the file's voxels (cropped, resampled)
    volume.SetAttribute(SOURCE_FILE_ATTRIBUTE, str(path.resolve()))
    volume.SetAttribute(SOURCE_GRID_ATTRIBUTE, grid.to_json())
    return True


def case_name(text: str, volume) -> str:
    """The export's base name: what the person typed, else the volume's name made file-safe."""
    text = text.strip()
    if text:
        if not CASE_NAME.fullmatch(text):
            raise SegTruthError(f"Export name {text!r} may only hold letters, digits, '.', '_' and '-'.")
        return text
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", volume.GetName() or "case").strip("._-")
    return safe or "case"


@dataclass(frozen=True)
class NnunetTarget:
    raw_folder: Path
    dataset_id: int
    name: str

    @property
    def folder(self) -> Path:
        return self.raw_folder / dataset_folder_name(self.dataset_id, self.name)


@dataclass(frozen=True)
class ExportPlan:
    """Everything Export will write, decided before anything is written."""

    volume: object
    segmentation: object
    format: ExportFormat
    case: str
    path: Path
    table: LabelTable
    qc_path: Path | None = None
    nnunet: NnunetTarget | None = None
    dicom: tuple[Path, str | None] | None = None

    @property
    def existing(self) -> list[str]:
        """What would be replaced: the output file, and the case in the nnU-Net dataset."""
        found = [str(self.path)] if self.path.exists() else []
        if self.nnunet is not None:
            image = self.nnunet.folder / "imagesTr" / f"{self.case}_0000.nii.gz"
            if image.exists():
                found.append(f"case {self.case!r} of {self.nnunet.folder.name}")
        return found


def plan_case_export(
    volume,
    segmentation,
    table: LabelTable,
    folder: str | Path,
    name: str = "",
    format: ExportFormat = ExportFormat.NIFTI,
    qc_picture: bool = True,
    nnunet: NnunetTarget | None = None,
    dicom_source: DicomSource = dicom_source_from_attributes,
) -> ExportPlan:
    """What exporting one case writes: its labels in ``format`` on the source grid, a QC picture, an nnU-Net entry.

    Decided before anything is written, so a front end can ask before replacing what ``ExportPlan.existing``
    lists; a SegTruthError names the first missing piece.
    """
    if volume is None:
        raise SegTruthError("Choose the source volume to export on.")
    if segmentation is None or not segment_ids(segmentation):
        raise SegTruthError("The segmentation is empty; there is nothing to export.")
    folder = Path(folder)
    if not str(folder) or not folder.is_dir():
        raise SegTruthError(f"{folder}: the export folder does not exist.")
    case = case_name(name, volume)
    adopt_source_file(volume)
    dicom = None
    if format is ExportFormat.DICOM_SEG:
        dicom = dicom_source(volume)
        if dicom is None:
            raise SegTruthError(
                f"DICOM SEG needs a volume loaded from DICOM; {volume.GetName()!r} was not (choose another format)."
            )
    if nnunet is not None:
        dataset_folder_name(nnunet.dataset_id, nnunet.name)  # checks id and name
        check_consecutive(table)
    qc_path = folder / f"{case}_qc.png" if qc_picture else None
    return ExportPlan(
        volume, segmentation, format, case, folder / f"{case}{format.suffix}", table, qc_path, nnunet, dicom
    )


def export_case(
    session: Session,
    volume,
    segmentation,
    folder: str | Path,
    name: str = "",
    format: ExportFormat = ExportFormat.NIFTI,
    table: LabelTable | None = None,
    qc_picture: bool = True,
    nnunet: NnunetTarget | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """Export one case as the panel's Export button does (labels, QC picture, nnU-Net entry); see plan_case_export."""
    table = table or table_from_segmentation(segmentation)
    plan = plan_case_export(volume, segmentation, table, folder, name, format, qc_picture, nnunet)
    return run_export(session, plan, overwrite)


@dataclass
class ExportResult:
    written: list[Path]
    summary: str


def run_export(session: Session, plan: ExportPlan, overwrite: bool = False) -> ExportResult:
    """Write the plan's files; an existing output is replaced only with ``overwrite``."""
    if plan.format is ExportFormat.DICOM_SEG:
        path = _write_dicom_seg(session, plan, overwrite)
    else:
        path = export(session, plan.segmentation, plan.volume, plan.path, plan.table, overwrite)
    written = [path]
    if plan.qc_path is not None:
        written.append(write_qc_picture(session, plan))
    summary = f"Wrote {path.name} on the source image's grid"
    if plan.nnunet is not None:
        folder = add_case_to_nnunet(session, plan, overwrite)
        written.append(folder)
        summary += f", and case {plan.case!r} to {folder.name}"
    return ExportResult(written, summary + ".")


def write_qc_picture(session: Session, plan: ExportPlan) -> Path:
    """Axial, coronal and sagittal slices through each label, on the source grid, as a PNG beside the export."""
    from slicer.util import arrayFromVolume

    from .qc import case_picture, write_png

    labels, grid = labels_on_source_grid(session, plan.segmentation, plan.volume, plan.table)
    image = move_array(arrayFromVolume(plan.volume), Grid.from_node(plan.volume), grid)
    picture = case_picture(image, grid, labels, plan.table, title=plan.case)
    assert plan.qc_path is not None
    return write_png(picture, plan.qc_path)


def _write_dicom_seg(session: Session, plan: ExportPlan, overwrite: bool) -> Path:
    from .dicom_seg import write_dicom_seg  # highdicom: an optional dependency

    assert plan.dicom is not None
    folder, series_uid = plan.dicom
    with tempfile.TemporaryDirectory(prefix="segtruth-") as scratch:
        segmentation = write_seg_nrrd(
            session, plan.segmentation, plan.volume, Path(scratch) / "seg.seg.nrrd", plan.table
        )
        return write_dicom_seg(
            Session.new_headless(), folder, segmentation, plan.path, plan.table, series_uid, overwrite
        )


def add_case_to_nnunet(session: Session, plan: ExportPlan, overwrite: bool = False) -> Path:
    """Add (or, with ``overwrite``, replace) this case in an nnU-Net raw dataset, creating the dataset if needed.

    The dataset is rewritten as a whole through ``export_nnunet`` (all cases or nothing), reading the cases
    already there from its own files, so a failure leaves the previous dataset as it was.
    """
    assert plan.nnunet is not None
    target = plan.nnunet
    folder = target.folder
    entries: list[CaseEntry] = []
    channel_names = None
    if folder.is_dir():
        data = read_dataset_json(folder)
        channel_names = [data["channel_names"][key] for key in sorted(data["channel_names"], key=int)]
        if len(channel_names) != 1:
            raise SegTruthError(f"{folder}: has {len(channel_names)} channels; the panel adds one-image cases only.")
        theirs = {name: int(value) for name, value in data["labels"].items() if name != "background"}
        ours = {label.name: label.value for label in plan.table}
        if theirs != ours:
            raise SegTruthError(
                f"{folder}: its labels {theirs} differ from the label table's {ours}; use the same table or another dataset."
            )
        entries = _dataset_cases(folder)
        if any(entry.case == plan.case for entry in entries) and not overwrite:
            raise SegTruthError(f"Case {plan.case!r} is already in {folder.name}; replace it or choose another name.")
        entries = [entry for entry in entries if entry.case != plan.case]
    with tempfile.TemporaryDirectory(prefix="segtruth-") as scratch:
        image = _case_image(plan, Path(scratch))
        seg = write_seg_nrrd(
            session, plan.segmentation, plan.volume, Path(scratch) / f"{plan.case}.seg.nrrd", plan.table
        )
        entries.append(CaseEntry(plan.case, (image,), seg, "the Export panel"))
        return export_nnunet(
            Session.new_headless(),
            entries,
            target.raw_folder,
            target.dataset_id,
            target.name,
            plan.table,
            channel_names,
            overwrite=folder.is_dir(),
        )


def _dataset_cases(folder: Path):
    """The cases of an nnU-Net raw dataset, as entries pointing at its own files."""
    entries = []
    for sub, labelled in (("imagesTr", True), ("imagesTs", False)):
        for image in sorted((folder / sub).glob("*_0000.nii.gz")):
            case = image.name[: -len("_0000.nii.gz")]
            label = folder / "labelsTr" / f"{case}.nii.gz"
            entries.append(CaseEntry(case, (image,), label if labelled and label.is_file() else None, str(folder)))
    return entries


def _case_image(plan: ExportPlan, scratch: Path) -> Path:
    """The image file for the dataset: the file the volume came from, else the node's voxels written out."""
    from slicer.util import arrayFromVolume

    source = plan.volume.GetAttribute(SOURCE_FILE_ATTRIBUTE)
    if source and Path(source).exists():
        return Path(source)
    grid = source_grid(plan.volume)
    array = move_array(arrayFromVolume(plan.volume), Grid.from_node(plan.volume), grid)
    return write_array(array, grid, scratch / f"{plan.case}.nrrd")


__all__ = [
    "ExportPlan",
    "ExportResult",
    "NnunetTarget",
    "adopt_source_file",
    "case_name",
    "dicom_source_from_attributes",
    "dicom_source_from_database",
    "export_case",
    "plan_case_export",
    "run_export",
]
