"""Flood fill: the voxels connected to a point within an intensity tolerance go into the selected segment
(SegTruth's ``flood_fill``, SegmentEditorExtraEffects' Flood filling).

The point is a click in a slice view, typed as ``x, y, z`` (RAS mm), or the slice views' crossing point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ...tools.flood_fill import DEFAULT_NEIGHBOURHOOD_MM, DEFAULT_TOLERANCE, flood_fill
from ..testids import testid
from ..workspace import Workspace
from .base import BoundState, Effect, EffectSpec, ViewInput, number
from .points import parse_points, point_field, volume_centre

if TYPE_CHECKING:
    from ..app import SegTruthWebApp


@dataclass
class FloodFillState:
    point: str = ""
    tolerance: float | str = DEFAULT_TOLERANCE
    neighbourhood_mm: float | str = DEFAULT_NEIGHBOURHOOD_MM


@dataclass
class FloodFillEffect(Effect):
    segment: str
    point: tuple[float, float, float]
    tolerance: float = DEFAULT_TOLERANCE
    neighbourhood_mm: float = DEFAULT_NEIGHBOURHOOD_MM
    key: ClassVar[str] = "flood_fill"
    title: ClassVar[str] = "Flood fill"

    def write(self, ws: Workspace, node) -> list[str]:
        name = ws.segment_name(self.segment)
        flood_fill(
            ws.session,
            node,
            ws.volume,
            name,
            self.point,
            self.tolerance,
            self.neighbourhood_mm,
            options=ws.edit_options(),
        )
        return [self.segment]


def flood_fill_ui(bound: BoundState[FloodFillState], app: SegTruthWebApp) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    html.Div(
        "Click in a slice view (or type a point): fills the selected segment from there.", classes="text-body-2 mb-2"
    )
    point_field(bound, app, "point", "Point x, y, z (RAS mm)", "flood-point")
    with html.Div(classes="d-flex mt-2", style="gap: 6px;"):
        for field_name, label, name in (
            ("tolerance", "Intensity tolerance", "flood-tolerance"),
            ("neighbourhood_mm", "Neighbourhood (mm)", "flood-neighbourhood"),
        ):
            v.VTextField(
                v_model=(bound.name(field_name),),
                label=label,
                type="number",
                density="compact",
                hide_details=True,
                raw_attrs=testid(name),
            )


def _settings(state: FloodFillState, app: SegTruthWebApp) -> tuple:
    (point,) = parse_points(state.point)[:1]
    return (
        app.ws.selected_segment(),
        tuple(point),
        number(state.tolerance, "Intensity tolerance"),
        number(state.neighbourhood_mm, "Neighbourhood"),
    )


SPEC = EffectSpec(
    key="flood_fill",
    title="Flood fill",
    icon="mdi-format-color-fill",
    prefix="st_flood",
    state_type=FloodFillState,
    ui=flood_fill_ui,
    settings=_settings,
    make=lambda settings, app: FloodFillEffect(*settings),
    on_case=lambda bound, app: bound.set(point=volume_centre(app.ws)),
    view_input=ViewInput("point"),
)
