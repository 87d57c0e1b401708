"""The cases a model learns from: read once, checked, and laid out the way the network will see them.

A dataset is an nnU-Net v2 raw folder (``dataset.json`` + ``imagesTr/{case}_{channel:04d}`` + ``labelsTr/``, as
``segtruth dataset nnunet`` writes it, 2D cases being NIfTI volumes one slice thick), any cases folder or
manifest the other commands accept, or a DICOM tree (image series with their RTSTRUCT or SEG). Every case is
read on its file's own grid and then laid out closest to RAS with axes (k, j, i) by permuting and flipping axes
only (the inference engine does the same with the card's ``orientation: RAS``, ``axes: kji``), so axis 0 is the
one closest to superior-inferior: axial slices.

Sparse annotation: with ``sparse=True`` an axial slice counts as annotated when it holds any label, and every
other slice of that case is unknown rather than background (the loss ignores it). Nothing needs marking: paint
some slices, in any front end, and train.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..core.errors import SegTruthError
from ..core.geometry import Grid, move_array
from ..core.labels import Label, LabelTable, default_color
from ..core.progress import CancelToken, ProgressCallback, report
from ..dataset.cases import DatasetLabels, read_case
from ..dataset.dicom_tree import cases_from_dicom_tree, is_dicom_tree
from ..dataset.manifest import CaseEntry, read_cases
from ..dataset.modality import channel_names_for
from ..dataset.nnunet import TABLE_NAME, read_dataset_json
from ..inference.preprocessing import oriented_grid
from ..scene.session import Session

ORIENTATION = "RAS"  # what cards of trained models say; axis 0 of a (k, j, i) layout is then the axial one


@dataclass
class RawCase:
    """One labelled case on its first image's file grid: channels (k, j, i), label values, the grid."""

    case: str
    channels: list[np.ndarray]
    labels: np.ndarray
    grid: Grid
    where: str

    @property
    def layout(self) -> Grid:
        return oriented_grid(self.grid, ORIENTATION)

    def laid_out_labels(self) -> np.ndarray:
        """The labels on the RAS-closest (k, j, i) layout (an exact move, as the engine does it)."""
        return move_array(self.labels, self.grid, self.layout)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel spacing in the layout's (k, j, i) order (mm)."""
        s = self.layout.spacing
        return (float(s[2]), float(s[1]), float(s[0]))

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.layout.shape_kji

    @property
    def thin(self) -> bool:
        """One slice thick: a 2D case as nnU-Net stores them."""
        return min(self.grid.size) == 1


@dataclass
class Dataset:
    """A dataset's labelled cases, its label table and each channel's modality name (``CT`` or another)."""

    source: Path
    cases: list[RawCase]
    table: LabelTable
    channel_names: list[str]

    @property
    def dimensions(self) -> int:
        """2 when every case is one slice thick, else 3."""
        return 2 if all(case.thin for case in self.cases) else 3


# -- reading ----------------------------------------------------------------------------------------------------
def _read_image(path: Path, what: str) -> tuple[np.ndarray, Grid]:
    """One scalar 3D image (one slice thick allowed: 2D cases) with ITK; its (k, j, i) array and grid."""
    if not path.is_file():
        raise SegTruthError(f"{path}: {what} not found.")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError:
        raise SegTruthError(f"{path}: cannot be read as an image (corrupt or truncated file).") from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise SegTruthError(
            f"{path}: has {image.GetNumberOfComponentsPerPixel()} components per voxel; a {what} holds one."
        )
    if image.GetDimension() == 2:
        image = sitk.JoinSeries(image)
    if image.GetDimension() != 3:
        raise SegTruthError(f"{path}: is a {image.GetDimension()}D image; a {what} is 2D or 3D.")
    array = sitk.GetArrayFromImage(image)
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise SegTruthError(f"{path}: holds NaN or infinite voxels.")
    return array, Grid.from_sitk(image)


def _integer(values: np.ndarray, path: Path) -> np.ndarray:
    if np.issubdtype(values.dtype, np.floating) and not (
        np.isfinite(values).all() and np.array_equal(values, np.round(values))
    ):
        raise SegTruthError(f"{path}: holds non-integer label values; a labelmap holds whole numbers.")
    if values.min(initial=0) < 0:
        raise SegTruthError(f"{path}: holds negative label values.")
    return values.astype(np.int32)


