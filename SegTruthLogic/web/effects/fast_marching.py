"""Fast Marching: the selected segment's voxels march over the image; the segment volume (a fraction of the
march) slides along the arrival order without marching again (SegTruth's ``fast_marching``,
SegmentEditorExtraEffects' Fast Marching).

The march runs in a worker with progress and cancel and is kept in a ``MarchCache`` per workspace: another
segment volume makes a new effect (its settings changed) that finds the march there and only rewrites the
segment; other seeds, another segment, another maximum volume or other masking march again.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ...core.progress import CancelToken, ProgressCallback
from ...tools import fast_marching as fm
from ..testids import testid
from ..workspace import Workspace
from .base import BoundState, Effect, EffectSpec, Work, number

if TYPE_CHECKING:
    from ..app import SegTruthWebApp


@dataclass
class MarchCache:
    """The last march of a workspace and what it was made from."""

    key: tuple | None = None
    result: fm.FastMarchingResult | None = None


_CACHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cache_for(ws: Workspace) -> MarchCache:
    if ws not in _CACHES:
        _CACHES[ws] = MarchCache()
    return _CACHES[ws]


@dataclass
class FastMarchingState:
    max_volume_percent: float | str = fm.DEFAULT_MAX_VOLUME_PERCENT
    volume_fraction: float = 1.0  # the segment-volume slider


@dataclass
class FastMarchingEffect(Effect):
    segment: str
    max_volume_percent: float = fm.DEFAULT_MAX_VOLUME_PERCENT
    volume_fraction: float = 1.0
    key: ClassVar[str] = "fast_marching"
    title: ClassVar[str] = "Fast Marching"
    marched: bool = field(default=False, init=False)
    _result: Any = field(default=None, init=False, repr=False)

    def _key(self, ws: Workspace) -> tuple:
        from ...scene.segments import segment_mask

        seeds = segment_mask(ws.session, ws.segmentation, self.segment, ws.volume)
        return (
            self.segment,
            self.max_volume_percent,
            hashlib.sha1(seeds.tobytes()).hexdigest(),
            ws.edit_options(),
            ws.volume.GetImageData().GetMTime(),
        )

    def start(self, ws: Workspace) -> Work | None:
        cache, key = cache_for(ws), self._key(ws)
        if cache.key == key and cache.result is not None:
            self._result, self.marched = cache.result, False
            return None
        # the seeds, speed and masking are read here (MRML, main thread); the march itself touches no node
        inputs = fm.march_inputs(
            ws.session,
            ws.segmentation,
            ws.volume,
            ws.segment_name(self.segment),
            self.max_volume_percent,
            options=ws.edit_options(),
        )

        def work(progress: ProgressCallback | None, cancel: CancelToken) -> None:
            self._result = inputs.run(progress, cancel)
            cache.key, cache.result, self.marched = key, self._result, True

        return work

    def write(self, ws: Workspace, node) -> list[str]:
        result = self._result
        n = result.voxels_for_fraction(self.volume_fraction)
        fm.set_marched_volume(ws.session, node, ws.volume, ws.segment_name(self.segment), result, n, ws.edit_options())
        return [self.segment]

    def summary(self) -> str:
        result = self._result
        kept = result.voxels_for_fraction(self.volume_fraction) if result is not None else 0
        how = "marched" if self.marched else "volume changed, no new march"
        return f"Fast Marching: {how}; {kept} of {result.voxels if result else 0} voxels."


def fast_marching_ui(bound: BoundState[FastMarchingState], app: SegTruthWebApp) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    html.Div(
        "Paint seeds into the selected segment, then Preview; slide the volume without marching again.",
        classes="text-body-2 mb-2",
    )
    v.VTextField(
        v_model=(bound.name("max_volume_percent"),),
        label="Maximum volume (% of the image)",
        type="number",
        density="compact",
        hide_details=True,
        raw_attrs=testid("fm-max-volume"),
    )
    v.VSlider(
        v_model=(bound.name("volume_fraction"),),
        min=0,
        max=1,
        step=0.01,
        label="Segment volume",
        density="compact",
        hide_details=True,
        classes="mt-2",
        raw_attrs=testid("fm-volume"),
    )


def _settings(state: FastMarchingState, app: SegTruthWebApp) -> tuple:
    return (
        app.ws.selected_segment(),
        number(state.max_volume_percent, "Maximum volume"),
        number(state.volume_fraction, "Segment volume"),
    )


SPEC = EffectSpec(
    key="fast_marching",
    title="Fast Marching",
    icon="mdi-run-fast",
    prefix="st_fm",
    state_type=FastMarchingState,
    ui=fast_marching_ui,
    settings=_settings,
    make=lambda settings, app: FastMarchingEffect(*settings),
)
