"""The preview of an effect over the case: a copy of the case's segmentation shown over it.

Apply moves the copy's content into the case as one undo step, Cancel drops it. So what the browser shows
and saves is exactly what the same tool function does in a script or recipe. If the case changed after
the preview (a new seed stroke), Apply refreshes the preview first.

A preview shown again for the same effect (grow from seeds after each stroke) is first offered to the
effect to update in place (``Effect.update_preview``: only the voxels that changed); only when it declines
is the copy of the whole case made again.
"""

from __future__ import annotations

from ...core.errors import Cancelled, SegTruthError
from ...core.progress import CancelToken, ProgressCallback
from ...scene.segments import segment_ids
from ..workspace import Workspace
from .base import Effect, Work

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
        self._written: Effect | None = None  # the effect whose result the node holds

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
        try:
            shown = self.effect.update_preview(ws, self.node) if self._written is self.effect else None
            if shown is None:
                self._written = None
                self.node.GetSegmentation().DeepCopy(ws.segmentation.GetSegmentation())
                shown = self.effect.write(ws, self.node)
            self.shown, self._written = shown, self.effect
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
        self._written = None

    def forget(self) -> None:
        """The scene was cleared (another case): the preview node is gone with it."""
        self.node = None
        self.cancel()
