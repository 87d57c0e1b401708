"""Scissors: erase or fill the selected segment inside or outside a polygon (RAS points on a view plane) on
one slice, a slab or the whole volume (SegTruth's ``scissors``, Slicer's Scissors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ...tools.scissors import OPERATIONS, REACHES, scissors
from ..testids import testid
from ..workspace import Workspace
from .base import BoundState, Effect, EffectSpec, ViewInput, number
from .points import parse_points

if TYPE_CHECKING:
    from ..app import SegTruthWebApp


@dataclass
class ScissorsState:
    polygon: str = ""
    operation: str = "erase_inside"
    reach: str = "all"
    slab_mm: float | str = 10.0


@dataclass
class ScissorsEffect(Effect):
    segment: str
    polygon: tuple[tuple[float, float, float], ...]
    operation: str = "erase_inside"
    reach: str = "all"
    slab_mm: float | None = None
    key: ClassVar[str] = "scissors"
    title: ClassVar[str] = "Scissors"

    def write(self, ws: Workspace, node) -> list[str]:
        scissors(
            ws.session,
            node,
            ws.volume,
            ws.segment_name(self.segment),
            [list(p) for p in self.polygon],
            self.operation,  # type: ignore[arg-type]
            self.reach,  # type: ignore[arg-type]
            self.slab_mm,
            options=ws.edit_options(),
        )
        return [self.segment]


def scissors_ui(bound: BoundState[ScissorsState], app: SegTruthWebApp) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    html.Div(
        "Drag around the area in a slice view, or type the polygon: x, y, z; x, y, z; ... (RAS mm, on a view plane).",
        classes="text-body-2 mb-2",
    )
    v.VTextField(
        v_model=(bound.name("polygon"),),
        label="Polygon",
        density="compact",
        hide_details=True,
        raw_attrs=testid("scissors-polygon"),
    )
    with html.Div(classes="d-flex mt-2", style="gap: 6px;"):
        v.VSelect(
            v_model=(bound.name("operation"),),
            items=(list(OPERATIONS),),
            label="Operation",
            density="compact",
            hide_details=True,
            raw_attrs=testid("scissors-operation"),
        )
        v.VSelect(
            v_model=(bound.name("reach"),),
            items=(list(REACHES),),
            label="Reach",
            density="compact",
            hide_details=True,
            raw_attrs=testid("scissors-reach"),
        )
        v.VTextField(
            v_if=f"{bound.name('reach')} === 'slab'",
            v_model=(bound.name("slab_mm"),),
            label="Slab (mm)",
            type="number",
            density="compact",
            hide_details=True,
            raw_attrs=testid("scissors-slab"),
        )


def _settings(state: ScissorsState, app: SegTruthWebApp) -> tuple:
    slab = number(state.slab_mm, "Slab thickness") if state.reach == "slab" else None
    polygon = tuple(tuple(p) for p in parse_points(state.polygon, "Polygon"))
    return app.ws.selected_segment(), polygon, state.operation, state.reach, slab


SPEC = EffectSpec(
    key="scissors",
    title="Scissors",
    icon="mdi-content-cut",
    prefix="st_scissors",
    state_type=ScissorsState,
    ui=scissors_ui,
    settings=_settings,
    make=lambda settings, app: ScissorsEffect(*settings),
    view_input=ViewInput("polygon", outline=True),
)
