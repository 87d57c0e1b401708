"""One case's voxels read through SegTruth's loaders, the dataset-wide label table, and the export loop.

Images come back on the grid of the file they were read from (Slicer flips left-handed volumes on load; the
move back is exact index arithmetic) and labels on exactly that grid with the label table's values, so a
trainer sees each mask on its image's voxels. Labels are never resampled: a mask on another grid is an error
that names the case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from slicer.util import arrayFromVolume

from ..core.errors import SegTruthError
from ..core.geometry import Grid, move_array
from ..core.labels import Label, LabelTable
from ..core.progress import CancelToken, ProgressCallback, report
from ..core.sources import source_grid
from ..scene.export import labels_on_source_grid, write_array
from ..scene.segmentation_io import load_segmentation
from ..scene.segments import table_from_segmentation
from ..scene.session import Session
from ..scene.volumes import load_volume
from .manifest import CaseEntry


@dataclass
class CaseVoxels:
    """A case on its first image's source grid: one array per channel and the label array (or None)."""

    entry: CaseEntry
    grid: Grid
    channels: list[np.ndarray]
    labels: np.ndarray | None
    table: LabelTable | None

    def label_voxels(self) -> dict[int, int]:
        """Voxel count of each non-zero label value present."""
        if self.labels is None:
            return {}
        counts = np.bincount(self.labels.ravel())
        return {int(v): int(c) for v, c in enumerate(counts) if v and c}


def read_case(session: Session, entry: CaseEntry, table: LabelTable | None = None) -> CaseVoxels:
    """Load a case's channels and segmentation; every failure names the case."""
    nodes: list = []
    try:
        volumes = []
        for path in entry.images:
            volumes.append(load_volume(session, path))
            nodes.append(volumes[-1])
        grid = source_grid(volumes[0])
        channels = []
        for number, (path, node) in enumerate(zip(entry.images, volumes)):
            try:
                # A copy: the nodes (and the VTK memory behind the view) are removed below.
                channels.append(np.array(move_array(arrayFromVolume(node), Grid.from_node(node), grid)))
            except SegTruthError:
                raise SegTruthError(
                    f"channel {number} ({path}) is not on channel 0's grid ({source_grid(node).describe()} against "
                    f"{grid.describe()}); all channels of a case must hold the same voxels."
                ) from None
        labels = case_table = None
        if entry.segmentation is not None:
            segmentation = load_segmentation(session, entry.segmentation, volumes[0], table, entry.rois)
            nodes.append(segmentation)
            case_table = table or table_from_segmentation(segmentation)
            labels, _ = labels_on_source_grid(session, segmentation, volumes[0], case_table)
            labels = np.ascontiguousarray(labels)
    except SegTruthError as error:
        raise SegTruthError(f"{entry.describe()}: {error}") from None
    finally:
        session.remove(*nodes)
    return CaseVoxels(entry, grid, channels, labels, case_table)


@dataclass
class DatasetLabels:
    """The one label table of a dataset: the given table, or one grown case by case while names and values agree."""

    given: LabelTable | None = None
    _labels: list[Label] = field(default_factory=list)

    def add(self, entry: CaseEntry, case_table: LabelTable | None) -> None:
        """Merge a case's labels; a name or value that means something else than before names the case."""
        if self.given is not None or case_table is None:
            return
        for label in case_table:
            same_name = next((known for known in self._labels if known.name == label.name), None)
            same_value = next((known for known in self._labels if known.value == label.value), None)
            if same_name is not None and same_name.value != label.value:
                raise SegTruthError(
                    f"{entry.describe()}: label {label.name!r} has value {label.value} here but "
                    f"{same_name.value} in the cases before it; give a label table so every case uses the same values."
                )
            if same_value is not None and same_value.name != label.name:
                raise SegTruthError(
                    f"{entry.describe()}: value {label.value} is {label.name!r} here but "
                    f"{same_value.name!r} in the cases before it; give a label table so every case uses the same values."
                )
            if same_name is None:
                self._labels.append(label)

    @property
    def table(self) -> LabelTable:
        if self.given is not None:
            return self.given
        return LabelTable(sorted(self._labels, key=lambda label: label.value), "labels of the dataset's cases")


@dataclass(frozen=True)
class WrittenCase:
    """What was written for one case, relative to the dataset folder."""

    case: str
    images: tuple[str, ...]
    label: str | None
    grid: Grid
    voxels: dict[int, int]


Layout = Callable[[CaseEntry], tuple[list[str], Optional[str]]]  # evaluated: Python 3.9 has no str | None
"""A case's image file names (one per channel) and label file name, relative to the dataset folder."""


def write_cases(
    session: Session,
    entries: Sequence[CaseEntry],
    folder: Path,
    layout: Layout,
    labels: DatasetLabels,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    what: str = "dataset export",
) -> list[WrittenCase]:
    """Convert every case into ``folder`` (images and labels on the image's own grid); stops at the first error.

    A case's files are compressed and written on a second thread while the next case is read (SimpleITK
    releases the GIL while it writes); one case at most is in flight, and its errors surface before the next.
    """
    written = []
    total = len(entries)
    pending: Future | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="segtruth-write") as writer:
        for number, entry in enumerate(entries):
            if cancel is not None:
                cancel.raise_if_cancelled(what)
            report(progress, number / total, f"case {entry.case} ({number + 1}/{total})")
            voxels = read_case(session, entry, labels.given)
            labels.add(entry, voxels.table)
            image_names, label_name = layout(entry)
            files = list(zip([folder / name for name in image_names], voxels.channels))
            if label_name is not None and voxels.labels is not None:
                files.append((folder / label_name, voxels.labels))
            if pending is not None:
                pending.result()  # the previous case's files are complete (or its error is raised here)
            pending = writer.submit(_write_files, files, voxels.grid)
            written.append(
                WrittenCase(
                    entry.case,
                    tuple(image_names),
                    label_name if voxels.labels is not None else None,
                    voxels.grid,
                    voxels.label_voxels(),
                )
            )
        if pending is not None:
            pending.result()
    return written


def _write_files(files: list[tuple[Path, np.ndarray]], grid: Grid) -> None:
    for path, array in files:
        write_array(array, grid, path)
