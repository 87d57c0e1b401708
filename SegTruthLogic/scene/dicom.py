"""DICOM series folders loaded the way Slicer's DICOM module loads a scalar volume.

Files are grouped by SeriesInstanceUID and sorted along the slice normal from their headers, read once
(``dicom_index``), then read by Slicer's ``vtkITKArchetypeImageSeriesScalarReader`` with the GDCM back end (the DCMTK one swaps the
pixel spacing), native scalar type and native orientation. The node's geometry is the reader's own
RAS-to-IJK matrix, which follows the first and last slice positions exactly as Slicer does.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import slicer
import vtk
from slicer.util import arrayFromVolume

from ..core.errors import SegTruthError
from ..core.geometry import Grid, matrix_to_numpy
from ..core.intensities import check_finite
from ..core.sources import SOURCE_FILE_ATTRIBUTE, SOURCE_GRID_ATTRIBUTE
from .dicom_index import SeriesEntry, index_tree
from .session import Session, quiet_vtk

SERIES_UID_ATTRIBUTE = "DICOM.SeriesInstanceUID"


@dataclass(frozen=True)
class DicomSeries:
    """One series found in a folder: its UID, what the scanner called it, and its files in slice order."""

    uid: str
    description: str
    number: str
    modality: str
    files: tuple[Path, ...]
    entry: SeriesEntry | None = field(default=None, compare=False, repr=False)

    @property
    def file_count(self) -> int:
        return len(self.files)

    def describe(self) -> str:
        name = self.description or "no description"
        number = f"series {self.number}, " if self.number else ""
        return f"{self.uid} ({number}{name!r}, {self.file_count} files)"


def list_dicom_series(folder: str | Path) -> list[DicomSeries]:
    """The image series directly in ``folder`` (subfolders are not searched), files sorted by slice position.

    Headers come from the tree index (read once per file); RTSTRUCT, SEG and other objects that refer to a
    series are not series to load, so a folder holding a series and its annotations is that series.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SegTruthError(f"{folder}: DICOM folder not found.")
    return [
        DicomSeries(entry.uid, entry.description, entry.number, entry.modality, entry.files, entry)
        for entry in index_tree(folder, recursive=False)
        if entry.is_image
    ]


def choose_series(folder: str | Path, series_uid: str | None = None) -> DicomSeries:
    """The series to load: the one given by UID, or the folder's only series; otherwise a clear error."""
    folder = Path(folder)
    series = list_dicom_series(folder)
    if not series:
        has_subfolders = any(p.is_dir() for p in folder.iterdir())
        hint = " (subfolders are not searched; give the folder that holds the series' files)" if has_subfolders else ""
        raise SegTruthError(f"{folder}: holds no DICOM image files{hint}.")
    if series_uid is not None:
        chosen = next((s for s in series if s.uid == series_uid.strip()), None)
        if chosen is None:
            listing = "; ".join(s.describe() for s in series)
            raise SegTruthError(f"{folder}: has no series {series_uid!r} (series found: {listing}).")
        return chosen
    if len(series) > 1:
        listing = "; ".join(s.describe() for s in series)
        raise SegTruthError(f"{folder}: holds {len(series)} DICOM series; choose one by its UID: {listing}.")
    return series[0]


def _check_one_volume(folder: Path, series: DicomSeries) -> None:
    """Refuse series that are not one stack of parallel slices (localizers in three planes, time series)."""
    if series.file_count < 2 or series.entry is None:
        return  # one file: a multi-frame object or a single slice; the reader's dimensions decide
    headers = series.entry.headers
    for header in headers:
        if header.orientation is None or header.position is None:
            raise SegTruthError(
                f"{header.path}: has no valid image position/orientation, so series {series.uid} cannot be stacked."
            )
    orientation = np.array([h.orientation for h in headers])
    if np.abs(orientation - orientation[0]).max() > 1e-4:
        raise SegTruthError(
            f"{folder}: series {series.uid} mixes slices of different orientations (e.g. localizers); "
            "SegTruth loads one stack of parallel slices."
        )
    normal = np.cross(orientation[0, :3], orientation[0, 3:])
    along = np.sort(np.array([h.position for h in headers]) @ normal)
    gaps = np.diff(along)
    if gaps.min() < 1e-3:
        raise SegTruthError(
            f"{folder}: series {series.uid} has several images at the same slice position "
            "(a time series or repeated acquisitions); SegTruth loads one 3D volume."
        )
    # scanners' positions jitter by a few hundredths of a millimetre (1.6% in a real MR series); a missing
    # slice doubles a gap
    if gaps.max() - gaps.min() > 0.1 * float(np.median(gaps)):
        worst = int(np.argmax(np.abs(gaps - np.median(gaps))))
        raise SegTruthError(
            f"{folder}: series {series.uid} has unequal slice spacing ({gaps.min():g} to {gaps.max():g} mm), "
            f"so a slice is missing or out of place (a gap of {gaps[worst]:.4g} mm after the slice at "
            f"{along[worst]:.4g} mm along the normal); a 3D volume needs equally spaced slices."
        )


