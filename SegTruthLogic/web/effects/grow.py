"""Grow from seeds, incremental while the preview is up: more strokes only relax what they change.

The seeds and the editable area come from ``tools.grow.grow_inputs``, the function the CLI and recipes use,
and the result is written by ``tools.grow.write_grown``: the same case gives the same voxels everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ...core.progress import CancelToken, ProgressCallback
from ...scene.segments import segment_ids
from ..testids import testid
from ..workspace import Workspace
from .base import BoundState, Effect, EffectSpec, Work, names

if TYPE_CHECKING:
    from ..app import SegTruthWebApp


@dataclass
class GrowState:
    inside: str | None = None  # segment ID
    whole_image: bool = False
    auto_update: bool = True


@dataclass
class GrowEffect(Effect):
    """seeds: the seed segments (default: every segment with voxels except ``inside``). inside: grow only in
    this segment, as Slicer's editable area "inside segment" (seeds outside it are ignored; the area is fixed
    when the preview starts, so strokes added later stay incremental). whole_image: grow over the whole image
    instead of the seeds' box plus ``margin`` (Slicer's default, which needs seeds spread around the structure).
    """

    seeds: list[str] | None = None
    inside: str | None = None
    whole_image: bool = False
    margin: float = 0.15
    key: ClassVar[str] = "grow"
    title: ClassVar[str] = "Grow from seeds"
    last_update: str = field(default="", init=False)
    _cut: Any = field(default=None, init=False, repr=False)
    _inputs: Any = field(default=None, init=False, repr=False)

    def _seed_ids(self, ws: Workspace) -> list[str]:
        if self.seeds is not None:
            return [sid for sid in self.seeds if sid != self.inside]
        counts = ws.voxel_counts()
        return [sid for sid in segment_ids(ws.segmentation) if counts[sid] and sid != self.inside]

    def start(self, ws: Workspace) -> Work:
        from ...tools.grow import grow_inputs, growcut_for

        inside = ws.segment_name(self.inside) if self.inside is not None else None
        inputs = grow_inputs(
            ws.session, ws.segmentation, ws.volume, names(ws, self._seed_ids(ws)), inside_segment=inside
        )
        if self._inputs is None or inputs.ids != self._inputs.ids:
            self._cut = None  # other seed segments: start over
        else:
            inputs.allowed = self._inputs.allowed  # the area stays as the preview started
        self._cut = growcut_for(inputs, self._cut, margin=self.margin_setting)
        self._inputs = inputs
        cut = self._cut

        def work(progress: ProgressCallback | None, cancel: CancelToken) -> None:
            cut.update(inputs.seeds, progress, cancel)
            self.last_update = cut.last_update or ""

        return work

    @property
    def margin_setting(self) -> float | None:
        return None if self.whole_image else self.margin

    @property
    def area(self):
        """The editable area of the preview ((k, j, i) booleans; None: everywhere)."""
        return None if self._inputs is None else self._inputs.allowed

    def write(self, ws: Workspace, node) -> list[str]:
        from ...tools.grow import write_grown

        write_grown(ws.session, node, ws.volume, self._inputs.ids, self._cut)
        return list(self._inputs.ids)

    def summary(self) -> str:
        kind = {"full": "computed", "incremental": "updated incrementally", "unchanged": "unchanged"}
        return f"Grow from seeds: preview {kind.get(self.last_update, 'ready')}."


def grow_ui(bound: BoundState[GrowState], app: SegTruthWebApp) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    html.Div(
        "Seeds: every segment with voxels. Paint a stroke in each structure, then Preview; "
        "more strokes update the preview incrementally.",
        classes="text-body-2 mb-2",
    )
    v.VSelect(
        v_model=(bound.name("inside"),),
        items=("st_segments",),
        label="Grow only inside segment",
        clearable=True,
        density="compact",
        hide_details=True,
        raw_attrs=testid("grow-inside"),
    )
    for field_name, label, name in (
        ("whole_image", "Whole image (else the seeds' box + 15 %)", "grow-whole-image"),
        ("auto_update", "Update the preview after each stroke", "grow-auto-update"),
    ):
        v.VCheckbox(
            v_model=(bound.name(field_name),), label=label, density="compact", hide_details=True, raw_attrs=testid(name)
        )


SPEC = EffectSpec(
    key="grow",
    title="Grow from seeds",
    icon="mdi-sprout",
    prefix="st_grow",
    state_type=GrowState,
    ui=grow_ui,
    settings=lambda state, app: (state.inside or None, bool(state.whole_image)),
    make=lambda settings, app: GrowEffect(inside=settings[0], whole_image=settings[1]),
    follows_edits=lambda state: bool(state.auto_update),
)
