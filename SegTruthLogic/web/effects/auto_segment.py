"""Auto-segment: a catalog model (or a model folder on the server) on the case's image."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ...core.errors import Cancelled, SegTruthError
from ...core.progress import CancelToken, ProgressCallback, report
from ...inference.jobs import AutoSegmentRequest
from ...scene.segments import LABEL_VALUE_TAG, segment_ids
from ..testids import testid
from ..workspace import Workspace
from .base import BoundState, Effect, EffectSpec, Work

if TYPE_CHECKING:
    from ..app import SegTruthWebApp


@dataclass
class AutoSegmentState:
    model: str | None = None
    models: list = field(default_factory=list)  # {title, value} items, read from the catalog when the tool opens
    device: str = "auto"


@dataclass
class AutoSegmentEffect(Effect):
    """A catalog model (or a model folder) on the case's image, through an ``inference.jobs.JobRunner``.

    The runner's job carries progress and cancel; its result stays with the effect, so a refreshed preview
    or Apply never runs the model twice. Segments the model adds take the model's label values unless the
    case already uses them; then they take the next free value (the case's label table wins).
    """

    runner: Any
    model: str
    device: str = "auto"
    key: ClassVar[str] = "auto_segment"
    title: ClassVar[str] = "Auto-segment"
    notices: list[str] = field(default_factory=list, init=False)
    _handle: Any = field(default=None, init=False, repr=False)
    _done: bool = field(default=False, init=False, repr=False)

    def start(self, ws: Workspace) -> Work | None:
        if not self.model:
            raise SegTruthError("Choose a model first.")
        if self._done:
            return None
        handle = self.runner.start(AutoSegmentRequest(ws.volume, self.model, self.device))
        self._handle = handle

        def work(progress: ProgressCallback | None, cancel: CancelToken) -> None:
            while not handle.done:
                if cancel.cancelled:
                    handle.cancel()
                fraction, message = handle.progress()
                report(progress, fraction, message)
                time.sleep(0.05)
            if cancel.cancelled:
                self._handle = None
                raise Cancelled("auto-segmentation")
            self._done = True

        return work

    def write(self, ws: Workspace, node) -> list[str]:
        if self._handle is None or not self._done:
            raise SegTruthError("The model has not run yet.")
        before = set(segment_ids(node))
        outcome = self._handle.finish(node)
        self.notices = list(outcome.notices)
        names = [label.name for label in outcome.table]
        segmentation = node.GetSegmentation()
        ids = [sid for sid in (segmentation.GetSegmentIdBySegmentName(name) for name in names) if sid]
        case_table = ws.label_table()
        taken = {label.value for label in case_table}
        for sid in ids:
            segment = segmentation.GetSegment(sid)
            if sid in before:  # the case's own segment keeps the value the case gives it
                segment.SetTag(LABEL_VALUE_TAG, str(case_table.by_name(segment.GetName()).value))  # type: ignore[union-attr]
                continue
            value = outcome.table.by_name(segment.GetName()).value
            if value in taken:
                value = max(taken | {0}) + 1
                segment.SetTag(LABEL_VALUE_TAG, str(value))
            taken.add(value)
        return ids

    def summary(self) -> str:
        return f"Auto-segment: {self.model!r} finished; review the preview and apply it."


def auto_segment_ui(bound: BoundState[AutoSegmentState], app: SegTruthWebApp) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    html.Div("A catalog model (or a model folder on the server) on this image.", classes="text-body-2 mb-2")
    v.VCombobox(
        v_model=(bound.name("model"),),
        items=(bound.name("models"),),
        label="Model",
        density="compact",
        hide_details=True,
        raw_attrs=testid("auto-model"),
    )
    v.VSelect(
        v_model=(bound.name("device"),),
        items=("['auto', 'cpu', 'cuda']",),
        label="Device (on the server)",
        density="compact",
        hide_details=True,
        classes="mt-2",
        raw_attrs=testid("auto-device"),
    )


def _model_choices(app: SegTruthWebApp) -> list[dict[str, str]]:
    """The catalog's models; reading it imports PyTorch, so only when the tool is opened."""
    try:
        from ...inference.catalog import describe_models

        return [{"title": f"{row['name']} ({row['available']})", "value": row["name"]} for row in describe_models()]
    except ImportError as error:
        app.say(f"Auto-segment needs {error.name or 'PyTorch'}: pip install 'segtruth[inference]'.", True)
    except SegTruthError as error:
        app.say(str(error), True)
    return []


def _on_select(bound: BoundState[AutoSegmentState], app: SegTruthWebApp) -> None:
    state = bound.get()
    if not state.models:
        models = _model_choices(app)
        bound.set(models=models)
        if models and not state.model:
            bound.set(model=models[0]["value"])


SPEC = EffectSpec(
    key="auto_segment",
    title="Auto-segment",
    icon="mdi-robot",
    prefix="st_auto",
    state_type=AutoSegmentState,
    ui=auto_segment_ui,
    settings=lambda state, app: (state.model or "", state.device),
    make=lambda settings, app: AutoSegmentEffect(app.auto_runner(), *settings),
    initial=lambda app: AutoSegmentState(device=app.device),
    on_select=_on_select,
)
