"""Threshold: voxels with ``low <= value <= high`` into the selected segment (SegTruth's ``threshold``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ...tools.threshold import auto_threshold, threshold
from ..testids import testid
from ..workspace import Workspace
from .base import BoundState, Effect, EffectSpec, number

if TYPE_CHECKING:
    from ..app import SegTruthWebApp


@dataclass
class ThresholdState:
    """The range as the text fields hold it (numbers arrive as text)."""

    low: float | str = -1000.0
    high: float | str = 0.0


@dataclass
class ThresholdEffect(Effect):
    segment: str
    low: float
    high: float
    key: ClassVar[str] = "threshold"
    title: ClassVar[str] = "Threshold"

    def write(self, ws: Workspace, node) -> list[str]:
        threshold(
            ws.session, node, ws.volume, ws.segment_name(self.segment), self.low, self.high, options=ws.edit_options()
        )
        return [self.segment]


def threshold_ui(bound: BoundState[ThresholdState], app: SegTruthWebApp) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    html.Div("Voxels in [low, high] go into the selected segment.", classes="text-body-2 mb-2")
    with html.Div(classes="d-flex", style="gap: 6px;"):
        for field_name, label in (("low", "Low"), ("high", "High")):
            v.VTextField(
                v_model=(bound.name(field_name),),
                label=label,
                type="number",
                density="compact",
                hide_details=True,
                raw_attrs=testid(f"threshold-{field_name}"),
            )
        v.VBtn(
            "Otsu",
            size="small",
            variant="text",
            click=lambda: app.guard(lambda: _otsu(bound, app)),
            raw_attrs=testid("threshold-auto"),
        )


def _otsu(bound: BoundState[ThresholdState], app: SegTruthWebApp) -> None:
    app.ws.require_case()
    low, high = auto_threshold(app.ws.volume, "otsu", "above")
    bound.set(low=round(low, 3), high=round(high, 3))


def _settings(state: ThresholdState, app: SegTruthWebApp) -> tuple:
    return app.ws.selected_segment(), number(state.low, "Low"), number(state.high, "High")


def _on_case(bound: BoundState[ThresholdState], app: SegTruthWebApp) -> None:
    low, high = app.ws.volume.GetImageData().GetScalarRange()
    bound.set(low=float(low), high=float(high))


SPEC = EffectSpec(
    key="threshold",
    title="Threshold",
    icon="mdi-auto-fix",
    prefix="st_thr",
    state_type=ThresholdState,
    ui=threshold_ui,
    settings=_settings,
    make=lambda settings, app: ThresholdEffect(*settings),
    on_case=_on_case,
)
