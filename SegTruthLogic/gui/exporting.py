"""The panel's Export: its settings turned into a case export (``dataset.case_export`` does the writing).

Kept apart from the writing so a script exports exactly as the panel does without building the panel's
parameters: ``SegTruthLogic.api.export_case``.
"""

from __future__ import annotations

from pathlib import Path

from ..core.labels import LabelTable
from ..dataset.case_export import DicomSource, ExportPlan, NnunetTarget, dicom_source_from_attributes, plan_case_export
from ..scene.segments import table_from_segmentation
from .label_rows import LabelTableEditor


def plan_export(params, table: LabelTable, dicom_source: DicomSource = dicom_source_from_attributes) -> ExportPlan:
    """The export the panel's settings describe; a SegTruthError naming the first missing piece."""
    nnunet = None
    if params.addToNnunet:
        nnunet = NnunetTarget(Path(params.nnunetFolder), int(params.datasetId), params.datasetName.strip())
    return plan_case_export(
        params.inputVolume,
        params.segmentation,
        table,
        params.exportFolder,
        params.exportName,
        params.exportFormat,
        params.qcPicture,
        nnunet,
        dicom_source,
    )


def table_for(editor_json: str, segmentation) -> LabelTable:
    """The panel's label table when it has rows, else the table the segments themselves give."""
    editor = LabelTableEditor()
    editor.load_json(editor_json)
    if editor.rows:
        return editor.table()
    return table_from_segmentation(segmentation)


__all__ = ["plan_export", "table_for"]
