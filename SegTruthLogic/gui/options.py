# ruff: noqa: N815  (parameter names are the module's mixedCase parameter-node names)
"""The panel's choices and parameters, Qt-free, so the module's parameter node and the tests share them.

``PanelParameters`` lists what the SegTruth module keeps in its parameter node (the module file declares the
same fields with ``@parameterNodeWrapper``; a test checks the two agree), so a saved scene restores the panel
and the controller can be driven by either in tests and in Slicer.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from pathlib import Path

# Slicer's Segment Editor effects, by the names effects register under (not translated), in panel order.
EDITOR_EFFECTS = (
    "Threshold",
    "Grow from seeds",
    "Islands",
    "Fill between slices",
    "Paint",
    "Erase",
    "Margin",
    "Logical operators",
)


class Device(enum.Enum):
    """Where inference runs; ``auto`` picks a CUDA GPU, then Apple MPS, then the CPU."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"
    MPS = "mps"

    def label(self) -> str:
        """Text shown in the device combo box (Slicer's enum connector calls this)."""
        return {"auto": "Automatic (GPU if available)", "cpu": "CPU", "cuda": "NVIDIA GPU (CUDA)", "mps": "Apple GPU"}[
            self.value
        ]


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


def default_nnunet_folder() -> Path:
    """nnU-Net's own ``nnUNet_raw`` setting when there is one."""
    return Path(os.environ.get("nnUNet_raw") or Path.home() / "nnUNet_raw")  # noqa: SIM112 (nnU-Net's own name)


# Parameter name -> kind; the module's parameter node must declare exactly these (checked by a test).
PARAMETER_KINDS = {
    "inputVolume": "vtkMRMLScalarVolumeNode",
    "segmentation": "vtkMRMLSegmentationNode",
    "labelTable": "str",
    "model": "str",
    "device": "Device",
    "tta": "bool",
    "exportFormat": "ExportFormat",
    "exportFolder": "Path",
    "exportName": "str",
    "qcPicture": "bool",
    "addToNnunet": "bool",
    "nnunetFolder": "Path",
    "datasetId": "int",
    "datasetName": "str",
}


@dataclass
class PanelParameters:
    """A plain stand-in for the module's parameter node (tests, scripts): same names, same defaults.

    ``labelTable`` holds the label table editor's rows as JSON, so the table travels with the scene;
    ``model`` is a catalog name or a model folder.
    """

    inputVolume: object = None
    segmentation: object = None
    labelTable: str = ""
    model: str = ""
    device: Device = Device.AUTO
    tta: bool = False
    exportFormat: ExportFormat = ExportFormat.NIFTI
    exportFolder: Path = field(default_factory=Path.home)
    exportName: str = ""
    qcPicture: bool = True
    addToNnunet: bool = False
    nnunetFolder: Path = field(default_factory=default_nnunet_folder)
    datasetId: int = 1
    datasetName: str = "SegTruth"
