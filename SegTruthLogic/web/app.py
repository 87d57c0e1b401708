"""The web app: trame-slicer's views and segment editor with SegTruth's cases, label table, tools and Save.

Layout: a case list, the segment list (the label table: names, values, colors, voxel counts) and SegTruth's
tools on the left (tab "SegTruth"), trame-slicer's full segment editor next to it (tab "Editor": paint,
erase, draw, scissors, threshold, islands, logical operators, smoothing, masking settings), the slice views
in the middle; 3D is off until asked for (volume rendering costs about 2 s a frame on a CPU and blocks
edits). Buttons carry ``data-testid`` attributes the browser tests rely on: keep them stable.

One server process serves one person: every tab shares the case, the segment list and the undo history.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..core.errors import Cancelled, SegTruthError
from ..core.jobs import Job, ThreadJob
from ..core.labels import LabelTable
from ..core.progress import CancelToken
from .actions import Action, ActionQueue
from .brush import Stroke, paint
from .cases import WebCase
from .effects import BY_KEY, EFFECTS, BoundState, Effect, EffectSpec, Previewer
from .effects.points import format_points, traced_points
from .learning import DEFAULT_MINUTES, ProjectLearning, rank_note
from .panel import build_panel
from .testids import testid
from .view_trace import ViewTrace
from .views import PRESET_TITLES, is_ct, preset_window, set_window_level, view_geometry, window_level
from .workspace import UNDO_LIMIT, Workspace, slug

log = logging.getLogger(__name__)

SEGTRUTH_TOOLS = tuple(spec.key for spec in EFFECTS)
EDITOR_TOOLS = ("paint", "erase")
LAYOUT_SLICES, LAYOUT_AXIAL, LAYOUT_3D = "slices", "axial", "slices3d"
REFRESH_DELAY_S = 0.15  # segment list and grow preview follow the editor's paint strokes after this pause
PROGRESS_PERIOD_S = 0.2  # a running effect's progress reaches the page this often
STATIC = Path(__file__).with_name("static")
BRUSH_MM = 10.0  # default brush diameter
STILL_QUALITY = 90  # trame-rca's still JPEG quality
PREVIEW_FILL = 0.3  # a preview's fill opacity: the anatomy under it stays visible


def _layouts():
    from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

    axial = ViewLayoutDefinition.axial_view()
    coronal = ViewLayoutDefinition.coronal_view()
    sagittal = ViewLayoutDefinition.sagittal_view()
    threed = ViewLayoutDefinition.threed_view()
    side = Layout(LayoutDirection.Vertical, [coronal, sagittal])
    return {
        LAYOUT_SLICES: Layout(LayoutDirection.Horizontal, [axial, side], flex_sizes=["2", "1"]),
        LAYOUT_AXIAL: Layout(LayoutDirection.Vertical, [axial]),
        LAYOUT_3D: Layout(
            LayoutDirection.Horizontal,
            [axial, Layout(LayoutDirection.Vertical, [threed, coronal, sagittal])],
            flex_sizes=["2", "1"],
        ),
    }


class SegTruthWebApp:
    """The trame server, trame-slicer's core and editor panel, and SegTruth's workspace on one scene."""

    def __init__(
        self,
        cases: list[WebCase],
        table: LabelTable | None = None,
        server=None,
        runner=None,
        device: str = "auto",
        project: Path | None = None,
    ) -> None:
        from trame.app import get_server
        from trame_slicer import module as trame_slicer_module
        from trame_slicer.app.logic import SegmentEditorLogic
        from trame_slicer.core import LayoutManager, SlicerApp
        from trame_slicer.rca_view import register_rca_factories

        if not cases:
            raise SegTruthError("No cases to serve.")
        ids = [case.case for case in cases]
        duplicates = sorted({case for case in ids if ids.count(case) > 1})
        if duplicates:
            raise SegTruthError(f"Case ids {duplicates} are listed more than once; give every case its own id.")
        self.server = get_server(server, client_type="vue3")
        self.server.enable_module(trame_slicer_module)
        self.server.enable_module({"serve": {"__segtruth": str(STATIC)}, "scripts": ["__segtruth/segtruth.js"]})
        self.state, self.ctrl = self.server.state, self.server.controller
        self.cases = {case.case: case for case in cases}
        self.device = device
        # The project's model and its training files: in the served folder (default: the first case's save folder).
        self.learning = ProjectLearning(cases, project or cases[0].seg_output.parent)
        self._learning_job: Job | None = None
        self.learning_task: asyncio.Task | None = None

        self.slicer_app = SlicerApp()
        # One JPEG quality: trame-rca renders a view twice (interactive, then still) when the two differ, and
        # rendering in the server's loop is what delays the next action.
        register_rca_factories(
            self.slicer_app.view_manager,
            self.server,
            slice_view_ui_f=self._slice_view_ui,
            interactive_quality=STILL_QUALITY,
        )
        self.editor_logic = SegmentEditorLogic(self.server, self.slicer_app)  # its undo stack is the one used
        self.layout_manager = LayoutManager(self.slicer_app.scene, self.slicer_app.view_manager, self.server)
        self.layout_manager.register_layout_dict(_layouts(), lazy_initialization=True)
        # Views are made outside any UI block (else their widgets land in it); the 3D view only when asked for.
        self.layout_manager.create_layout_views_if_needed(LAYOUT_SLICES)
        self.layout_manager.set_layout(LAYOUT_SLICES)

        self.ws = Workspace(self.slicer_app, table)
        self.ws.editor.undo_stack.set_undo_limit(UNDO_LIMIT)  # trame-slicer keeps 5: a stroke is one step
        self.previewer = Previewer(self.ws)
        self._runner = runner
        self._effect: Effect | None = None
        self._effect_key: tuple | None = None
        self._token: CancelToken | None = None
        self._refresh_task: asyncio.Task | None = None
        self._dirty = False
        self.actions = ActionQueue()
        self._wake: asyncio.Event | None = None
        self._consumer: asyncio.Task | None = None
        self._views_pending = False
        self.handlers = self._action_handlers()

        self._init_state()
        self.tool_states: dict[str, BoundState] = {
            spec.key: BoundState(self.state, spec.prefix, spec.state_type, spec.initial(self) if spec.initial else None)
            for spec in EFFECTS
        }  # each tool's settings, typed (see its module in .effects)
        self._build_ui()
        editor = self.ws.editor
        editor.segmentation_modified.connect(self._on_segmentation_modified)
        editor.active_segment_id_changed.connect(self._on_active_segment_changed)
        editor.active_effect_name_changed.connect(self._on_editor_effect_changed)
        for signal in editor.undo_stack.signals():
            signal.connect(self._on_undo_changed)
        self.ctrl.on_client_connected.add(self._fit_views_when_sized)
        self.server.trigger("st_action")(self.on_action)
        for view in self._slice_views():
            view.get_view_node().AddObserver("ModifiedEvent", self._on_view_modified)
        self.open_case(next((case for case in cases if not case.problem), cases[0]).case)

    # -- state ---------------------------------------------------------------------------------------------
    def _init_state(self) -> None:
        s = self.state
        s.trame__title = "SegTruth"
        s.st_cases = [
            {"id": case.case, "label": case.case, "key": slug(case.case), "problem": case.problem or ""}
            for case in self.cases.values()
        ]
        s.st_case = ""
        s.st_case_info = ""
        s.st_rows = []
        s.st_selected = ""
        s.st_segments = []  # {title, value} items for segment pickers
        s.st_new_name = ""
        s.st_tool = ""
        # what a click or a drag in a slice view gives each tool that takes them (segtruth.js reads it)
        s.st_view_inputs = {
            spec.key: "outline" if spec.view_input.outline else "click" for spec in EFFECTS if spec.view_input
        }
        s.st_busy = False
        s.st_progress = 0
        s.st_progress_text = ""
        s.st_preview = False
        s.st_status = ""
        s.st_error = False
        s.st_can_undo = s.st_can_redo = False
        s.st_show3d = False
        s.st_saved = []
        s.st_tab = "segtruth"
        s.st_views_fitted = False
        s.st_applied = {}  # tab id -> the last of its actions applied
        s.st_views = {}  # slice view geometry (views.view_geometry), for the brush and the view labels
        s.st_wl = {"window": 400.0, "level": 40.0, "scale": 1.0}
        s.st_wl_preset = ""
        s.st_wl_presets = []
        s.st_brush_mm = BRUSH_MM
        s.st_brush_sphere = False
        s.st_help = False
        s.st_editor_effect = ""
        s.st_preview_count = 0  # previews shown so far (the page times a grow update following a stroke)
        s.st_has_model = self.learning.has_model()
        s.st_model_info = self.learning.summary()
        s.st_train_minutes = DEFAULT_MINUTES
        s.st_train_sparse = False
        s.st_train_finetune = True
        s.st_train_dimensions = 2
        s.st_learn_busy = False
        s.st_learn_progress = 0
        s.st_learn_text = ""

    def say(self, text: str, error: bool = False) -> None:
        self.state.st_status, self.state.st_error = text, error
        (log.warning if error else log.info)("%s", text)

    # -- the ordered stream of actions ------------------------------------------------------------------------
    def _action_handlers(self) -> dict[str, Any]:
        """What each action of the page does (web/static/segtruth.js sends them; see ``actions``)."""
        return {
            "paint": lambda a: self.stroke(a, erase=False),
            "view_input": self.view_input,
            "erase": lambda a: self.stroke(a, erase=True),
            "select": lambda a: self.select_segment(str(a.get("segment", ""))),
            "add_segment": lambda a: self.add_segment(str(a.get("name", ""))),
            "delete_segment": lambda a: self.delete_segment(str(a.get("segment", ""))),
            "segment_display": self.segment_display,
            "tool": lambda a: self.set_tool(str(a.get("tool", ""))),
            "preview": lambda a: self.preview(),
            "apply": lambda a: self.apply(),
            "cancel_preview": lambda a: self.cancel_preview(),
            "undo": lambda a: self.undo(),
            "redo": lambda a: self.redo(),
            "save": lambda a: self.save(),
            "open_case": lambda a: self.open_case(str(a.get("case", ""))),
            "slice_step": lambda a: self.step_slice(str(a.get("view", "axial")), int(a.get("steps", 1))),
            "slice_to": lambda a: self.slice_to(str(a.get("view", "axial")), int(a.get("index", 0))),
            "window_level": lambda a: self.set_window_level(float(a["window"]), float(a["level"])),
            "wl_preset": lambda a: self.window_preset(str(a.get("preset", ""))),
            "show3d": lambda a: self.set_show3d(bool(a.get("show"))),
            "follow": lambda a: self._follow_edits(),
            "train": lambda a: self.train(),
            "rank": lambda a: self.rank(),
            "presegment": lambda a: self.presegment(),
        }

    def on_action(self, client: str, seq: int, kind: str, args: dict | None = None, state: dict | None = None) -> None:
        """An action from a tab: queued in the tab's order and applied by the one consumer, never here."""
        self.actions.submit(str(client), int(seq), str(kind), args if isinstance(args, dict) else {}, state or {})
        self._wake_consumer()

    def _wake_consumer(self) -> None:
        loop = asyncio.get_running_loop()
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._consumer is None or self._consumer.done():
            self._consumer = loop.create_task(self._consume())
        self._wake.set()

    async def _consume(self) -> None:
        """Apply the queued actions one at a time, in order; tell each tab how far its actions got."""
        assert self._wake is not None
        while True:
            action = self.actions.pop()
            if action is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._apply_action(action)

    async def _apply_action(self, action: Action) -> None:
        handler = self.handlers.get(action.kind)
        started = time.perf_counter()
        try:
            with self.state:
                if action.state:  # what the tab had typed or picked but not sent yet, as it was then
                    self.state.update({k: v for k, v in action.state.items() if not k.startswith("trame__")})
                if handler is None:
                    self.say(f"Unknown action {action.kind!r}; reload the page.", True)
                    result = None
                else:
                    result = handler(action.args)
            if asyncio.iscoroutine(result):
                await result
        except SegTruthError as error:
            with self.state:
                self.say(str(error), True)
        except Exception as error:  # a bug in one action must not stop the stream
            log.exception("action %s failed", action.kind)
            with self.state:
                self.say(f"{action.kind} failed ({type(error).__name__}: {error}).", True)
        finally:
            self.actions.finish(action)
            applied = time.perf_counter()
            with self.state:
                if action.client is not None:
                    self.state.st_applied = dict(self.actions.done)
                self._publish_views()
            log.debug(
                "action %s %s: waited %.3f s, applied in %.3f s, published in %.3f s",
                action.kind,
                action.seq,
                started - action.received,
                applied - started,
                time.perf_counter() - applied,
            )

    def pending_actions(self) -> int:
        return len(self.actions)

    # -- strokes ---------------------------------------------------------------------------------------------
    def stroke(self, message: dict, erase: bool = False) -> None:
        """A stroke the browser drew: painted (or erased) into the segment it was drawn for, on its slice."""
        self.ws.require_case()
        stroke = Stroke.from_message(message)
        segment = self.ws.editor.get_active_segment_id()  # picked before the stroke: actions come in order
        if not segment:
            raise SegTruthError("Select a segment to paint into first.")
        if self.previewer.active and not self._follows_edits(self.previewer.effect):  # type: ignore[arg-type]
            self.cancel_preview()
        paint(self.ws.editor, self.ws.volume, segment, stroke, erase=erase)  # the views ask for their frames
        self._follow_next()  # a stroke is one action: a preview that follows it needs no pause for more edits

    def _follow_next(self) -> None:
        """Queue the update of a preview that follows the strokes (grow from seeds), if the case changed."""
        effect = self.previewer.effect
        following = effect is not None and self._follows_edits(effect) and self.previewer.stale
        if following and not self.actions.has("follow"):  # in line with the person's actions, never beside
            self.actions.add_internal("follow")
            self._wake_consumer()

    def view_input(self, message: dict):
        """A click or an outline in a slice view for the picked tool: into its settings, then its preview."""
        self.ws.require_case()
        spec: EffectSpec | None = BY_KEY.get(self.state.st_tool)
        if spec is None or spec.view_input is None:
            raise SegTruthError(
                "The tool picked takes no clicks in the views; pick Flood fill, Local threshold or Scissors."
            )
        trace = ViewTrace.from_message(message)
        bound = self.tool_states[spec.key]
        setting = spec.view_input.setting
        current = self.state[bound.name(setting)]
        bound.set(**{setting: traced_points(spec.view_input, trace, current, add=bool(message.get("add")))})
        if spec.view_input.normal_setting:
            bound.set(**{spec.view_input.normal_setting: format_points([trace.normal()], decimals=6)})
        return self.preview()

    # -- views -----------------------------------------------------------------------------------------------
    def _slice_views(self) -> list:
        from trame_slicer.views import SliceView

        return [view for view in self.slicer_app.view_manager.get_views() if isinstance(view, SliceView)]

    def _view(self, name: str):
        for view in self._slice_views():
            if view.get_orientation().lower() == name.lower():
                return view
        raise SegTruthError(f"No {name} view.")

    def _on_view_modified(self, *_args) -> None:
        """A slice moved, zoomed or resized: publish the geometry once the current work is done."""
        if self._views_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._views_pending = True
        loop.call_soon(self._publish_views_now)

    def _publish_views_now(self) -> None:
        with self.state:
            self._publish_views()

    def _publish_views(self) -> None:
        self._views_pending = False
        volume = self.ws.volume
        views = {view.get_orientation().lower(): view_geometry(view, volume) for view in self._slice_views()}
        if views != self.state.st_views:
            self.state.st_views = views

    def step_slice(self, name: str, steps: int) -> None:
        """Move a slice view by whole slices (positive: towards S, A or L, as the view's slider).

        Only that view is rendered again: Slicer asks every slice view for a frame when one slice moves, but
        the others show nothing of it unless the slice intersections are on (then they render too). Each frame
        costs about 0.1 s of the server's loop on a CPU renderer, which every later action waits for.
        """
        view = self._view(name)
        low, high = view.get_slice_range()
        step = view.get_slice_step() or 1.0
        value = min(max(view.get_slice_value() + steps * step, low), high)
        with self._only_rendering(view):
            view.set_slice_value(value)

    @contextmanager
    def _only_rendering(self, view) -> Iterator[None]:
        """Keep the other slice views from rendering while ``view`` changes (unless they show its intersection)."""
        logic = self.slicer_app.app_logic
        if logic.GetIntersectingSlicesEnabled(logic.IntersectingSlicesVisibility):
            yield
            return
        others = [other for other in self._slice_views() if other is not view and not other.is_render_blocked]
        for other in others:
            other.set_render_blocked(True)
        try:
            yield
        finally:
            for other in others:
                other._is_render_blocked = False  # set_render_blocked(False) would ask for the frame avoided here

    def slice_to(self, name: str, index: int) -> None:
        """Show slice ``index`` (0-based, as the view's label counts from 1) of the volume in a view."""
        current = self.state.st_views.get(name.lower(), {}).get("index")
        if current is None:
            self._publish_views()
            current = self.state.st_views.get(name.lower(), {}).get("index", 0)
        view = self._view(name)
        geometry = view_geometry(view, self.ws.volume)
        self.step_slice(name, index - geometry["index"])

    def set_window_level(self, window: float, level: float, preset: str = "") -> None:
        volume = self.ws.volume
        if volume is None:
            return
        set_window_level(volume, max(window, 1e-3), level)
        window, level = window_level(volume)
        self.state.st_wl = {"window": window, "level": level, "scale": self.state.st_wl.get("scale", 1.0)}
        self.state.st_wl_preset = preset
        for view in self._slice_views():
            view.schedule_render()

    def window_preset(self, name: str) -> None:
        if name not in PRESET_TITLES:
            raise SegTruthError(f"No window preset {name!r}.")
        window, level = preset_window(name, self._values())
        self.set_window_level(window, level, preset=name)

    def _values(self):
        from slicer.util import arrayFromVolume

        return arrayFromVolume(self.ws.volume)

    def _default_window(self) -> None:
        """CT: the abdomen (soft tissue) window; other images: 1st to 99th percentile."""
        values = self._values()
        ct = is_ct(values)
        span = float(values.max() - values.min()) if values.size else 1.0
        self.state.st_wl = {"window": 1.0, "level": 0.0, "scale": max(span / 500.0, 1e-3)}  # drag: 500 px = range
        self.state.st_wl_presets = [
            {"value": key, "title": title} for key, title in PRESET_TITLES.items() if ct or key == "auto"
        ]
        self.window_preset("abdomen" if ct else "auto")

    def segment_display(self, args: dict) -> None:
        """A segment's visibility, outline-only or opacity in the slice views (the segment list's controls)."""
        self.ws.require_case()
        segment = str(args.get("segment", ""))
        self.ws.segment_name(segment)
        display = self.ws.segmentation.GetDisplayNode()  # type: ignore[union-attr]
        if "visible" in args:
            display.SetSegmentVisibility(segment, bool(args["visible"]))
        outline = display.GetSegmentOpacity2DFill(segment) == 0 if "outline" not in args else bool(args["outline"])
        if "opacity" in args:  # the segment's opacity (its outline and 3D surface; the fill too unless outlined)
            display.SetSegmentOpacity(segment, min(max(float(args["opacity"]), 0.0), 1.0))
        display.SetSegmentOpacity2DFill(segment, 0.0 if outline else display.GetSegmentOpacity2DOutline(segment))
        self._refresh_rows()
        for view in self._slice_views():
            view.schedule_render()

    # -- the case ------------------------------------------------------------------------------------------
    def open_case(self, case_id: str) -> None:
        case = self.cases.get(case_id)
        if case is None:
            self.say(f"No case {case_id!r}.", True)
            return
        if self.state.st_busy:  # the running tool still reads this case's voxels
            self.say("Wait for the running tool to finish (or stop it) before opening another case.", True)
            return
        if case.problem:  # known since the list was read: the open case stays open
            self.say(case.problem, True)
            return
        self.previewer.forget()
        self._effect = None
        self.ws.editor.deactivate_effect()
        try:
            self.ws.open_case(case, activate=self.editor_logic.on_volume_changed)
        except Exception as error:  # a bad file: one sentence on the page, and the server serves the other cases
            if isinstance(error, SegTruthError):
                message = str(error)
            else:
                log.exception("opening case %s failed", case.case)
                message = f"Case {case.case!r} could not be opened ({type(error).__name__}: {error})."
            self._show_no_case()
            self.say(message, True)
            return
        display = self.slicer_app.display_manager
        display.show_volume_in_slice_background(self.ws.volume)
        display.show_volume_in_slice_foreground(None)
        display.reset_views()
        self.state.st_case = case.case
        self._default_window()
        self._publish_views()
        for spec in EFFECTS:
            if spec.on_case is not None:
                spec.on_case(self.tool_states[spec.key], self)
        start = self.ws.loaded_from
        self.state.st_case_info = f"from {start.name}" if start else "new annotation"
        self.state.st_saved = []
        self.state.st_tool = ""
        self.state.st_preview = False
        self._refresh_rows()
        self.say(f"Opened {case.case} ({'x'.join(map(str, self.ws.volume.GetImageData().GetDimensions()))} voxels).")

    def _show_no_case(self) -> None:
        """The page after a case failed to open: no case, no segments, nothing to save or undo."""
        s = self.state
        s.st_case = s.st_case_info = s.st_selected = s.st_tool = ""
        s.st_rows, s.st_segments, s.st_saved = [], [], []
        s.st_preview = s.st_can_undo = s.st_can_redo = False
        self.slicer_app.display_manager.reset_views()

    def _refresh_rows(self) -> None:
        rows, problem = self.ws.rows()
        display = self.ws.segmentation.GetDisplayNode() if self.ws.segmentation is not None else None
        self.state.st_rows = [
            {
                **asdict(row),
                "key": slug(row.name),
                "visible": bool(display.GetSegmentVisibility(row.segment_id)) if display else True,
                "outline": bool(display.GetSegmentOpacity2DFill(row.segment_id) == 0) if display else False,
                "opacity": round(float(display.GetSegmentOpacity2DOutline(row.segment_id)), 2) if display else 1.0,
            }
            for row in rows
        ]
        self.state.st_segments = [{"title": row.name, "value": row.segment_id} for row in rows]
        self.state.st_selected = self.ws.editor.get_active_segment_id()
        if problem:
            self.say(problem, True)

    def _on_segmentation_modified(self, *_args) -> None:
        """A stroke or an edit: refresh the segment list shortly, and follow new seeds in a grow preview."""
        self._dirty = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop yet (start-up, scripts): refresh now
            self._refresh_rows()
            return
        if self._refresh_task is None or self._refresh_task.done():
            self._refresh_task = loop.create_task(self._refresh_when_quiet())

    async def _refresh_when_quiet(self) -> None:
        """Wait for a pause in the edits (a stroke sends many), then refresh; never cancelled mid-work."""
        while self._dirty:
            self._dirty = False
            await asyncio.sleep(REFRESH_DELAY_S)
            if self._dirty:
                continue
            with self.state:
                self._refresh_rows()
            self._follow_next()

    async def _follow_edits(self) -> None:
        """Recompute a preview that follows the strokes (grow from seeds), if the case changed since."""
        effect = self.previewer.effect
        if effect is not None and self._follows_edits(effect) and self.previewer.stale:
            await self._run(effect)

    def _follows_edits(self, effect: Effect) -> bool:
        """Whether the effect's preview is recomputed after each stroke (its tool says so, from its settings)."""
        spec = BY_KEY.get(effect.key)
        return (
            spec is not None and spec.follows_edits is not None and spec.follows_edits(self.tool_states[spec.key].get())
        )

    def _on_active_segment_changed(self, segment_id: str) -> None:
        self.state.st_selected = segment_id

    def _on_editor_effect_changed(self, name: str) -> None:
        """Keep the tool buttons in step with the effect active in trame-slicer's editor (either panel may pick it)."""
        from trame_slicer.segmentation import (
            SegmentationEffectErase,
            SegmentationEffectNoTool,
            SegmentationEffectPaint,
        )

        no_tool = not name or name == SegmentationEffectNoTool.get_effect_name()
        brushes = (SegmentationEffectPaint.get_effect_name(), SegmentationEffectErase.get_effect_name())
        # An effect of the Editor tab (draw, scissors, ...) takes the left button; else a drag sets window/level.
        self.state.st_editor_effect = "" if no_tool or name in brushes else name
        if no_tool:
            if self.state.st_tool in EDITOR_TOOLS:
                self.state.st_tool = ""
            return
        tools = {SegmentationEffectPaint.get_effect_name(): "paint", SegmentationEffectErase.get_effect_name(): "erase"}
        if name in tools:  # the Editor tab's paint and erase are SegTruth's brush (drawn in the page, in order)
            self.set_tool(tools[name])
            return
        if self.previewer.active:
            self.cancel_preview()
        self.state.st_tool = ""

    def _on_undo_changed(self, *_args) -> None:
        stack = self.ws.editor.undo_stack
        self.state.st_can_undo, self.state.st_can_redo = stack.can_undo(), stack.can_redo()

    # -- segments ----------------------------------------------------------------------------------------------
    def select_segment(self, segment_id: str) -> None:
        self.guard(lambda: self.ws.select(segment_id))

    def add_segment(self, name: str | None = None) -> None:
        """Add a segment called ``name`` (the name as typed, sent with the click or Enter)."""

        def add() -> None:
            self.ws.add_label(self.state.st_new_name if name is None else name)
            self.state.st_new_name = ""
            self._refresh_rows()

        self.guard(add)

    def delete_segment(self, segment_id: str) -> None:
        def delete() -> None:
            name = self.ws.segment_name(segment_id)
            self.cancel_preview()
            self.ws.remove_label(segment_id)
            self._refresh_rows()
            self.say(f"Deleted segment {name!r}.")

        self.guard(delete)

    def undo(self) -> None:
        self.cancel_preview()
        self.ws.undo()
        self._refresh_rows()

    def redo(self) -> None:
        self.cancel_preview()
        self.ws.redo()
        self._refresh_rows()

    def guard(self, action) -> Any:
        """Run ``action``; a SegTruthError becomes the status line."""
        try:
            return action()
        except SegTruthError as error:
            self.say(str(error), True)
        return None

    # -- tools -------------------------------------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        """Pick a tool: paint and erase are trame-slicer's effects in the views; the others SegTruth's effects."""
        editor = self.ws.editor
        if tool in EDITOR_TOOLS:
            # A preview that follows strokes (grow from seeds) stays: painting seeds updates it.
            effect = self.previewer.effect
            if not (self.previewer.active and effect is not None and self._follows_edits(effect)):
                self.cancel_preview()
            if not editor.get_active_segment_id():
                self.say("Select a segment to paint into first.", True)
                return
            editor.deactivate_effect()  # SegTruth's brush: drawn in the page, applied in order (see brush)
            self.state.st_tool = tool
            self.say(f"{tool.title()}: drag in a slice view (brush settings below the tools).")
            return
        self.cancel_preview()
        spec = BY_KEY.get(tool)
        self.state.st_tool = tool if spec is not None else ""
        editor.deactivate_effect()
        self.say("")
        if spec is not None and spec.on_select is not None:
            spec.on_select(self.tool_states[spec.key], self)

    def _effect_from_state(self) -> Effect:
        """The effect the panel describes; the same object while its settings stay (a grow preview stays incremental)."""
        spec: EffectSpec | None = BY_KEY.get(self.state.st_tool)
        if spec is None:
            raise SegTruthError("Choose one of SegTruth's tools first.")
        settings = spec.settings(self.tool_states[spec.key].get(), self)
        key = (spec.key, *settings)
        if self._effect is not None and key == self._effect_key:
            return self._effect
        effect = spec.make(settings, self)
        self._effect, self._effect_key = effect, key
        return effect

    def auto_runner(self):
        """The auto-segment job runner (made on first use: it loads the inference stack)."""
        if self._runner is None:
            from ..inference.jobs import InferenceThreadRunner

            self._runner = InferenceThreadRunner(self.ws.session)
        return self._runner

    async def preview(self) -> None:
        try:
            effect = self._effect_from_state()
        except SegTruthError as error:
            self.say(str(error), True)
            return
        await self._run(effect)

    async def _run(self, effect: Effect) -> None:
        """Run an effect's heavy part in a worker thread (progress, cancel), then show its preview."""
        if self.state.st_busy:
            return
        with self.state:
            self.state.st_busy, self.state.st_progress, self.state.st_progress_text = True, 0, f"{effect.title}…"
        await asyncio.sleep(0)  # let the browser show that work started
        try:
            work = self.previewer.prepare(effect)
            if work is not None:
                token = self._token = CancelToken()
                job = ThreadJob(work, effect.title, cancel=token)
                # woken the moment the work ends (a grow update takes a few tenths of a second), else for progress
                while not await asyncio.to_thread(job.finished, PROGRESS_PERIOD_S):
                    with self.state:
                        fraction, message = job.progress()
                        self.state.st_progress, self.state.st_progress_text = round(100 * fraction), message
                job.wait(0)  # its value; or Cancelled, a SegTruthError, or a bug already logged and chained
            self.previewer.show()
            if self.previewer.node is not None:
                self.previewer.node.GetDisplayNode().SetOpacity2DFill(PREVIEW_FILL)
            for view in self._slice_views():
                view.schedule_render()
            message, error = effect.summary(), False
        except Cancelled as cancelled:
            self.previewer.cancel()
            message, error = str(cancelled), False
        except SegTruthError as problem:
            self.previewer.cancel()
            message, error = str(problem), True
        except Exception as problem:  # a bug in showing the preview must not take the server down
            log.exception("effect failed")
            self.previewer.cancel()
            message, error = f"{effect.title} failed: {problem}", True
        finally:
            self._token = None
        with self.state:
            self.state.st_busy = False
            self.state.st_preview_count += 1
            self.state.st_preview = self.previewer.active
            self.say(message, error)

    async def apply(self) -> None:
        """Apply the preview (computing it first when there is none) as one undo step."""
        if self.state.st_busy:
            return
        if not self.previewer.active:
            await self.preview()
            if not self.previewer.active:
                return
        try:
            effect = self.previewer.apply()
        except SegTruthError as error:  # Cancelled included
            with self.state:
                self.state.st_preview = self.previewer.active
                self.say(str(error), not isinstance(error, Cancelled))
            return
        with self.state:
            self._effect = None
            self.state.st_preview = False
            self._refresh_rows()
            self.say(f"{effect.title} applied.")

    def cancel_preview(self) -> None:
        self._stop_job()
        self.previewer.cancel()
        self._effect = None
        self.state.st_preview = False

    def _stop_job(self) -> None:
        if self._token is not None:
            self._token.cancel()

    def cancel_job(self) -> None:
        self._stop_job()
        self.say("Cancelling…")

    # -- learn as you label ----------------------------------------------------------------------------------------
    def train(self) -> None:
        """Save the open case, then train the project's model on the saved cases in a worker process; rank after."""
        if self._learning_busy():
            return
        if self.ws.case is not None and self.state.st_can_undo and not self.previewer.active:
            self.save()  # training reads the saved files: the strokes just drawn count
            if self.state.st_error:
                return
        s = self.state
        minutes = _number(s.st_train_minutes, DEFAULT_MINUTES)
        job = self.learning.start_training(
            minutes, bool(s.st_train_sparse), bool(s.st_train_finetune), int(s.st_train_dimensions or 2), self.device
        )
        labelled = len(self.learning.labelled())
        self._follow_learning(job, f"Training on {labelled} labelled case(s) for up to {minutes:g} min", self._trained)

    def rank(self) -> None:
        """Rank the cases with the project's model in a worker process; the case list takes the ranking's order."""
        if self._learning_busy():
            return
        job = self.learning.start_ranking(bool(self.state.st_train_sparse), self.device)
        self._follow_learning(job, "Ranking the cases", self._ranked)

    async def presegment(self) -> None:
        """Auto-segment the open case with the project's model: a preview to review, correct and apply."""
        self.ws.require_case()
        if not self.learning.has_model():
            raise SegTruthError("Train the project's model first (Train on the labelled cases).")
        self.set_tool("auto_segment")
        self.tool_states["auto_segment"].set(model=str(self.learning.model))
        await self.preview()

    def stop_learning(self) -> None:
        """Stop the training or ranking under way (the previous model stays as it was)."""
        if self._learning_job is not None and not self._learning_job.done:
            self._learning_job.cancel()
            self.state.st_learn_text = "Stopping…"

    def _learning_busy(self) -> bool:
        if self._learning_job is not None and not self._learning_job.done:
            self.say("A training or ranking is running: wait for it or stop it first.", True)
            return True
        return False

    def _follow_learning(self, job: Job, title: str, done) -> None:
        self._learning_job = job
        s = self.state
        s.st_learn_busy, s.st_learn_progress, s.st_learn_text = True, 0, f"{title}…"
        self.say(f"{title}; keep labelling meanwhile.")
        atexit.register(job.cancel)  # a server stopped mid-training ends its worker too
        self.learning_task = asyncio.get_running_loop().create_task(self._watch_learning(job, title, done))

    async def _watch_learning(self, job: Job, title: str, done) -> None:
        while not job.done:
            await asyncio.sleep(0.5)
            fraction, message = job.progress()
            with self.state:
                self.state.st_learn_progress, self.state.st_learn_text = round(100 * fraction), message
        atexit.unregister(job.cancel)
        after = None
        with self.state:
            self.state.st_learn_busy = False
            try:
                after = done(job.wait(0))
            except Cancelled:
                self.say(f"{title}: stopped; the project's model is as it was.")
            except SegTruthError as error:
                self.say(str(error), True)
            self.state.st_has_model = self.learning.has_model()
            self.state.st_model_info = self.learning.summary()
        if after is not None:
            after()

    def _trained(self, summary) -> Any:
        """A training ended: say how it went; the ranking follows, so the case list shows what to label next."""
        self.tool_states["auto_segment"].set(models=[])  # the model list is read again when the tool opens
        self.say(f"Trained {summary.describe()}. Ranking the cases…")
        return self.rank

    def _ranked(self, rows: list[dict]) -> None:
        ranked = [rank_note(row) for row in rows]
        order = {entry.case: (number, entry.note) for number, entry in enumerate(ranked)}
        entries = [dict(entry, note=order.get(entry["id"], (0, ""))[1]) for entry in self.state.st_cases]
        entries.sort(key=lambda entry: order.get(entry["id"], (len(order), ""))[0])
        self.state.st_cases = entries
        first = next((entry for entry in ranked if entry.kind == "unlabelled"), None)
        advice = f" Label {first.case} next." if first else ""
        self.say(f"Ranked {len(ranked)} case(s) with the project's model.{advice}")

    # -- views ---------------------------------------------------------------------------------------------------
    def _fit_views_when_sized(self, *_args) -> None:
        """A browser connected: fit the image to the views once they took their size in the page."""
        self.state.st_views_fitted = False
        asyncio.get_running_loop().create_task(self._fit_later())

    async def _fit_later(self) -> None:
        views = self.slicer_app.view_manager.get_views()
        initial = previous = [tuple(view.render_window().GetSize()) for view in views]
        for _ in range(50):  # the browser reports view sizes shortly after connecting
            await asyncio.sleep(0.1)
            sizes = [tuple(view.render_window().GetSize()) for view in views]
            if sizes != initial and sizes == previous:
                break
            previous = sizes
        self.slicer_app.display_manager.reset_views()
        with self.state:
            self.state.st_views_fitted = True

    def set_show3d(self, show: bool) -> None:
        """The 3D view with the segments' surfaces, on request only (surfaces are rebuilt after each edit)."""
        self.state.st_show3d = bool(show)
        self.ws.editor.set_surface_representation_enabled(bool(show))
        if show:
            self.layout_manager.set_layout(LAYOUT_3D)
            for view in self.slicer_app.view_manager.get_views():
                if view not in self._slice_views():
                    view.reset_camera()
                    view.schedule_render()
        else:
            self.layout_manager.set_layout(LAYOUT_SLICES)

    # -- saving --------------------------------------------------------------------------------------------------
    def save(self) -> None:
        if self.previewer.active:
            self.say("Apply or cancel the preview before saving.", True)
            return
        try:
            written = self.ws.save()
        except SegTruthError as error:
            self.say(str(error), True)
            return
        self.state.st_saved = [str(path) for path in written]
        folder = self.ws.case.image.parent  # type: ignore[union-attr]
        names = [str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path) for path in written]
        self.say(f"Saved {' and '.join(names)} in {folder}.")

    # -- UI --------------------------------------------------------------------------------------------------------
    def _slice_view_ui(self, server, view_id: str, view) -> None:
        from .viewui import slice_view_overlay

        slice_view_overlay(self, server, view_id, view)

    def _build_ui(self) -> None:
        from trame.ui.vuetify3 import VAppLayout
        from trame.widgets import html
        from trame.widgets import vuetify3 as v
        from trame_slicer.app.ui import SegmentEditorUI

        from .viewui import help_panel, send

        with VAppLayout(self.server, full_height=True) as layout:
            layout.root.theme = "dark"
            with v.VAppBar(density="compact"):
                v.VAppBarTitle("SegTruth")
                html.Span("{{ st_case }}", classes="text-subtitle-1 mr-4", raw_attrs=testid("case-name"))
                v.VSpacer()
                html.Span(
                    "", classes="text-caption mr-2", raw_attrs=[*testid("sync"), 'data-pending="0"']
                )  # filled by segtruth.js: actions sent and not yet applied
                v.VBtn(
                    icon="mdi-help-circle-outline",
                    click="st_help = !st_help",
                    raw_attrs=testid("help"),
                    title="Keyboard shortcuts (?)",
                )
                v.VBtn(
                    icon="mdi-undo",
                    click=send("undo"),
                    disabled=("!st_can_undo || st_busy",),
                    raw_attrs=testid("undo"),
                    title="Undo (Ctrl+Z)",
                )
                v.VBtn(
                    icon="mdi-redo",
                    click=send("redo"),
                    disabled=("!st_can_redo || st_busy",),
                    raw_attrs=testid("redo"),
                    title="Redo (Ctrl+Y)",
                )
                v.VSwitch(
                    v_model=("st_show3d",),
                    label="3D",
                    hide_details=True,
                    density="compact",
                    color="primary",
                    classes="mx-4 flex-grow-0",
                    update_modelValue=send("show3d", "{show: $event}"),
                    raw_attrs=testid("toggle-3d"),
                )
                v.VBtn(
                    "Save",
                    prepend_icon="mdi-content-save",
                    variant="tonal",
                    color="primary",
                    click=send("save"),
                    disabled=("!st_case || st_busy || st_preview",),
                    raw_attrs=testid("save"),
                    classes="mr-2",
                )
            with v.VNavigationDrawer(permanent=True, width=390):
                with v.VTabs(v_model=("st_tab",), density="compact", grow=True):
                    v.VTab("SegTruth", value="segtruth", raw_attrs=testid("tab-segtruth"))
                    v.VTab("Editor", value="editor", raw_attrs=testid("tab-editor"))
                with v.VWindow(v_model=("st_tab",)):
                    with v.VWindowItem(value="segtruth"):
                        build_panel(self)
                    with v.VWindowItem(value="editor", style="height: calc(100vh - 130px);"):
                        self.editor_ui = SegmentEditorUI()
            with v.VMain(), html.Div(style="display:flex; height:100%;"):
                self.layout_manager.initialize_layout_grid(layout)
            help_panel()
            with v.VFooter(app=True, border=True, classes="py-1", style="min-height: 32px;"):
                html.Span(
                    "{{ st_status }}",
                    classes=("st_error ? 'text-error text-body-2' : 'text-body-2'",),
                    raw_attrs=[*testid("status"), ':data-error="st_error"'],
                )
                v.VSpacer()
                v.VProgressCircular(indeterminate=("!!trame__busy || st_busy",), size=16, width=2)
                html.Span(v_if="st_views_fitted", style="display: none;", raw_attrs=testid("views-fitted"))
        self.ui = layout
        self.editor_logic.set_ui(self.editor_ui)

    # -- running ----------------------------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 8080, **kwargs) -> None:
        """Serve until interrupted (``port=0`` picks a free port; the URL is printed)."""
        self.server.start(host=host, port=port, open_browser=False, timeout=0, **kwargs)


def _number(value: Any, default: float) -> float:
    """A number from a text field (trame may hand it over as text); the default when the field is empty."""
    if value in (None, ""):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SegTruthError(f"Minutes must be a number, not {value!r}.") from None
