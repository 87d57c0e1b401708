"""The SegTruth panel's behaviour, Qt-free: the module widget in ``SegTruth/SegTruth.py`` only binds to it.

Importing this package needs no Qt and no torch, so the panel can list models and ask before installing.
"""

from ..core.formats import ExportFormat
from ..dataset.case_export import (
    ExportPlan,
    ExportResult,
    adopt_source_file,
    dicom_source_from_attributes,
    dicom_source_from_database,
)
from ..inference.jobs import AutoSegmentRequest, InferenceThreadRunner, JobHandle, JobRunner, Outcome, ThreadJob
from .controller import VIEW_WIDGETS, Control, ModelChoice, PanelController, PanelView
from .extra_tools import (
    EXTRA_TOOLS,
    TOOLS_BY_KEY,
    ExtraToolsController,
    ToolParameters,
    offered_tools,
    seed_points,
    tool_fields,
)
from .label_rows import COLUMNS, TERMINOLOGY_HELP, LabelRow, LabelTableEditor
from .options import EDITOR_EFFECTS, EXTRA_EFFECTS, Device, TrainDimensions, effect_order, missing_effects_note
from .parameters import PanelParameters, bound_widgets, parameter_node_class, parameter_types, widget_bindings
from .reloading import forget_package
from .state import RunState, RunStateMachine
from .training import TrainingController, TrainingView, python_slicer

__all__ = [
    "COLUMNS",
    "EDITOR_EFFECTS",
    "EXTRA_EFFECTS",
    "EXTRA_TOOLS",
    "TERMINOLOGY_HELP",
    "TOOLS_BY_KEY",
    "VIEW_WIDGETS",
    "AutoSegmentRequest",
    "Control",
    "Device",
    "ExportFormat",
    "ExportPlan",
    "ExportResult",
    "ExtraToolsController",
    "InferenceThreadRunner",
    "JobHandle",
    "JobRunner",
    "LabelRow",
    "LabelTableEditor",
    "ModelChoice",
    "Outcome",
    "PanelController",
    "PanelParameters",
    "PanelView",
    "RunState",
    "RunStateMachine",
    "ThreadJob",
    "ToolParameters",
    "TrainDimensions",
    "TrainingController",
    "TrainingView",
    "adopt_source_file",
    "bound_widgets",
    "dicom_source_from_attributes",
    "dicom_source_from_database",
    "effect_order",
    "forget_package",
    "missing_effects_note",
    "offered_tools",
    "parameter_node_class",
    "parameter_types",
    "python_slicer",
    "seed_points",
    "tool_fields",
    "widget_bindings",
]
