"""The SegTruth panel's behaviour, Qt-free: the module widget in ``SegTruth/SegTruth.py`` only binds to it.

Importing this package needs no Qt and no torch, so the panel can list models and ask before installing.
"""

from .controller import Control, ModelChoice, PanelController, PanelView
from .exporting import ExportPlan, ExportResult, adopt_source_file, dicom_source_from_attributes
from .jobs import AutoSegmentRequest, InferenceThreadRunner, JobHandle, JobRunner, Outcome, ThreadJob
from .label_rows import COLUMNS, TERMINOLOGY_HELP, LabelRow, LabelTableEditor
from .options import EDITOR_EFFECTS, PARAMETER_KINDS, Device, ExportFormat, PanelParameters
from .state import RunState, RunStateMachine

__all__ = [
    "COLUMNS",
    "EDITOR_EFFECTS",
    "PARAMETER_KINDS",
    "TERMINOLOGY_HELP",
    "AutoSegmentRequest",
    "Control",
    "Device",
    "ExportFormat",
    "ExportPlan",
    "ExportResult",
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
    "adopt_source_file",
    "dicom_source_from_attributes",
]
