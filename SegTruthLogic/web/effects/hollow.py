"""Hollow: the selected segment becomes a shell of a thickness in mm (SegTruth's ``hollow``, Slicer's Hollow)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ...tools.hollow import hollow
from ..testids import testid
from ..workspace import Workspace
from .base import BoundState, Effect, EffectSpec, number

if TYPE_CHECKING:
    from ..app import SegTruthWebApp

MODES = [
    {"title": "Segment is the inside surface (shell outside)", "value": "inside_surface"},
    {"title": "Segment is the medial surface (shell centred)", "value": "medial_surface"},
    {"title": "Segment is the outside surface (shell inside)", "value": "outside_surface"},
]


@dataclass
class HollowState:
    thickness_mm: float | str = 3.0
    mode: str = "inside_surface"


@dataclass
class HollowEffect(Effect):
    segment: str
    thickness_mm: float = 3.0
    mode: str = "inside_surface"
    key: ClassVar[str] = "hollow"
    title: ClassVar[str] = "Hollow"

    def write(self, ws: Workspace, node) -> list[str]:
        name = ws.segment_name(self.segment)
        hollow(ws.session, node, ws.volume, name, self.thickness_mm, self.mode, ws.edit_options())  # type: ignore[arg-type]
        return [self.segment]


def hollow_ui(bound: BoundState[HollowState], app: SegTruthWebApp) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    html.Div("Replaces the selected segment by a shell.", classes="text-body-2 mb-2")
    v.VTextField(
        v_model=(bound.name("thickness_mm"),),
        label="Shell thickness (mm)",
        type="number",
        density="compact",
        hide_details=True,
        raw_attrs=testid("hollow-thickness"),
    )
    v.VSelect(
        v_model=(bound.name("mode"),),
        items=(MODES,),
        density="compact",
        hide_details=True,
        classes="mt-2",
        raw_attrs=testid("hollow-mode"),
    )


SPEC = EffectSpec(
    key="hollow",
    title="Hollow",
    icon="mdi-circle-outline",
    prefix="st_hollow",
    state_type=HollowState,
    ui=hollow_ui,
    settings=lambda state, app: (app.ws.selected_segment(), number(state.thickness_mm, "Shell thickness"), state.mode),
    make=lambda settings, app: HollowEffect(*settings),
)
