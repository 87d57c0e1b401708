"""A case: one source volume, its segmentation and label table, in one session.

The researcher's and the CLI's unit of work::

    case = Case.open("ct.nrrd")
    threshold(case.session, case.segmentation, case.volume, "bone", 200, 3000)
    case.save("bone.nii.gz")          # on ct.nrrd's exact grid
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.formats import check_output_path
from ..core.labels import LabelTable
from .export import export
from .segments import apply_table, new_segmentation, table_from_segmentation
from .session import Session
from .volumes import load_volume


@dataclass
class Case:
    session: Session
    volume: object  # vtkMRMLScalarVolumeNode
    segmentation: object  # vtkMRMLSegmentationNode
    table: LabelTable | None = None

    @classmethod
    def open(
        cls,
        image: str | Path,
        segmentation: str | Path | None = None,
        table: LabelTable | str | Path | None = None,
        session: Session | None = None,
        rois: Sequence[str] | None = None,
    ) -> Case:
        """Load the image (file or DICOM folder) and, if given, its segmentation.

        The segmentation is a .seg.nrrd, a labelmap, an RTSTRUCT or a DICOM SEG; ``rois`` picks the
        structures of the last two by name or glob.
        """
        session = session or Session.create()
        if table is not None and not isinstance(table, LabelTable):
            table = LabelTable.read(table)
        volume = load_volume(session, image)
        if segmentation is not None:
            from .segmentation_io import load_segmentation

            node = load_segmentation(session, segmentation, volume, table, rois)
        else:
            node = new_segmentation(session, volume)
        if table is not None:
            apply_table(node, table)
        return cls(session, volume, node, table)

    def label_table(self) -> LabelTable:
        """The given table, else one built from the segments (names, colors, recorded values)."""
        return self.table or table_from_segmentation(self.segmentation)

    def save(self, path: str | Path, overwrite: bool = True) -> Path:
        """Write the segmentation on the source image's grid; format by extension."""
        check_output_path(path)
        return export(self.session, self.segmentation, self.volume, path, self.label_table(), overwrite)