_ITK_SPACING_WARNING = re.compile(
    r"WARNING: In [^\n]*itkImageSeriesReader\.hxx, line \d+\n[^\n]*Non uniform sampling[^\n]*\n\s*"
)


@contextmanager
def _without_itk_spacing_warning() -> Iterator[None]:
    """Keep ITK's raw "Non uniform sampling" warning (printed to the process's stderr) out of the output.

    The spacing was checked from the headers before reading (unequal spacing is refused in one sentence; the
    jitter of rounded positions is accepted), so the warning says nothing new. Anything else ITK or VTK print
    while reading is passed on.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (an embedding application): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
    kept = _ITK_SPACING_WARNING.sub("", text)
    if kept.strip():
        sys.stderr.write(kept)


def load_dicom_series(session: Session, folder: str | Path, series_uid: str | None = None, name: str | None = None):
    """Load one DICOM series from ``folder`` as a scalar volume node; NaN or infinite voxels are refused."""
    node = read_dicom_series(session, folder, series_uid, name)
    try:
        check_finite(arrayFromVolume(node), folder)
    except SegTruthError:
        session.remove(node)
        raise
    return node


def read_dicom_series(session: Session, folder: str | Path, series_uid: str | None = None, name: str | None = None):
    """One DICOM series from ``folder`` as a scalar volume node, with Slicer's GDCM-based reader, as it is."""
    folder = Path(folder)
    series = choose_series(folder, series_uid)
    _check_one_volume(folder, series)
    reader = slicer.vtkITKArchetypeImageSeriesScalarReader()
    reader.SetArchetype(str(series.files[0]))
    for path in series.files:
        reader.AddFileName(str(path))
    reader.SetSingleFile(0)
    reader.SetDICOMImageIOApproachToGDCM()
    reader.SetOutputScalarTypeToNative()
    reader.SetDesiredCoordinateOrientationToNative()
    reader.SetUseNativeOriginOn()
    with quiet_vtk(), _without_itk_spacing_warning():
        reader.Update()
    image = reader.GetOutput()
    if reader.GetErrorCode() != 0 or image is None or image.GetNumberOfPoints() == 0:
        raise SegTruthError(f"{folder}: Slicer's DICOM reader could not read series {series.uid}.")
    dims = image.GetDimensions()
    if min(dims) < 2:
        shape = "x".join(str(d) for d in dims)
        raise SegTruthError(f"{folder}: series {series.uid} is a single slice ({shape}); SegTruth needs a 3D volume.")
    if image.GetNumberOfScalarComponents() != 1:
        raise SegTruthError(
            f"{folder}: series {series.uid} has {image.GetNumberOfScalarComponents()} components per voxel "
            "(color images); SegTruth needs a scalar volume."
        )
    ijk_to_ras = np.linalg.inv(matrix_to_numpy(reader.GetRasToIjkMatrix()))
    grid = Grid((int(dims[0]), int(dims[1]), int(dims[2])), ijk_to_ras)
    if abs(np.linalg.det(ijk_to_ras[:3, :3])) < 1e-9:
        raise SegTruthError(f"{folder}: series {series.uid} has a degenerate geometry (slices at one position).")

    # MRML keeps geometry in the node: the image data itself has unit spacing and zero origin.
    volume_image = vtk.vtkImageData()
    volume_image.ShallowCopy(image)  # the voxels are the reader's, which is dropped: no 0.5 s copy
    volume_image.SetOrigin(0.0, 0.0, 0.0)
    volume_image.SetSpacing(1.0, 1.0, 1.0)
    node = session.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name or series.description or series.uid)
    node.SetIJKToRASMatrix(grid.vtk_matrix())
    node.SetAndObserveImageData(volume_image)
    _display(session, node)
    node.SetAttribute(SERIES_UID_ATTRIBUTE, series.uid)
    node.SetAttribute(SOURCE_FILE_ATTRIBUTE, str(folder.resolve()))
    # Exports are written on the node's own grid: a DICOM series has no single file grid to go back to.
    node.SetAttribute(SOURCE_GRID_ATTRIBUTE, Grid.from_node(node).to_json())
    return node


def _display(session: Session, node) -> None:
    """A grey display with the window set from a subsample of the voxels.

    ``CreateDefaultDisplayNodes`` computes the automatic window over every voxel's histogram: 3.4 of the 5 s a
    512x512x500 series took to load. A 0.1-99.9 percentile window of every 4th voxel along each axis is the
    same view.
    """
    display = session.scene.AddNewNodeByClass("vtkMRMLScalarVolumeDisplayNode")
    display.SetAutoWindowLevel(False)
    sample = arrayFromVolume(node)[::4, ::4, ::4]
    low, high = (float(v) for v in np.percentile(sample, [0.1, 99.9])) if sample.size else (0.0, 1.0)
    display.SetWindowLevelMinMax(low, high if high > low else low + 1)
    display.SetAndObserveColorNodeID("vtkMRMLColorTableNodeGrey")
    node.SetAndObserveDisplayNodeID(display.GetID())
