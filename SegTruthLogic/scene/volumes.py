"""Loading images into MRML volume nodes with Slicer's own readers, after checking the file is whole.

Slicer's archetype reader accepts a truncated ``.nii.gz`` silently and reads 4D files as 3D, so each
file is first read completely by SimpleITK (ITK's readers fail loudly) and checked to be one 3D scalar
volume. The file's own grid is recorded on the node so exports can be written back on exactly that grid,
even after Slicer has flipped a left-handed volume to right-handed.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import vtk
from slicer.util import arrayFromVolume
from vtk.util import numpy_support

from ..core.atomic import full_suffix
from ..core.errors import SegTruthError
from ..core.geometry import Grid, move_array
from ..core.intensities import non_finite_error
from ..core.nrrd import check_nrrd_complete
from ..core.sources import SOURCE_FILE_ATTRIBUTE, SOURCE_GRID_ATTRIBUTE
from .dicom import load_dicom_series
from .session import Session, quiet_vtk

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
# vtkSlicerVolumesLogic::AddArchetypeVolume loading options (bit flags).
_LABELMAP, _SINGLE_FILE = 1, 4


def check_image_file(path: str | Path) -> sitk.Image:
    """Read a whole image file with ITK and check it is one 3D scalar volume; return it."""
    path = Path(path)
    if path.is_dir():
        raise SegTruthError(f"{path}: is a folder; give an image file, or a DICOM folder where one is accepted.")
    if not path.exists():
        raise SegTruthError(f"{path}: file not found.")
    if full_suffix(path) not in IMAGE_SUFFIXES:
        raise SegTruthError(
            f"{path}: unknown image extension {full_suffix(path) or '(none)'!r}; use one of {', '.join(IMAGE_SUFFIXES)}."
        )
    if full_suffix(path) in (".nii", ".nii.gz"):
        _check_nifti_complete(path)
    if full_suffix(path) in (".nrrd", ".nhdr"):
        check_nrrd_complete(path)  # teem ignores the gzip checksum: corrupt data would load silently
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        reason = str(error).strip().splitlines()
        detail = next((line.split("Description:")[-1].strip() for line in reason if "Description" in line), "")
        raise SegTruthError(
            f"{path}: cannot be read as an image (corrupt or truncated file). {detail}".strip()
        ) from None
    dimension = image.GetDimension()
    if dimension != 3:
        shape = "x".join(str(s) for s in image.GetSize())
        kind = "a 2D image" if dimension == 2 else f"a {dimension}D image"
        raise SegTruthError(f"{path}: is {kind} ({shape}); SegTruth needs one 3D volume.")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise SegTruthError(
            f"{path}: has {image.GetNumberOfComponentsPerPixel()} components per voxel; SegTruth needs a scalar volume."
        )
    if min(image.GetSize()) < 2:
        shape = "x".join(str(s) for s in image.GetSize())
        raise SegTruthError(f"{path}: is a single slice ({shape}); SegTruth needs a 3D volume.")
    return image


def non_finite_voxels(path: str | Path, image: sitk.Image) -> int:
    """How many voxels of the file are NaN or infinite.

    ITK's NIfTI reader turns NaN into 0 without a word, so for NIfTI the file's own bytes are counted.
    """
    if full_suffix(path) in (".nii", ".nii.gz"):
        return _nifti_non_finite(Path(path))
    values = sitk.GetArrayViewFromImage(image)
    return int(values.size - np.count_nonzero(np.isfinite(values))) if values.dtype.kind == "f" else 0


_NIFTI_FLOATS = {16: "f4", 64: "f8"}  # NIfTI datatype codes of float32 and float64


def _nifti_non_finite(path: Path) -> int:
    opener = gzip.open if full_suffix(path) == ".nii.gz" else open
    with opener(path, "rb") as stream:
        header = stream.read(540)
        endian, layout = _nifti_header(header, path)
        dtype = _NIFTI_FLOATS.get(layout["datatype"])
        if dtype is None:
            return 0
        stream.seek(layout["offset"])
        item = np.dtype(endian + dtype)
        bad, rest = 0, b""
        while chunk := stream.read(1 << 22):
            chunk = rest + chunk
            usable = len(chunk) - len(chunk) % item.itemsize
            values = np.frombuffer(chunk[:usable], dtype=item)
            bad += int(values.size - np.count_nonzero(np.isfinite(values)))
            rest = chunk[usable:]
        return bad


def _nifti_header(header: bytes, path: Path) -> tuple[str, dict[str, int]]:
    """Byte order and the fields SegTruth checks (dims, datatype, bitpix, data offset) of a NIfTI-1 or -2 header."""
    if len(header) < 348:
        raise SegTruthError(f"{path}: is truncated or corrupt (shorter than a NIfTI header).")
    for endian in "<>":
        sizeof_hdr = struct.unpack(endian + "i", header[:4])[0]
        if sizeof_hdr == 348:  # NIfTI-1
            return endian, {
                "dims": struct.unpack(endian + "8h", header[40:56]),
                "datatype": struct.unpack(endian + "h", header[70:72])[0],
                "bitpix": struct.unpack(endian + "h", header[72:74])[0],
                "offset": int(struct.unpack(endian + "f", header[108:112])[0]),
            }
        if sizeof_hdr == 540 and len(header) >= 540:  # NIfTI-2
            return endian, {
                "dims": struct.unpack(endian + "8q", header[16:80]),
                "datatype": struct.unpack(endian + "h", header[12:14])[0],
                "bitpix": struct.unpack(endian + "h", header[14:16])[0],
                "offset": int(struct.unpack(endian + "q", header[168:176])[0]),
            }
    raise SegTruthError(f"{path}: is not a NIfTI file (bad header size).")


def _check_nifti_complete(path: Path) -> None:
    """ITK's NIfTI reader pads a truncated file with zeros; check the data bytes are all there."""
    opener = gzip.open if full_suffix(path) == ".nii.gz" else open
    total = 0
    header = b""
    try:
        with opener(path, "rb") as stream:
            while chunk := stream.read(1 << 22):
                if len(header) < 540:
                    header += chunk[: 540 - len(header)]
                total += len(chunk)
    except (EOFError, OSError, zlib.error):
        raise SegTruthError(f"{path}: is truncated or corrupt (the compressed data ends early).") from None
    _, layout = _nifti_header(header, path)
    dims, bitpix, offset = layout["dims"], layout["bitpix"], layout["offset"]
    count = int(np.prod([max(d, 1) for d in dims[1 : 1 + max(min(dims[0], 7), 1)]], dtype=np.int64))
    expected = int(offset) + count * max(bitpix, 8) // 8
    if total < expected:
        raise SegTruthError(f"{path}: is truncated ({total} of {expected} bytes).")


