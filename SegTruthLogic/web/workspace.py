"""One scene for trame-slicer's editor and SegTruth's tools: the open case, its label table, undo.

trame-slicer's ``SlicerApp`` builds the scene and the module logics SegTruth needs, so the ``Session`` the
tools take is made from those very objects: a paint stroke in a view and a grow from seeds act on the same
segmentation node, and both land in trame-slicer's undo stack (SegTruth's edits are recorded as
segmentation snapshots, the way trame-slicer records its own effects). Nothing here needs a server or a
browser, so the tests drive it directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import vtk

from ..core.errors import SegTruthError
from ..core.labels import Label, LabelTable, color_hex, default_color
from ..scene.editing import EditOptions, options_from_editor_node
from ..scene.segmentation_io import load_segmentation
from ..scene.segments import (
    LABEL_VALUE_TAG,
    add_segment,
    apply_table,
    layers,
    new_segmentation,
    segment_ids,
    table_from_segmentation,
)
from ..scene.session import Session, drop_duplicate_converter_rules, load_segtruth_terminologies, quiet_vtk
from ..scene.volumes import load_volume
from .cases import WebCase
from .saving import OverwriteGuard, save_both

UNDO_LIMIT = 10


def session_from_slicer_app(app) -> Session:
    """A SegTruth ``Session`` on a trame-slicer ``SlicerApp``'s own scene and logics (one scene serves both)."""
    terminologies = app.terminologies_logic
    load_segtruth_terminologies(terminologies)
    drop_duplicate_converter_rules()  # each SlicerApp registers them again
    return Session(
        scene=app.scene,
        app_logic=app.app_logic,
        colors=app.color_logic,
        volumes=app.volumes_logic,
        segmentations=app.segmentations_logic,
        subject_hierarchy=app.subject_hierarchy_logic,
        terminologies=terminologies,
        headless=True,  # fill between slices then runs ITK in a child process, which the server survives
    )


@dataclass(frozen=True)
class SegmentRow:
    """A row of the segment list: the segment and the label it is saved as."""

    segment_id: str
    name: str
    value: int | None
    color: str
    voxels: int


def slug(name: str) -> str:
    """A segment name as a stable, HTML-safe test id part ("right lung" -> "right-lung")."""
    text = "".join(c.lower() if c.isalnum() else "-" for c in name).strip("-")
    return "-".join(part for part in text.split("-") if part) or "segment"


