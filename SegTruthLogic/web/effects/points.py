"""RAS points in the tools' settings: typed as ``x, y, z; x, y, z``, clicked or drawn in a slice view, or the
slice views' crossing point. Flood fill and Local threshold take points, Scissors an outline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...core.errors import SegTruthError
from ...core.geometry import Grid
from ..testids import testid
from ..view_trace import ViewTrace
from ..workspace import Workspace
from .base import BoundState, ViewInput, number

if TYPE_CHECKING:
    from ..app import SegTruthWebApp

OUTLINE_STEP_MM = 0.5  # an outline drawn in a view keeps points at least this far apart


def format_points(points, decimals: int = 2) -> str:
    """RAS points as a point field holds them (to 0.01 mm unless told)."""
    return "; ".join(", ".join(f"{v:.{decimals}f}" for v in point) for point in points)


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
    return format_points([centre[:3]], decimals=1)


def slice_point(app: SegTruthWebApp) -> str:
    """Where the three slice views cross (their slice offsets), as a point field holds it."""
    views = {view.get_orientation().lower(): view for view in app._slice_views()}
    try:
        x = views["sagittal"].get_slice_value()
        y = views["coronal"].get_slice_value()
        z = views["axial"].get_slice_value()
    except (KeyError, AttributeError):
        raise SegTruthError("The slice views are not shown yet.") from None
    return format_points([(x, y, z)], decimals=1)


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


def traced_points(view_input: ViewInput, trace: ViewTrace, current: str, add: bool = False) -> str:
    """The field's new text after a click (``add``: Shift, kept with the points already there) or an outline."""
    points = trace.ras_points()
    if view_input.outline:
        kept = [points[0]]
        for point in points[1:]:
            if np.linalg.norm(point - kept[-1]) >= OUTLINE_STEP_MM:
                kept.append(point)
        if len(kept) < 3:
            raise SegTruthError("The outline is too small: drag around the area to cut.")
        return format_points(kept)
    clicked = format_points(points[:1])
    if add and view_input.adds and str(current).strip():
        return f"{str(current).strip().rstrip(';')}; {clicked}"
    return clicked
