"""Local threshold: the structure at a point within a threshold range goes into the selected segment
(SegTruth's ``local_threshold``, SegmentEditorExtraEffects' Local threshold). Leave the range empty to take it
from the values around the point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from slicer.util import arrayFromVolume

from ...core.geometry import Grid
from ...core.progress import CancelToken, ProgressCallback
from ...tools.local_threshold import ALGORITHMS, add_region, clicks_and_range, local_threshold_region
from ..testids import testid
from ..workspace import Workspace
from .base import BoundState, Effect, EffectSpec, ViewInput, Work, number
from .points import parse_points, point_field, volume_centre

if TYPE_CHECKING:
    from ..app import SegTruthWebApp


@dataclass
class LocalThresholdState:
    points: str = ""
    low: float | str = ""
    high: float | str = ""
    minimum_diameter_mm: float | str = 3.0
    feature_size_mm: float | str = 3.0
    algorithm: str = "masking"


@dataclass
class LocalThresholdEffect(Effect):
    segment: str
    points: tuple[tuple[float, float, float], ...]
    low: float | None = None
    high: float | None = None
    minimum_diameter_mm: float = 3.0
    feature_size_mm: float = 3.0
    algorithm: str = "masking"
    key: ClassVar[str] = "local_threshold"
    title: ClassVar[str] = "Local threshold"

    def start(self, ws: Workspace) -> Work:
        """The clicks and the range are read here (main thread); the region is found in the worker."""
        clicks, low, high = clicks_and_range(ws.volume, [list(p) for p in self.points], self.low, self.high)
        values, grid = arrayFromVolume(ws.volume), Grid.from_node(ws.volume)
        self._range, self._region = (low, high), None

        def work(progress: ProgressCallback | None, cancel: CancelToken) -> None:
            self._region = local_threshold_region(
                values,
                grid,
                clicks,
                low,
                high,
                self.minimum_diameter_mm,
                self.feature_size_mm,
                self.algorithm,  # type: ignore[arg-type]
                progress,
                cancel,
            )

        return work

    def write(self, ws: Workspace, node) -> list[str]:
        add_region(ws.session, node, ws.volume, self.segment, self._region, *self._range, ws.edit_options())  # type: ignore[arg-type]
        return [self.segment]


def local_threshold_ui(bound: BoundState[LocalThresholdState], app: SegTruthWebApp) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    html.Div(
        "Click the structure in a slice view (Shift+click adds a point), or type x, y, z; x, y, z ...: it is "
        "added within the range; an empty range is taken around the first point.",
        classes="text-body-2 mb-2",
    )
    point_field(bound, app, "points", "Points (RAS mm)", "local-points")
    with html.Div(classes="d-flex mt-2", style="gap: 6px;"):
        for field_name, label, name in (
            ("low", "Low", "local-low"),
            ("high", "High", "local-high"),
            ("minimum_diameter_mm", "Min. diameter (mm)", "local-diameter"),
        ):
            v.VTextField(
                v_model=(bound.name(field_name),),
                label=label,
                type="number",
                density="compact",
                hide_details=True,
                raw_attrs=testid(name),
            )
    with html.Div(classes="d-flex mt-2", style="gap: 6px;"):
        v.VSelect(
            v_model=(bound.name("algorithm"),),
            items=(list(ALGORITHMS),),
            label="Refinement",
            density="compact",
            hide_details=True,
            raw_attrs=testid("local-algorithm"),
        )
        v.VTextField(
            v_if=f"{bound.name('algorithm')} === 'watershed'",
            v_model=(bound.name("feature_size_mm"),),
            label="Feature size (mm)",
            type="number",
            density="compact",
            hide_details=True,
            raw_attrs=testid("local-feature"),
        )


def _optional(value, name: str) -> float | None:
    return None if value in ("", None) else number(value, name)


def _settings(state: LocalThresholdState, app: SegTruthWebApp) -> tuple:
    return (
        app.ws.selected_segment(),
        tuple(tuple(p) for p in parse_points(state.points, "Points")),
        _optional(state.low, "Low"),
        _optional(state.high, "High"),
        number(state.minimum_diameter_mm, "Minimum diameter"),
        number(state.feature_size_mm, "Feature size"),
        state.algorithm,
    )


SPEC = EffectSpec(
    key="local_threshold",
    title="Local threshold",
    icon="mdi-target",
    prefix="st_local",
    state_type=LocalThresholdState,
    ui=local_threshold_ui,
    settings=_settings,
    make=lambda settings, app: LocalThresholdEffect(*settings),
    on_case=lambda bound, app: bound.set(points=volume_centre(app.ws)),
    view_input=ViewInput("points", adds=True),
)
