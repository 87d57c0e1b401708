"""The file formats SegTruth reads and writes, named by their extensions (no reader or writer is imported here).

Front ends check an output's name against these before any work, and before Slicer is even imported.
"""

from __future__ import annotations

import enum
from pathlib import Path

from .atomic import full_suffix
from .errors import SegTruthError

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
LABELMAP_SUFFIXES = (".nii.gz", ".nii", ".nrrd")
SEGMENTATION_SUFFIX = ".seg.nrrd"
OUTPUT_SUFFIXES = (*LABELMAP_SUFFIXES, SEGMENTATION_SUFFIX)


def check_output_path(path: str | Path) -> str:
    """The output's format by its extension; a clear error for any other."""
    suffix = full_suffix(path)
    if suffix not in OUTPUT_SUFFIXES:
        raise SegTruthError(
            f"{path}: unknown output extension {suffix or '(none)'!r}; use one of {', '.join(OUTPUT_SUFFIXES)}."
        )
    return suffix


class ExportFormat(enum.Enum):
    """What Export writes; the first three are on the source image's exact grid."""

    NIFTI = ".nii.gz"
    NRRD = ".nrrd"
    SEG_NRRD = ".seg.nrrd"
    DICOM_SEG = ".dcm"

    def label(self) -> str:
        return {
            ".nii.gz": "NIfTI labelmap (.nii.gz)",
            ".nrrd": "NRRD labelmap (.nrrd)",
            ".seg.nrrd": "Slicer segmentation (.seg.nrrd)",
            ".dcm": "DICOM SEG (.dcm)",
        }[self.value]

    @property
    def suffix(self) -> str:
        return self.value