class Workspace:
    """The open case on trame-slicer's scene: volume, segmentation, label table, undo and Save."""

    def __init__(self, slicer_app=None, table: LabelTable | None = None) -> None:
        if slicer_app is None:
            from trame_slicer.core import SlicerApp

            slicer_app = SlicerApp()
        self.app = slicer_app
        self.session = session_from_slicer_app(slicer_app)
        self.editor = slicer_app.segmentation_editor
        if self.editor.undo_stack is None:
            from undo_stack import UndoStack

            self.editor.set_undo_stack(UndoStack(undo_limit=UNDO_LIMIT))
        self.table = table
        self.case: WebCase | None = None
        self.volume = None
        self.segmentation = None
        self.loaded_from: Path | None = None
        self.guard = OverwriteGuard()

    # -- the case --------------------------------------------------------------------------------------------
    def open_case(self, case: WebCase, activate: Callable[[object], None] | None = None) -> None:
        """Replace the scene's content by ``case``: its image, its annotation or an empty one, the table's labels.

        ``activate(volume)`` hands the segmentation to the editor (the web app lets trame-slicer's panel do it).
        Files are read only through SegTruth's checked readers (Slicer's own readers can abort the process on a
        damaged file); a bad one raises its one-sentence ``SegTruthError`` and leaves no case open, ready for
        the next one. A case whose problem is known already raises before the open case is closed.
        """
        if case.problem:
            raise SegTruthError(case.problem)
        self.session.clear()  # trame-slicer's editor drops its segmentation and undo history with the scene
        self.case = self.volume = self.segmentation = self.loaded_from = None
        try:
            volume, segmentation, start = self._load(case)
            self.case, self.volume, self.segmentation, self.loaded_from = case, volume, segmentation, start
            self.label_table()  # records every segment's value now, so values stay put while segments change
        except BaseException:
            self.case = self.volume = self.segmentation = self.loaded_from = None
            self.session.clear()  # nothing half-open stays: the next case starts from an empty scene
            raise
        # trame-slicer's effect pipelines complain once about their empty reslice inputs when first activated.
        with quiet_vtk():
            if activate is not None:
                activate(volume)
            else:
                self.editor.set_active_segmentation(segmentation, volume)

    def _load(self, case: WebCase) -> tuple[object, object, Path | None]:
        """The case's volume and segmentation (its annotation, or an empty one with the table's labels)."""
        volume = load_volume(self.session, case.image)
        start = case.start_from()
        if start is not None:
            rois = case.entry.rois if start == case.segmentation else None  # an RTSTRUCT/SEG's structures
            segmentation = load_segmentation(self.session, start, volume, self.table, rois)
            self.guard.remember(start)
            if start == case.seg_output:
                self.guard.remember_export(case.labelmap_output, start)
        else:
            segmentation = new_segmentation(self.session, volume, f"{case.case} segmentation")
        if self.table is not None:
            apply_table(segmentation, self.table)
            present = {segmentation.GetSegmentation().GetSegment(s).GetName() for s in segment_ids(segmentation)}
            for label in self.table:
                if label.name not in present:
                    add_segment(segmentation, label)
        segmentation.CreateDefaultDisplayNodes()
        return volume, segmentation, start

    def require_case(self) -> None:
        if self.segmentation is None or self.volume is None:
            raise SegTruthError("Open a case first.")

    # -- labels ------------------------------------------------------------------------------------------------
    def label_table(self) -> LabelTable:
        """The segments as a label table; a segment without a recorded value gets the next free one, kept from now on."""
        self.require_case()
        table = table_from_segmentation(self.segmentation)
        segmentation = self.segmentation.GetSegmentation()  # type: ignore[union-attr]
        for sid in segment_ids(self.segmentation):
            segment = segmentation.GetSegment(sid)
            text = vtk.reference("")
            if not segment.GetTag(LABEL_VALUE_TAG, text):
                segment.SetTag(LABEL_VALUE_TAG, str(table.by_name(segment.GetName()).value))  # type: ignore[union-attr]
        return table

    def rows(self) -> tuple[list[SegmentRow], str]:
        """The segment list with label values and voxel counts, and the reason values are missing (if they are)."""
        if self.segmentation is None:
            return [], ""
        problem = ""
        try:
            table = self.label_table()
        except SegTruthError as error:
            table, problem = None, str(error)
        counts = self.voxel_counts()
        rows = []
        segmentation = self.segmentation.GetSegmentation()
        for sid in segment_ids(self.segmentation):
            segment = segmentation.GetSegment(sid)
            label = table.by_name(segment.GetName()) if table is not None else None
            rows.append(
                SegmentRow(
                    sid, segment.GetName(), label.value if label else None, color_hex(segment.GetColor()), counts[sid]
                )
            )
        return rows, problem

    def voxel_counts(self) -> dict[str, int]:
        """Voxels of every segment on the volume's grid, one pass per labelmap layer."""
        counts = dict.fromkeys(segment_ids(self.segmentation), 0)
        for values, segments in layers(self.segmentation, self.volume):
            found = np.bincount(values.ravel(), minlength=max(segments, default=0) + 1)
            for value, sid in segments.items():
                counts[sid] = int(found[value])
        return counts

    def segment_name(self, segment_id: str) -> str:
        segment = self.segmentation.GetSegmentation().GetSegment(segment_id)  # type: ignore[union-attr]
        if segment is None:
            raise SegTruthError(f"No segment {segment_id!r} in this case.")
        return segment.GetName()

    def selected_segment(self) -> str:
        """The ID of the segment selected in the segment list; an error when none is."""
        self.require_case()
        segment_id = self.editor.get_active_segment_id()
        if not segment_id:
            raise SegTruthError("Select a segment first.")
        return segment_id

    def select(self, segment_id: str) -> None:
        self.require_case()
        self.editor.set_active_segment_id(segment_id)

    def add_label(self, name: str, color: str | None = None) -> str:
        """A new segment called ``name`` with the next free label value; returns its ID (undoable)."""
        self.require_case()
        name = name.strip()
        if not name:
            raise SegTruthError("Give the new segment a name.")
        if self.segmentation.GetSegmentation().GetSegmentIdBySegmentName(name):  # type: ignore[union-attr]
            raise SegTruthError(f"A segment named {name!r} already exists.")
        table = self.label_table()
        listed = self.table.by_name(name) if self.table is not None else None
        taken = {label.value for label in table}
        value = listed.value if listed and listed.value not in taken else max(taken | {0}) + 1
        rgb = listed.color if listed else default_color(value)
        if color:
            from ..core.labels import parse_color

            rgb = parse_color(color, f"segment {name!r}")
        label = Label(name, value, rgb, listed.terminology) if listed else Label(name, value, rgb)
        with self.record():
            segment_id = add_segment(self.segmentation, label)
        self.select(segment_id)
        return segment_id

    def remove_label(self, segment_id: str) -> None:
        """Delete a segment (undoable); its label leaves the table with it."""
        self.require_case()
        self.segment_name(segment_id)
        self.editor.remove_segment(segment_id)

    # -- editing ------------------------------------------------------------------------------------------------
    def edit_options(self) -> EditOptions:
        """The editable area, intensity range and overwrite mode set in the editor's panel."""
        return options_from_editor_node(self.editor.editor_node)

    @contextmanager
    def record(self) -> Iterator[None]:
        """Make the edits of the block one step of the editor's undo history."""
        from trame_slicer.segmentation.segmentation_undo_command import SegmentationLabelMapUndoCommand

        self.require_case()
        segmentation = self.editor.active_segmentation
        if segmentation is None or segmentation.segmentation_node is not self.segmentation:
            yield
            return
        with SegmentationLabelMapUndoCommand.push_state_change(segmentation):
            yield

    def undo(self) -> None:
        if self.editor.undo_stack is not None and self.editor.undo_stack.can_undo():
            self.editor.undo_stack.undo()

    def redo(self) -> None:
        if self.editor.undo_stack is not None and self.editor.undo_stack.can_redo():
            self.editor.undo_stack.redo()

    # -- saving -------------------------------------------------------------------------------------------------
    def save(self) -> list[Path]:
        """Write the case's ``.seg.nrrd`` and its labelmap on the source grid (see ``saving``)."""
        self.require_case()
        case = self.case
        assert case is not None
        return save_both(
            self.session,
            self.segmentation,
            self.volume,
            self.label_table(),
            case.seg_output,
            case.labelmap_output,
            self.guard,
        )
