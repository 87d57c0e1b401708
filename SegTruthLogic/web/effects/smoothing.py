"""Smoothing: median, opening, closing or Gaussian of the selected segment, or joint smoothing of the visible
segments (SegTruth's ``smooth`` / ``joint_smooth``, Slicer's Smoothing effect)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ...core.errors import SegTruthError
from ...core.geometry import Grid
from ...core.progress import CancelToken, ProgressCallback
from ...scene.editing import apply_mask
from ...scene.segments import segment_ids, segment_masks
from ...tools.smoothing import METHODS, jointly_smoothed, smoothed_mask, write_joint_labels
from ..testids import testid
from ..workspace import Workspace
from .base import BoundState, Effect, EffectSpec, Work, number

if TYPE_CHECKING:
    from ..app import SegTruthWebApp

CHOICES = [*METHODS, "joint"]


@dataclass
class SmoothingState:
    method: str = "median"
    kernel_mm: float | str = 3.0
    sigma_mm: float | str = 1.0


@dataclass
class SmoothingEffect(Effect):
    """segment: the segment to smooth (ignored by ``joint``, which smooths every visible segment)."""

    segment: str
    method: str = "median"
    kernel_mm: float = 3.0
    sigma_mm: float = 1.0
    key: ClassVar[str] = "smoothing"
    title: ClassVar[str] = "Smoothing"

    def start(self, ws: Workspace) -> Work:
        """The masks are read here (main thread); the filters run in the worker on arrays and the grid."""
        if self.method not in CHOICES:
            raise SegTruthError(f"Unknown smoothing method {self.method!r}; use one of {', '.join(CHOICES)}.")
        if self.method == "joint":
            display = ws.segmentation.GetDisplayNode()
            ids = [s for s in segment_ids(ws.segmentation) if display is None or display.GetSegmentVisibility(s)]
            if not ids:
                raise SegTruthError("Joint smoothing found no visible segment.")
        else:
            ids = [self.segment]
        masks = segment_masks(ws.session, ws.segmentation, ids, ws.volume)
        grid = Grid.from_node(ws.volume)
        self._ids, self._result = ids, None

        def work(progress: ProgressCallback | None, cancel: CancelToken) -> None:
            if self.method == "joint":
                self._result = jointly_smoothed([masks[s] for s in ids], grid, self.sigma_mm, progress, cancel)
            else:
                self._result = smoothed_mask(masks[self.segment], grid, self.method, self.kernel_mm, self.sigma_mm)  # type: ignore[arg-type]

        return work

    def write(self, ws: Workspace, node) -> list[str]:
        result: np.ndarray = self._result  # type: ignore[assignment]
        if self.method == "joint":
            write_joint_labels(ws.session, node, ws.volume, self._ids, result, ws.edit_options())
        else:
            apply_mask(ws.session, node, self.segment, ws.volume, result, "set", ws.edit_options())
        return list(self._ids)


def smoothing_ui(bound: BoundState[SmoothingState], app: SegTruthWebApp) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    html.Div("Smooths the selected segment; joint: every visible segment at once.", classes="text-body-2 mb-2")
    v.VSelect(
        v_model=(bound.name("method"),),
        items=(CHOICES,),
        label="Method",
        density="compact",
        hide_details=True,
        raw_attrs=testid("smoothing-method"),
    )
    with html.Div(classes="d-flex mt-2", style="gap: 6px;"):
        v.VTextField(
            v_if=f"['median', 'opening', 'closing'].includes({bound.name('method')})",
            v_model=(bound.name("kernel_mm"),),
            label="Kernel size (mm)",
            type="number",
            density="compact",
            hide_details=True,
            raw_attrs=testid("smoothing-kernel"),
        )
        v.VTextField(
            v_if=f"['gaussian', 'joint'].includes({bound.name('method')})",
            v_model=(bound.name("sigma_mm"),),
            label="Standard deviation (mm)",
            type="number",
            density="compact",
            hide_details=True,
            raw_attrs=testid("smoothing-sigma"),
        )


def _settings(state: SmoothingState, app: SegTruthWebApp) -> tuple:
    segment = "" if state.method == "joint" else app.ws.selected_segment()
    return segment, state.method, number(state.kernel_mm, "Kernel size"), number(state.sigma_mm, "Standard deviation")


SPEC = EffectSpec(
    key="smoothing",
    title="Smoothing",
    icon="mdi-blur",
    prefix="st_smooth",
    state_type=SmoothingState,
    ui=smoothing_ui,
    settings=_settings,
    make=lambda settings, app: SmoothingEffect(*settings),
)
