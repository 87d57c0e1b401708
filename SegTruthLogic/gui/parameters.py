# ruff: noqa: N815  (parameter names are the module's mixedCase parameter-node names)
"""The panel's parameters, declared once: the module's parameter node, its widget bindings and the controller's
headless stand-in all come from ``PanelParameters``.

No ``from __future__ import annotations`` here: Slicer's ``parameterNodeWrapper`` reads these annotations as
real types on Slicer 5.8's Python 3.9, so they must stay 3.9-evaluable (``Optional``, never ``X | None``).
"""

import typing
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode

from ..core.formats import ExportFormat
from .options import Device, TrainDimensions, default_nnunet_folder


def _shown_by(widget: str, within: Optional[tuple] = None) -> dict:
    """Field metadata: the .ui widget bound to the field (Slicer keeps the two in step both ways), its range."""
    return {"widget": widget} if within is None else {"widget": widget, "range": within}


@dataclass
class PanelParameters:
    """What the SegTruth panel keeps in its parameter node, so a saved scene restores the panel.

    Tests and scripts pass an instance wherever the module passes its parameter node. ``labelTable`` holds the
    label table editor's rows as JSON and ``model`` a catalog name or a model folder; both are kept by the
    controller (their widgets are a table and a combo box with a "choose a folder" entry), not bound.
    """

    inputVolume: Optional[vtkMRMLScalarVolumeNode] = field(default=None, metadata=_shown_by("inputVolumeSelector"))
    segmentation: Optional[vtkMRMLSegmentationNode] = field(default=None, metadata=_shown_by("segmentationSelector"))
    labelTable: str = ""
    model: str = ""
    device: Device = field(default=Device.AUTO, metadata=_shown_by("deviceComboBox"))
    tta: bool = field(default=False, metadata=_shown_by("ttaCheckBox"))
    exportFormat: ExportFormat = field(default=ExportFormat.NIFTI, metadata=_shown_by("exportFormatComboBox"))
    exportFolder: Path = field(default_factory=Path.home, metadata=_shown_by("exportFolderButton"))
    exportName: str = field(default="", metadata=_shown_by("exportNameEdit"))
    qcPicture: bool = field(default=True, metadata=_shown_by("qcCheckBox"))
    addToNnunet: bool = field(default=False, metadata=_shown_by("nnunetCheckBox"))
    nnunetFolder: Path = field(default_factory=default_nnunet_folder, metadata=_shown_by("nnunetFolderButton"))
    datasetId: int = field(default=1, metadata=_shown_by("datasetIdSpinBox", within=(1, 999)))
    datasetName: str = field(default="SegTruth", metadata=_shown_by("datasetNameEdit"))
    trainMinutes: int = field(default=10, metadata=_shown_by("trainMinutesSpinBox", within=(1, 1440)))
    trainDimensions: TrainDimensions = field(
        default=TrainDimensions.TWO_D, metadata=_shown_by("trainDimensionsComboBox")
    )
    trainSparse: bool = field(default=False, metadata=_shown_by("trainSparseCheckBox"))
    trainFineTune: bool = field(default=True, metadata=_shown_by("trainFineTuneCheckBox"))


def _bare(kind: Any) -> Any:
    """``Optional[X]`` -> ``X`` (Slicer's node parameters are None until chosen)."""
    if typing.get_origin(kind) is typing.Union:
        (kind,) = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    return kind


def parameter_types() -> dict[str, Any]:
    """Each parameter's type, in declaration order."""
    return {f.name: _bare(f.type) for f in fields(PanelParameters)}


def parameter_ranges() -> dict[str, tuple]:
    """The (lowest, highest) a numeric parameter may take."""
    return {f.name: f.metadata["range"] for f in fields(PanelParameters) if "range" in f.metadata}


def widget_bindings() -> dict[str, str]:
    """Parameter name -> the name of the .ui widget bound to it."""
    return {f.name: f.metadata["widget"] for f in fields(PanelParameters) if "widget" in f.metadata}


def bound_widgets(ui: Any) -> dict[str, Any]:
    """Parameter name -> widget, from the module's ``ui`` namespace (for ``connectParametersToGui``)."""
    return {name: getattr(ui, widget) for name, widget in widget_bindings().items()}


def _default(f: Field) -> Any:
    if f.default_factory is not MISSING:
        return f.default_factory()
    return f.default


def parameter_node_class(name: str, module: str, wrap: Callable, within_range: Callable) -> type:
    """The module's parameter-node class: ``PanelParameters``'s fields handed to Slicer's ``parameterNodeWrapper``.

    ``wrap`` and ``within_range`` are ``slicer.parameterNodeWrapper``'s, passed in because that package needs Qt.
    Node parameters get no default (Slicer's is None); the others get the dataclass's, computed now.
    """
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__module__": module, "__doc__": "The SegTruth panel's settings (PanelParameters)."}
    ranges = parameter_ranges()
    for f in fields(PanelParameters):
        kind = _bare(f.type)
        annotations[f.name] = typing.Annotated[kind, within_range(*ranges[f.name])] if f.name in ranges else kind
        if _default(f) is not None:
            namespace[f.name] = _default(f)
    namespace["__annotations__"] = annotations
    return wrap(type(name, (), namespace))
