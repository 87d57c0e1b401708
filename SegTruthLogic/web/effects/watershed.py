"""Watershed: the visible segments with voxels grow as basins of the image's gradient (SegTruth's
``watershed``, SegmentEditorExtraEffects' Watershed). The flooding runs in a worker with progress and cancel."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from slicer.util import arrayFromVolume

from ...core.geometry import Grid
from ...core.progress import CancelToken, ProgressCallback
from ...tools.watershed import DEFAULT_OBJECT_SCALE_MM, seed_labels, watershed_labels, write_labels
from ..testids import testid
from ..workspace import Workspace
from .base import BoundState, Effect, EffectSpec, Work, names

if TYPE_CHECKING:
    from ..app import SegTruthWebApp


@dataclass
class WatershedState:
    object_scale_mm: float | str = DEFAULT_OBJECT_SCALE_MM


@dataclass
class WatershedEffect(Effect):
    object_scale_mm: float = DEFAULT_OBJECT_SCALE_MM
    key: ClassVar[str] = "watershed"
    title: ClassVar[str] = "Watershed"
    _ids: list[str] = field(default_factory=list, init=False, repr=False)
    _basins: Any = field(default=None, init=False, repr=False)

    def start(self, ws: Workspace) -> Work:
        markers, ids = seed_labels(ws.session, ws.segmentation, ws.volume)
        values, spacing = arrayFromVolume(ws.volume), Grid.from_node(ws.volume).spacing
        self._ids, self._basins = names(ws, ids), None

        def work(progress: ProgressCallback | None, cancel: CancelToken) -> None:
            self._basins = watershed_labels(values, markers, spacing, self.object_scale_mm, progress, cancel)

        return work

    def write(self, ws: Workspace, node) -> list[str]:
        from ...scene.segments import find_segment

        ids = [find_segment(node, name) for name in self._ids]
        write_labels(ws.session, node, ws.volume, ids, self._basins, ws.edit_options())
        return ids


def watershed_ui(bound: BoundState[WatershedState], app: SegTruthWebApp) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    html.Div(
        "Seeds: every visible segment with voxels. Paint a stroke in each structure and one in the background.",
        classes="text-body-2 mb-2",
    )
    v.VTextField(
        v_model=(bound.name("object_scale_mm"),),
        label="Object scale (mm)",
        type="number",
        density="compact",
        hide_details=True,
        raw_attrs=testid("watershed-scale"),
    )


def _settings(state: WatershedState, app: SegTruthWebApp) -> tuple:
    from .base import number

    return (number(state.object_scale_mm, "Object scale"),)


SPEC = EffectSpec(
    key="watershed",
    title="Watershed",
    icon="mdi-water",
    prefix="st_ws",
    state_type=WatershedState,
    ui=watershed_ui,
    settings=_settings,
    make=lambda settings, app: WatershedEffect(*settings),
)
