"""ITK's reading of an image file's header alone: its grid and voxel type, without the voxels."""

from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk

from .errors import SegTruthError


def image_information(
    path: str | Path, problem: str = "cannot be read as an image (corrupt or truncated header)"
) -> sitk.ImageFileReader:
    """The header ITK reads; one sentence, ``PATH: problem.``, when it cannot parse it."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise SegTruthError(f"{path}: {problem}.") from None
    return reader
