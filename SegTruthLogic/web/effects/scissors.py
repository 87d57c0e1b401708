"""Scissors: erase or fill the selected segment inside or outside a polygon (RAS points on a view plane) on
one slice, a slab or the whole volume (SegTruth's ``scissors``, Slicer's Scissors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ...tools.scissors import OPERATIONS, REACHES, SLAB_SIDES, scissors
from ..testids import testid
from ..workspace import Workspace
from .base import BoundState, Effect, EffectSpec, ViewInput, number
from .points import parse_points

if TYPE_CHECKING:
    from ..app import SegTruthWebApp

PLANE_TOLERANCE_MM = 0.05  # a drawn polygon's points (kept to 0.01 mm) lie this close to the view's plane


@dataclass
class ScissorsState:
    polygon: str = ""
    operation: str = "erase_inside"
    reach: str = "all"
    slab_mm: float | str = 10.0
    slab_side: str = "both"
    normal: str = ""  # the view's normal when the polygon was drawn in a view (x, y, z); typed: the polygon's


@dataclass
class ScissorsEffect(Effect):
    segment: str
    polygon: tuple[tuple[float, float, float], ...]
    operation: str = "erase_inside"
    reach: str = "all"
    slab_mm: float | None = None
    slab_side: str = "both"
    normal: tuple[float, float, float] | None = None
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
            self.normal,
            options=ws.edit_options(),
            slab_side=self.slab_side,  # type: ignore[arg-type]
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
    slab_only = {"v_if": f"{bound.name('reach')} === 'slab'"}

    def choice(field_name: str, items, label: str, name: str, **shown) -> None:
        v.VSelect(
            v_model=(bound.name(field_name),),
            items=(list(items),),
            label=label,
            density="compact",
            hide_details=True,
            raw_attrs=testid(name),
            **shown,
        )

    with html.Div(classes="d-flex mt-2", style="gap: 6px;"):
        choice("operation", OPERATIONS, "Operation", "scissors-operation")
        choice("reach", REACHES, "Reach", "scissors-reach")
        v.VTextField(
            v_model=(bound.name("slab_mm"),),
            label="Slab (mm)",
            type="number",
            density="compact",
            hide_details=True,
            raw_attrs=testid("scissors-slab"),
            **slab_only,
        )
        choice("slab_side", SLAB_SIDES, "Side", "scissors-slab-side", **slab_only)


def _settings(state: ScissorsState, app: SegTruthWebApp) -> tuple:
    slab = number(state.slab_mm, "Slab thickness") if state.reach == "slab" else None
    polygon = tuple(tuple(p) for p in parse_points(state.polygon, "Polygon"))
    normal = tuple(parse_points(state.normal, "View normal")[0]) if str(state.normal).strip() else None
    if normal is not None and np.ptp(np.asarray(polygon) @ np.asarray(normal)) > PLANE_TOLERANCE_MM:
        normal = None  # a polygon typed on another plane than the view's it was drawn in: its own normal
    return app.ws.selected_segment(), polygon, state.operation, state.reach, slab, state.slab_side, normal


SPEC = EffectSpec(
    key="scissors",
    title="Scissors",
    icon="mdi-content-cut",
    prefix="st_scissors",
    state_type=ScissorsState,
    ui=scissors_ui,
    settings=_settings,
    make=lambda settings, app: ScissorsEffect(*settings),
    view_input=ViewInput("polygon", outline=True, normal_setting="normal"),
)
