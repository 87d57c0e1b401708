"""Islands: keep the largest island, remove islands under a size, or split islands into segments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from ...core.errors import SegTruthError
from ...tools import islands
from ..testids import testid
from ..workspace import Workspace
from .base import BoundState, Effect, EffectSpec, number

if TYPE_CHECKING:
    from ..app import SegTruthWebApp

IslandMode = Literal["keep_largest", "remove_small", "split"]
MODES = [
    {"title": "Keep largest island", "value": "keep_largest"},
    {"title": "Remove small islands", "value": "remove_small"},
    {"title": "Split islands into segments", "value": "split"},
]


@dataclass
class IslandsState:
    mode: IslandMode = "keep_largest"
    min_voxels: int | str = 1000  # a text field


@dataclass
class IslandsEffect(Effect):
    segment: str
    mode: IslandMode = "keep_largest"
    min_voxels: int = 1000
    key: ClassVar[str] = "islands"
    title: ClassVar[str] = "Islands"

    def write(self, ws: Workspace, node) -> list[str]:
        name, options = ws.segment_name(self.segment), ws.edit_options()
        if self.mode == "keep_largest":
            islands.keep_largest_island(ws.session, node, ws.volume, name, options)
        elif self.mode == "remove_small":
            islands.remove_small_islands(ws.session, node, ws.volume, name, min_voxels=self.min_voxels, options=options)
        elif self.mode == "split":
            return islands.split_islands(ws.session, node, ws.volume, name, options=options)
        else:
            raise SegTruthError(f"Unknown islands mode {self.mode!r}; use keep_largest, remove_small or split.")
        return [self.segment]


def islands_ui(bound: BoundState[IslandsState], app: SegTruthWebApp) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    html.Div("On the selected segment.", classes="text-body-2 mb-2")
    v.VSelect(
        v_model=(bound.name("mode"),),
        items=(MODES,),
        density="compact",
        hide_details=True,
        raw_attrs=testid("islands-mode"),
    )
    v.VTextField(
        v_if=f"{bound.name('mode')} === 'remove_small'",
        v_model=(bound.name("min_voxels"),),
        label="Minimum size (voxels)",
        type="number",
        density="compact",
        hide_details=True,
        classes="mt-2",
        raw_attrs=testid("islands-min-size"),
    )


def _settings(state: IslandsState, app: SegTruthWebApp) -> tuple:
    return app.ws.selected_segment(), state.mode, int(number(state.min_voxels, "Minimum size"))


SPEC = EffectSpec(
    key="islands",
    title="Islands",
    icon="mdi-scatter-plot",
    prefix="st_islands",
    state_type=IslandsState,
    ui=islands_ui,
    settings=_settings,
    make=lambda settings, app: IslandsEffect(*settings),
)
