"""SegTruth's tools as editor effects with preview, apply and cancel.

An effect runs the SegTruth tool function itself, on a copy of the case's segmentation: the copy is shown
over the case as the preview, Apply moves the copy's content into the case as one undo step, Cancel drops
it. So what the browser shows and saves is exactly what the same function does in a script or recipe.
If the case changed after the preview (a new seed stroke), Apply refreshes the preview first.

The heavy part of an effect (growing, inference) is returned by ``start`` as a function that touches no
MRML node, so the server can run it in a worker thread with progress and cancel while views stay live;
``write`` puts its result into a node on the main thread, as MRML requires.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Optional

import numpy as np
from slicer.util import arrayFromVolume

from ..errors import Cancelled, SegTruthError
from ..geometry import Grid
from ..progress import CancelToken, ProgressCallback, report
from ..segments import segment_ids, segment_mask
from .workspace import Workspace

Work = Callable[[Optional[ProgressCallback], CancelToken], None]
"""The heavy part of an effect: reports progress, checks the token, touches no MRML node."""


class Effect(ABC):
    """One configured use of a SegTruth tool."""

    key: ClassVar[str]
    title: ClassVar[str]

    def start(self, ws: Workspace) -> Work | None:
        """Main thread: check the inputs and capture what the heavy part needs (None when there is none)."""
        return None

    @abstractmethod
    def write(self, ws: Workspace, node) -> list[str]:
        """Main thread: write the result into ``node`` (a copy of the case's segmentation); the IDs it changed."""

    def summary(self) -> str:
        return f"{self.title}: preview ready."


def _names(ws: Workspace, ids: Sequence[str]) -> list[str]:
    return [ws.segment_name(sid) for sid in ids]


@dataclass
class ThresholdEffect(Effect):
    """Voxels with ``low <= value <= high`` into the segment (SegTruth's ``threshold``)."""

    segment: str
    low: float
    high: float
    key: ClassVar[str] = "threshold"
    title: ClassVar[str] = "Threshold"

    def write(self, ws: Workspace, node) -> list[str]:
        from ..tools.threshold import threshold

        threshold(
            ws.session, node, ws.volume, ws.segment_name(self.segment), self.low, self.high, options=ws.edit_options()
        )
        return [self.segment]


IslandMode = Literal["keep_largest", "remove_small", "split"]


@dataclass
class IslandsEffect(Effect):
    """Keep the largest island, remove islands under a size, or split islands into segments."""

    segment: str
    mode: IslandMode = "keep_largest"
    min_voxels: int = 1000
    key: ClassVar[str] = "islands"
    title: ClassVar[str] = "Islands"

    def write(self, ws: Workspace, node) -> list[str]:
        from ..tools import islands

        name, options = ws.segment_name(self.segment), ws.edit_options()
        if self.mode == "keep_largest":
            islands.keep_largest_island(ws.session, node, ws.volume, name, options)
        elif self.mode == "remove_small":
            islands.remove_small_islands(ws.session, node, ws.volume, name, min_voxels=self.min_voxels, options=options)
        elif self.mode == "split":
            return islands.split_islands(ws.session, node, ws.volume, name, options=options)
        else:
            raise SegTruthError(f"Unknown islands mode {self.mode!r}; use keep_largest, remove_small or split.")
        return [self.segment]


@dataclass
class FillBetweenEffect(Effect):
    """Interpolate segments drawn on a few slices (all segments with voxels, or the ones given)."""

    segments: list[str] | None = None
    axis: str | None = None
    key: ClassVar[str] = "fill_between"
    title: ClassVar[str] = "Fill between slices"

    def write(self, ws: Workspace, node) -> list[str]:
        from ..tools.fill_between import fill_between_slices

        ids = self.segments
        if ids is None:
            counts = ws.voxel_counts()
            ids = [sid for sid in segment_ids(ws.segmentation) if counts[sid]]
        if not ids:
            raise SegTruthError("Fill between slices needs a segment drawn on some slices.")
        return fill_between_slices(ws.session, node, ws.volume, _names(ws, ids), self.axis, ws.edit_options())


@dataclass
class GrowEffect(Effect):
    """Grow from seeds, incremental while the preview is up: more strokes only relax what they change.

    seeds: the seed segments (default: every segment with voxels except ``inside``). inside: grow only in
    this segment's voxels (the seeds count wherever they are; the region is fixed when the preview starts,
    so strokes added later stay incremental). whole_image: grow over the whole image instead of the seeds'
    box plus ``margin`` (Slicer's default, which needs seeds spread around the structure).
    """

    seeds: list[str] | None = None
    inside: str | None = None
    whole_image: bool = False
    margin: float = 0.15
    key: ClassVar[str] = "grow"
    title: ClassVar[str] = "Grow from seeds"
    last_update: str = field(default="", init=False)
    _cut: Any = field(default=None, init=False, repr=False)
    _mask: np.ndarray | None = field(default=None, init=False, repr=False)
    _ids: list[str] = field(default_factory=list, init=False, repr=False)

    def _seed_ids(self, ws: Workspace) -> list[str]:
        if self.seeds is not None:
            return [sid for sid in self.seeds if sid != self.inside]
        counts = ws.voxel_counts()
        return [sid for sid in segment_ids(ws.segmentation) if counts[sid] and sid != self.inside]

    def start(self, ws: Workspace) -> Work:
        from ..tools.grow import GrowCut, seeds_from_segments

        ids = self._seed_ids(ws)
        seeds, ids = seeds_from_segments(ws.session, ws.segmentation, ws.volume, _names(ws, ids))
        if ids != self._ids:
            self._cut = self._mask = None  # other seed segments: start over
        if self._cut is None:
            if self.inside is not None:
                self._mask = segment_mask(ws.session, ws.segmentation, self.inside, ws.volume) | (seeds > 0)
            grid = Grid.from_node(ws.volume)
            self._cut = GrowCut(arrayFromVolume(ws.volume), grid.spacing, self._mask, margin=self._margin())
        self._ids = ids
        cut = self._cut

        def work(progress: ProgressCallback | None, cancel: CancelToken) -> None:
            cut.update(seeds, progress, cancel)
            self.last_update = cut.last_update or ""

        return work

    def _margin(self) -> float | None:
        return None if self.whole_image else self.margin

    def write(self, ws: Workspace, node) -> list[str]:
        from ..tools.grow import grow_from_seeds

        grow_from_seeds(
            ws.session, node, ws.volume, _names(ws, self._ids), self._mask, margin=self._margin(), growcut=self._cut
        )
        return list(self._ids)

    def summary(self) -> str:
        kind = {"full": "computed", "incremental": "updated incrementally", "unchanged": "unchanged"}
        return f"Grow from seeds: preview {kind.get(self.last_update, 'ready')}."


@dataclass
class AutoSegmentEffect(Effect):
    """A catalog model (or a model folder) on the case's image, through a ``gui.jobs.JobRunner``.

    The runner's job carries progress and cancel; its result stays with the effect, so a refreshed preview
    or Apply never runs the model twice. Segments the model adds take the model's label values unless the
    case already uses them; then they take the next free value (the case's label table wins).
    """

    runner: Any
    model: str
    device: str = "auto"
    key: ClassVar[str] = "auto_segment"
    title: ClassVar[str] = "Auto-segment"
    notices: list[str] = field(default_factory=list, init=False)
    _handle: Any = field(default=None, init=False, repr=False)
    _done: bool = field(default=False, init=False, repr=False)

    def start(self, ws: Workspace) -> Work | None:
        from ..gui.jobs import AutoSegmentRequest

        if not self.model:
            raise SegTruthError("Choose a model first.")
        if self._done:
            return None
        handle = self.runner.start(AutoSegmentRequest(ws.volume, self.model, self.device))
        self._handle = handle

        def work(progress: ProgressCallback | None, cancel: CancelToken) -> None:
            while not handle.done:
                if cancel.cancelled:
                    handle.cancel()
                fraction, message = handle.progress()
                report(progress, fraction, message)
                time.sleep(0.05)
            if cancel.cancelled:
                self._handle = None
                raise Cancelled("auto-segmentation")
            self._done = True

        return work

    def write(self, ws: Workspace, node) -> list[str]:
        from ..segments import LABEL_VALUE_TAG

        if self._handle is None or not self._done:
            raise SegTruthError("The model has not run yet.")
        before = set(segment_ids(node))
        outcome = self._handle.finish(node)
        self.notices = list(outcome.notices)
        names = [label.name for label in outcome.table]
        segmentation = node.GetSegmentation()
        ids = [sid for sid in (segmentation.GetSegmentIdBySegmentName(name) for name in names) if sid]
        case_table = ws.label_table()
        taken = {label.value for label in case_table}
        for sid in ids:
            segment = segmentation.GetSegment(sid)
            if sid in before:  # the case's own segment keeps the value the case gives it
                segment.SetTag(LABEL_VALUE_TAG, str(case_table.by_name(segment.GetName()).value))  # type: ignore[union-attr]
                continue
            value = outcome.table.by_name(segment.GetName()).value
            if value in taken:
                value = max(taken | {0}) + 1
                segment.SetTag(LABEL_VALUE_TAG, str(value))
            taken.add(value)
        return ids

    def summary(self) -> str:
        return f"Auto-segment: {self.model!r} finished; review the preview and apply it."


PREVIEW_NAME = "SegTruth preview"


def _fingerprint(node) -> tuple:
    """Changes whenever a segment is added, removed, renamed or its voxels change."""
    segmentation = node.GetSegmentation()
    ids = tuple(segment_ids(node))
    layers = tuple(segmentation.GetLayerDataObject(i).GetMTime() for i in range(segmentation.GetNumberOfLayers()))
    names = tuple(segmentation.GetSegment(sid).GetName() for sid in ids)
    return ids, names, layers, segmentation.GetMTime()


class Previewer:
    """The preview of one effect over the case: show it, refresh it when the case changed, apply or cancel it."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.effect: Effect | None = None
        self.node = None
        self.shown: list[str] = []
        self._stamp: tuple | None = None

    @property
    def active(self) -> bool:
        return self.effect is not None and self.node is not None

    @property
    def stale(self) -> bool:
        """The case changed since the preview was computed."""
        return self.active and self._stamp != _fingerprint(self.ws.segmentation)

    def prepare(self, effect: Effect) -> Work | None:
        """Main thread: make ``effect`` the one previewed and return its heavy part (if any) to run."""
        self.ws.require_case()
        if effect is not self.effect:
            self.cancel()
        self.effect = effect
        try:
            return effect.start(self.ws)
        except BaseException:
            self.cancel()
            raise

    def show(self) -> list[str]:
        """Main thread: write the effect's result into a fresh copy of the case and show its changed segments."""
        if self.effect is None:
            raise SegTruthError("No effect to preview.")
        ws = self.ws
        if self.node is None:
            self.node = ws.session.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", PREVIEW_NAME)
            self.node.SetHideFromEditors(True)
            self.node.SetSaveWithScene(False)
            self.node.CreateDefaultDisplayNodes()
            display = self.node.GetDisplayNode()
            display.SetVisibility3D(False)
            display.SetOpacity2DFill(0.6)
            display.SetOpacity2DOutline(1.0)
        stamp = _fingerprint(ws.segmentation)
        self.node.GetSegmentation().DeepCopy(ws.segmentation.GetSegmentation())
        try:
            self.shown = self.effect.write(ws, self.node)
        except BaseException:
            self.cancel()
            raise
        display = self.node.GetDisplayNode()
        for sid in segment_ids(self.node):
            display.SetSegmentVisibility(sid, sid in self.shown)
        self._stamp = stamp
        return self.shown

    def preview(
        self, effect: Effect, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
    ) -> list[str]:
        """Compute and show ``effect``'s preview in this thread (the tests and scripts; the server splits it)."""
        work = self.prepare(effect)
        if work is not None:
            try:
                work(progress, cancel or CancelToken())
            except Cancelled:
                self.cancel()
                raise
        return self.show()

    def apply(self) -> Effect:
        """Move the preview into the case as one undo step (refreshed first if the case changed); returns the effect."""
        effect = self.effect
        if effect is None or self.node is None:
            raise SegTruthError("Nothing to apply: preview an effect first.")
        if self.stale:
            self.preview(effect)
        with self.ws.record():
            self.ws.segmentation.GetSegmentation().DeepCopy(self.node.GetSegmentation())  # type: ignore[union-attr]
        self.cancel()
        return effect

    def cancel(self) -> None:
        """Drop the preview; the case is left as it was."""
        if self.node is not None:
            self.ws.session.remove(self.node)
        self.node = None
        self.effect = None
        self.shown = []
        self._stamp = None

    def forget(self) -> None:
        """The scene was cleared (another case): the preview node is gone with it."""
        self.node = None
        self.cancel()