def load_volume(session: Session, path: str | Path, name: str | None = None, labelmap: bool = False):
    """Load a NIfTI/NRRD/MHA image (or a DICOM series folder) as a scalar (or labelmap) volume node."""
    path = Path(path)
    if path.is_dir():
        return load_dicom_series(session, path, name=name)
    image = check_image_file(path)
    bad = non_finite_voxels(path, image)
    if bad:
        raise non_finite_error(path, bad)
    name = name or _node_name(path)
    with quiet_vtk():
        node = session.volumes.AddArchetypeVolume(str(path), name, _SINGLE_FILE | (_LABELMAP if labelmap else 0))
    if node is None or node.GetImageData() is None:
        raise SegTruthError(f"{path}: Slicer's reader could not load this image.")
    file_grid = Grid.from_sitk(image)
    node_grid = Grid.from_node(node)
    # Slicer must hold the same voxels as the file, possibly with axes flipped; check before trusting it.
    node_values = arrayFromVolume(node)
    file_values = sitk.GetArrayViewFromImage(image)
    try:
        same = np.array_equal(
            move_array(node_values, node_grid, file_grid), file_values, equal_nan=node_values.dtype.kind == "f"
        )
    except SegTruthError:
        same = False
    if not same:
        raise SegTruthError(f"{path}: Slicer's reader returned different voxel values than the file holds.")
    node.SetAttribute(SOURCE_FILE_ATTRIBUTE, str(path.resolve()))
    node.SetAttribute(SOURCE_GRID_ATTRIBUTE, file_grid.to_json())
    return node


def volume_from_array(session: Session, array: np.ndarray, grid: Grid, name: str = "volume", labelmap: bool = False):
    """A new volume node holding ``array`` (k, j, i) on ``grid``."""
    if array.shape != grid.shape_kji:
        raise SegTruthError(f"Array of shape {array.shape} does not fit a grid of {grid.describe()}.")
    cls = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    node = session.scene.AddNewNodeByClass(cls, name)
    node.SetIJKToRASMatrix(grid.vtk_matrix())
    image = vtk.vtkImageData()
    image.SetDimensions(*grid.size)
    flat = np.ascontiguousarray(array).ravel()
    vtk_array = numpy_support.numpy_to_vtk(flat, deep=True)
    image.GetPointData().SetScalars(vtk_array)
    node.SetAndObserveImageData(image)
    node.CreateDefaultDisplayNodes()
    return node


def _node_name(path: Path) -> str:
    name = path.name
    suffix = full_suffix(path)
    return name[: -len(suffix)] if suffix and name.lower().endswith(suffix) else name
