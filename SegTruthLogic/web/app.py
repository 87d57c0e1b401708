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
import logging
from dataclasses import asdict
from typing import Any

from ..core.errors import Cancelled, SegTruthError
from ..core.jobs import ThreadJob
from ..core.labels import LabelTable
from ..core.progress import CancelToken
from .cases import WebCase
from .effects import BY_KEY, EFFECTS, BoundState, Effect, EffectSpec, Previewer
from .panel import build_panel
from .testids import testid
from .workspace import Workspace, slug

log = logging.getLogger(__name__)

SEGTRUTH_TOOLS = tuple(spec.key for spec in EFFECTS)
EDITOR_TOOLS = ("paint", "erase")
LAYOUT_SLICES, LAYOUT_AXIAL, LAYOUT_3D = "slices", "axial", "slices3d"
REFRESH_DELAY_S = 0.25  # segment list and grow preview follow paint strokes after this pause


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
        self.state, self.ctrl = self.server.state, self.server.controller
        self.cases = {case.case: case for case in cases}
        self.device = device

        self.slicer_app = SlicerApp()
        register_rca_factories(self.slicer_app.view_manager, self.server, slice_view_ui_f=self._slice_view_ui)
        self.editor_logic = SegmentEditorLogic(self.server, self.slicer_app)  # its undo stack is the one used
        self.layout_manager = LayoutManager(self.slicer_app.scene, self.slicer_app.view_manager, self.server)
        self.layout_manager.register_layout_dict(_layouts(), lazy_initialization=True)
        # Views are made outside any UI block (else their widgets land in it); the 3D view only when asked for.
        self.layout_manager.create_layout_views_if_needed(LAYOUT_SLICES)
        self.layout_manager.set_layout(LAYOUT_SLICES)

        self.ws = Workspace(self.slicer_app, table)
        self.previewer = Previewer(self.ws)
        self._runner = runner
        self._effect: Effect | None = None
        self._effect_key: tuple | None = None
        self._token: CancelToken | None = None
        self._refresh_task: asyncio.Task | None = None
        self._dirty = False

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

    def say(self, text: str, error: bool = False) -> None:
        self.state.st_status, self.state.st_error = text, error
        (log.warning if error else log.info)("%s", text)

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
        if self.state.st_show3d:
            display.show_volume(self.ws.volume)
        display.reset_views()
        self.state.st_case = case.case
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
        self.state.st_rows = [{**asdict(row), "key": slug(row.name)} for row in rows]
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
            for view in self.slicer_app.view_manager.get_views():
                view.schedule_render()  # a last frame once edits pause: streamed views could miss the final one
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

        if not name or name == SegmentationEffectNoTool.get_effect_name():
            if self.state.st_tool in EDITOR_TOOLS:
                self.state.st_tool = ""
            return
        if self.previewer.active:
            self.cancel_preview()
        tools = {SegmentationEffectPaint.get_effect_name(): "paint", SegmentationEffectErase.get_effect_name(): "erase"}
        self.state.st_tool = tools.get(name, "")

    def _on_undo_changed(self, *_args) -> None:
        stack = self.ws.editor.undo_stack
        self.state.st_can_undo, self.state.st_can_redo = stack.can_undo(), stack.can_redo()

    # -- segments ----------------------------------------------------------------------------------------------
    def select_segment(self, segment_id: str) -> None:
        self.guard(lambda: self.ws.select(segment_id))

    def add_segment(self) -> None:
        def add() -> None:
            self.ws.add_label(self.state.st_new_name or "")
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
        from trame_slicer.segmentation import SegmentationEffectErase, SegmentationEffectPaint

        self.cancel_preview()
        editor = self.ws.editor
        if tool in EDITOR_TOOLS:
            if not editor.get_active_segment_id():
                self.say("Select a segment to paint into first.", True)
                return
            self.state.st_tool = tool
            editor.set_active_effect_type(SegmentationEffectPaint if tool == "paint" else SegmentationEffectErase)
            self.say(f"{tool.title()}: drag in a slice view.")
            return
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
                while not job.done:
                    await asyncio.sleep(0.2)
                    with self.state:
                        fraction, message = job.progress()
                        self.state.st_progress, self.state.st_progress_text = round(100 * fraction), message
                job.wait(0)  # its value; or Cancelled, a SegTruthError, or a bug already logged and chained
            self.previewer.show()
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
        """3D view with volume rendering on request only: on a CPU a frame costs about two seconds."""
        display = self.slicer_app.display_manager
        volume = self.ws.volume
        if show:
            self.layout_manager.set_layout(LAYOUT_3D)
            if volume is not None:
                display.show_volume(volume)
        else:
            if volume is not None:
                node = self.slicer_app.volume_rendering.get_vr_display_node(volume)
                if node is not None:
                    node.SetVisibility(False)
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
        from trame.widgets import html
        from trame_slicer.app.ui import create_vertical_slice_view_gutter_ui

        create_vertical_slice_view_gutter_ui(server, view_id, view)
        # A see-through marker over the view, so tests find a view by its orientation.
        html.Div(
            style="position:absolute;top:0;left:0;width:100%;height:100%;pointer-events:none;",
            raw_attrs=testid(f"view-{view.get_orientation().lower()}"),
        )

    def _build_ui(self) -> None:
        from trame.ui.vuetify3 import VAppLayout
        from trame.widgets import html
        from trame.widgets import vuetify3 as v
        from trame_slicer.app.ui import SegmentEditorUI

        with VAppLayout(self.server, full_height=True) as layout:
            layout.root.theme = "dark"
            with v.VAppBar(density="compact"):
                v.VAppBarTitle("SegTruth")
                html.Span("{{ st_case }}", classes="text-subtitle-1 mr-4", raw_attrs=testid("case-name"))
                v.VSpacer()
                v.VBtn(
                    icon="mdi-undo",
                    click=self.undo,
                    disabled=("!st_can_undo || st_busy",),
                    raw_attrs=testid("undo"),
                    title="Undo",
                )
                v.VBtn(
                    icon="mdi-redo",
                    click=self.redo,
                    disabled=("!st_can_redo || st_busy",),
                    raw_attrs=testid("redo"),
                    title="Redo",
                )
                v.VSwitch(
                    v_model=("st_show3d",),
                    label="3D",
                    hide_details=True,
                    density="compact",
                    color="primary",
                    classes="mx-4 flex-grow-0",
                    update_modelValue=(self.set_show3d, "[$event]"),
                    raw_attrs=testid("toggle-3d"),
                )
                v.VBtn(
                    "Save",
                    prepend_icon="mdi-content-save",
                    variant="tonal",
                    color="primary",
                    click=self.save,
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
