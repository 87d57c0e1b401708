"""Fill between slices: interpolate segments drawn on a few slices (all segments with voxels, or the ones given)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from ...core.errors import SegTruthError
from ...scene.segments import segment_ids
from ...tools.fill_between import fill_between_slices
from ..testids import testid
from ..workspace import Workspace
from .base import BoundState, Effect, EffectSpec, names

if TYPE_CHECKING:
    from ..app import SegTruthWebApp


@dataclass
class FillBetweenState:
    axis: Literal["auto", "axial", "coronal", "sagittal"] = "auto"


@dataclass
class FillBetweenEffect(Effect):
    segments: list[str] | None = None
    axis: str | None = None
    key: ClassVar[str] = "fill_between"
    title: ClassVar[str] = "Fill between slices"

    def write(self, ws: Workspace, node) -> list[str]:
        ids = self.segments
        if ids is None:
            counts = ws.voxel_counts()
            ids = [sid for sid in segment_ids(ws.segmentation) if counts[sid]]
        if not ids:
            raise SegTruthError("Fill between slices needs a segment drawn on some slices.")
        return fill_between_slices(ws.session, node, ws.volume, names(ws, ids), self.axis, ws.edit_options())


def fill_between_ui(bound: BoundState[FillBetweenState], app: SegTruthWebApp) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    html.Div("Interpolates every segment drawn on a few slices.", classes="text-body-2 mb-2")
    v.VSelect(
        v_model=(bound.name("axis"),),
        items=("['auto', 'axial', 'coronal', 'sagittal']",),
        label="Slices drawn in",
        density="compact",
        hide_details=True,
        raw_attrs=testid("fill-axis"),
    )


SPEC = EffectSpec(
    key="fill_between",
    title="Fill between slices",
    icon="mdi-layers-triple",
    prefix="st_fill",
    state_type=FillBetweenState,
    ui=fill_between_ui,
    settings=lambda state, app: (None if state.axis == "auto" else state.axis,),
    make=lambda settings, app: FillBetweenEffect(axis=settings[0]),
)
