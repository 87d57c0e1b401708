"""Smoothing: median, opening, closing or Gaussian of the selected segment, or joint smoothing of the visible
segments (SegTruth's ``smooth`` / ``joint_smooth``, Slicer's Smoothing effect)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ...core.errors import SegTruthError
from ...tools.smoothing import METHODS, joint_smooth, smooth
from ..testids import testid
from ..workspace import Workspace
from .base import BoundState, Effect, EffectSpec, number

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

    def write(self, ws: Workspace, node) -> list[str]:
        if self.method not in CHOICES:
            raise SegTruthError(f"Unknown smoothing method {self.method!r}; use one of {', '.join(CHOICES)}.")
        if self.method == "joint":
            display = ws.segmentation.GetDisplayNode()
            visible = [s for s in _ids(ws) if display is None or display.GetSegmentVisibility(s)]
            return joint_smooth(ws.session, node, ws.volume, visible, self.sigma_mm, ws.edit_options())
        name = ws.segment_name(self.segment)
        smooth(ws.session, node, ws.volume, name, self.method, self.kernel_mm, self.sigma_mm, ws.edit_options())  # type: ignore[arg-type]
        return [self.segment]


def _ids(ws: Workspace) -> list[str]:
    from ...scene.segments import segment_ids

    return segment_ids(ws.segmentation)


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
