"""Flood fill: the voxels connected to a point within an intensity tolerance go into the selected segment
(SegTruth's ``flood_fill``, SegmentEditorExtraEffects' Flood filling).

The point is typed as ``x, y, z`` (RAS mm) or taken from the slice views' crossing point (the button).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ...core.errors import SegTruthError
from ...core.geometry import Grid
from ...tools.flood_fill import DEFAULT_NEIGHBOURHOOD_MM, DEFAULT_TOLERANCE, flood_fill
from ..testids import testid
from ..workspace import Workspace
from .base import BoundState, Effect, EffectSpec, number

if TYPE_CHECKING:
    from ..app import SegTruthWebApp


def parse_points(text: str, name: str = "Point") -> list[list[float]]:
    """``x, y, z`` points (RAS mm) separated by ``;``, as the text fields hold them."""
    points = []
    for part in str(text).split(";"):
        if not part.strip():
            continue
        values = part.replace(",", " ").split()
        if len(values) != 3:
            raise SegTruthError(f"{name} must be x, y, z in mm (RAS), not {part.strip()!r}.")
        points.append([number(v, name) for v in values])
    if not points:
        raise SegTruthError(f"{name} is empty: type x, y, z in mm (RAS).")
    return points


def volume_centre(ws: Workspace) -> str:
    """The RAS centre of the case's volume, as a point field holds it."""
    grid = Grid.from_node(ws.volume)
    centre = grid.ijk_to_ras @ np.append((np.array(grid.size) - 1) / 2.0, 1.0)
    return ", ".join(f"{v:.1f}" for v in centre[:3])


def slice_point(app: SegTruthWebApp) -> str:
    """Where the three slice views cross (their slice offsets), as a point field holds it."""
    views = {view.get_orientation().lower(): view for view in app._slice_views()}
    try:
        x = views["sagittal"].get_slice_value()
        y = views["coronal"].get_slice_value()
        z = views["axial"].get_slice_value()
    except (KeyError, AttributeError):
        raise SegTruthError("The slice views are not shown yet.") from None
    return f"{x:.1f}, {y:.1f}, {z:.1f}"


def point_field(bound: BoundState, app: SegTruthWebApp, field_name: str, label: str, test_name: str) -> None:
    """A text field for RAS points and a button that fills in the slice views' crossing point."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    with html.Div(classes="d-flex", style="gap: 6px;"):
        v.VTextField(
            v_model=(bound.name(field_name),),
            label=label,
            density="compact",
            hide_details=True,
            raw_attrs=testid(test_name),
        )
        v.VBtn(
            "Slices",
            size="small",
            variant="text",
            click=lambda: app.guard(lambda: bound.set(**{field_name: slice_point(app)})),
            raw_attrs=testid(f"{test_name}-slices"),
        )


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

    html.Div("Fills the selected segment from a point.", classes="text-body-2 mb-2")
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
)