def _nnunet_table(folder: Path, data: dict) -> LabelTable:
    """``labels.json`` beside ``dataset.json`` when SegTruth wrote one (names, colours, terminology), else its labels."""
    if (folder / TABLE_NAME).is_file():
        return LabelTable.read(folder / TABLE_NAME)
    labels = data["labels"]
    where = folder / "dataset.json"
    if not isinstance(labels, dict):
        raise SegTruthError(f"{where}: 'labels' must map names to values.")
    entries = []
    for name, value in labels.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise SegTruthError(
                f"{where}: label {name!r} is {value!r}; the trainer takes one whole-number value per label (no regions)."
            )
        if value != 0:
            entries.append(Label(str(name), value, default_color(value)))
    if not entries:
        raise SegTruthError(f"{where}: lists no label besides background; a model needs at least one class to learn.")
    return LabelTable(entries, f"labels of {where}")


def read_nnunet(folder: Path, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Dataset:
    data = read_dataset_json(folder)
    where = folder / "dataset.json"
    names = data["channel_names"]
    if not isinstance(names, dict) or not names:
        raise SegTruthError(f"{where}: 'channel_names' must map channel numbers to names.")
    try:
        channel_names = [str(names[key]) for key in sorted(names, key=int)]
    except (ValueError, TypeError):
        raise SegTruthError(f"{where}: 'channel_names' keys must be channel numbers 0, 1, ...") from None
    ending = str(data["file_ending"])
    table = _nnunet_table(folder, data)
    labels_folder = folder / "labelsTr"
    if not labels_folder.is_dir():
        raise SegTruthError(f"{folder}: has no labelsTr folder.")
    label_files = sorted(p for p in labels_folder.iterdir() if p.name.endswith(ending) and not p.name.startswith("."))
    if not label_files:
        raise SegTruthError(f"{labels_folder}: holds no {ending} labels.")
    cases = []
    for number, label_path in enumerate(label_files):
        if cancel is not None:
            cancel.raise_if_cancelled("reading the dataset")
        case = label_path.name[: -len(ending)]
        report(progress, number / len(label_files), f"reading case {case}")
        images = [folder / "imagesTr" / f"{case}_{c:04d}{ending}" for c in range(len(channel_names))]
        extra = folder / "imagesTr" / f"{case}_{len(channel_names):04d}{ending}"
        missing = [p for p in images if not p.is_file()]
        if missing or extra.is_file():
            found = len(list((folder / "imagesTr").glob(f"{case}_[0-9][0-9][0-9][0-9]{ending}")))
            raise SegTruthError(
                f"{folder}: case {case!r} has {found} image channel(s) in imagesTr, but dataset.json's channel_names "
                f"lists {len(channel_names)}."
            )
        cases.append(_raw_case(case, images, label_path, table, f"{labels_folder.name}/{label_path.name}"))
    return Dataset(folder, cases, table, channel_names)


def _raw_case(case: str, images: Sequence[Path], label_path: Path, table: LabelTable, where: str) -> RawCase:
    channels = []
    grid = None
    for path in images:
        array, image_grid = _read_image(path, "image")
        if grid is None:
            grid = image_grid
        elif not image_grid.same_as(grid):
            raise SegTruthError(f"{path}: is not on the grid of {images[0]}; a case's channels share one grid.")
        channels.append(array.astype(np.float32))
    assert grid is not None
    labels, label_grid = _read_image(label_path, "labelmap")
    if not label_grid.same_as(grid):
        raise SegTruthError(
            f"{label_path}: is not on the grid of {images[0]} ({label_grid.describe()} against {grid.describe()}); "
            "labels are never resampled."
        )
    labels = _integer(labels, label_path)
    unknown = sorted(int(v) for v in np.unique(labels) if v and table.by_value(int(v)) is None)
    if unknown:
        raise SegTruthError(f"{label_path}: holds label values {unknown} that the {table.source} does not list.")
    return RawCase(case, channels, labels, grid, where)


def read_case_list(
    path: Path,
    table: LabelTable | None,
    channel_names: Sequence[str] | None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Dataset:
    """A cases folder, manifest or DICOM tree (each annotated series a case, as ``segtruth dataset`` reads it),
    read through SegTruth's checked loaders."""
    listed = cases_from_dicom_tree(path, table).entries if is_dicom_tree(path) else read_cases(path)
    entries: list[CaseEntry] = [entry for entry in listed if entry.labelled]
    if not entries:
        raise SegTruthError(f"{path}: lists no case with a segmentation; training needs labelled cases.")
    session = Session.new_headless()
    labels = DatasetLabels(table)
    voxels = []
    for number, entry in enumerate(entries):
        if cancel is not None:
            cancel.raise_if_cancelled("reading the dataset")
        report(progress, number / len(entries), f"reading case {entry.case}")
        case = read_case(session, entry, labels.given)
        labels.add(entry, case.table)
        voxels.append(case)
    final = labels.table
    if len(final) == 0:
        raise SegTruthError(f"{path}: its segmentations hold no segment; a model needs at least one class to learn.")
    cases = []
    for case in voxels:
        assert case.labels is not None
        cases.append(
            RawCase(case.entry.case, [c.astype(np.float32) for c in case.channels], case.labels.astype(np.int32),
                    case.grid, case.entry.describe())
        )  # fmt: skip
    names = channel_names_for(entries, channel_names)
    return Dataset(path, cases, final, list(names))


def read_dataset(
    path: str | Path,
    table: LabelTable | None = None,
    channel_names: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Dataset:
    """Read and check a training dataset; ``labels`` keeps only the named labels (the others become background)."""
    path = Path(path)
    if not path.exists():
        raise SegTruthError(f"{path}: dataset not found.")
    if path.is_dir() and (path / "dataset.json").exists():
        dataset = read_nnunet(path, progress, cancel)
        if channel_names:
            if len(channel_names) != len(dataset.channel_names):
                raise SegTruthError(
                    f"{len(channel_names)} channel names given for a dataset with {len(dataset.channel_names)} channels."
                )
            dataset.channel_names = list(channel_names)
    else:
        dataset = read_case_list(path, table, channel_names, progress, cancel)
    if labels:
        dataset = _keep_labels(dataset, labels)
    check_dataset(dataset)
    return dataset


def _keep_labels(dataset: Dataset, names: Sequence[str]) -> Dataset:
    missing = [name for name in names if dataset.table.by_name(name) is None]
    if missing:
        known = ", ".join(label.name for label in dataset.table)
        raise SegTruthError(f"{dataset.source}: has no label {missing[0]!r} (its labels: {known}).")
    kept = [label for label in dataset.table if label.name in names]
    values = np.array([label.value for label in kept])
    for case in dataset.cases:
        case.labels = np.where(np.isin(case.labels, values), case.labels, 0).astype(np.int32)
    return Dataset(dataset.source, dataset.cases, LabelTable(kept, dataset.table.source), dataset.channel_names)


def check_dataset(dataset: Dataset) -> None:
    """What would make training meaningless, as one sentence: no labelled voxel, no background, mixed channels."""
    counts = [len(case.channels) for case in dataset.cases]
    if len(set(counts)) > 1:
        first = dataset.cases[counts.index(counts[0])]
        other = dataset.cases[next(i for i, c in enumerate(counts) if c != counts[0])]
        raise SegTruthError(
            f"{dataset.source}: case {other.case!r} has {len(other.channels)} channels, case {first.case!r} "
            f"{len(first.channels)}; every case needs the same channels."
        )
    if counts[0] != len(dataset.channel_names):
        raise SegTruthError(
            f"{dataset.source}: the cases have {counts[0]} channels but {len(dataset.channel_names)} channel names."
        )
    if not any(case.labels.any() for case in dataset.cases):
        raise SegTruthError(f"{dataset.source}: no case holds a labelled voxel; label some voxels before training.")
    if all(case.labels.all() for case in dataset.cases):
        raise SegTruthError(
            f"{dataset.source}: every voxel of every case is labelled, so there is only one class and no background "
            "to tell it from."
        )
    thin = {case.thin for case in dataset.cases}
    if len(thin) > 1:
        raise SegTruthError(f"{dataset.source}: mixes 2D cases (one slice thick) with 3D cases; train them apart.")
    for case in dataset.cases:
        if case.thin and case.shape[0] != 1:
            raise SegTruthError(
                f"{dataset.source}: case {case.case!r} is one slice thick but not an axial slice; 2D models learn axial slices."
            )


def annotated_slices(labels: np.ndarray, sparse: bool) -> np.ndarray:
    """Per axial slice (axis 0 of a laid-out label array), whether it is annotated."""
    if not sparse:
        return np.ones(labels.shape[0], bool)
    return labels.reshape(labels.shape[0], -1).any(axis=1)
