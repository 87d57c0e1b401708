"""The "SegTruth" tab: cases, the segment list as the label table, SegTruth's tools with preview/apply/cancel.

Widgets only; every click calls a method of ``SegTruthWebApp``. Each control a person (or a test) uses has
a stable ``data-testid``: ``case-<id>``, ``segment-<name>``, ``segment-voxels-<name>``, ``tool-<tool>``,
``tool-preview``/``tool-apply``/``tool-cancel``, ``save``, ... (names slugged: "right lung" -> "right-lung").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .effects import EFFECTS
from .testids import dynamic_testid, testid
from .viewui import send

if TYPE_CHECKING:
    from .app import SegTruthWebApp

EDITOR_TOOLS = [("paint", "Paint", "mdi-brush"), ("erase", "Erase", "mdi-eraser")]
TOOLS = EDITOR_TOOLS + [(spec.key, spec.title, spec.icon) for spec in EFFECTS]
SEGTRUTH_TOOL_TEST = f"{[spec.key for spec in EFFECTS]!r}.includes(st_tool)"


def build_panel(app: SegTruthWebApp) -> None:
    from trame.widgets import html

    with html.Div(classes="pa-3", style="overflow-y: auto; height: calc(100vh - 130px);"):
        _cases(app)
        _segments(app)
        _tools(app)
        with html.Div(classes="mt-3"):
            _brush(app)
            _tool_settings(app)
            _preview_controls(app)
            _progress(app)
        _window_level(app)
        _saved_files(app)
        _learning(app)


def _heading(text: str) -> None:
    from trame.widgets import vuetify3 as v

    v.VListSubheader(text, classes="px-0")


def _cases(app: SegTruthWebApp) -> None:
    """The case list: a click opens the case."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    _heading("Cases")
    with v.VList(density="compact", nav=True, classes="py-0", max_height=160, style="overflow-y: auto;"):
        v.VListItem(
            v_for="entry in st_cases",
            key="entry.id",
            title=("entry.label",),
            # a file its manifest names is missing (opening it says so too), else its place in the model's ranking
            subtitle=("entry.problem || entry.note",),
            active=("entry.id === st_case",),
            click=send("open_case", "{case: entry.id}"),
            disabled=("st_busy",),
            raw_attrs=dynamic_testid("case-", "entry.key"),
        )
    html.Div("{{ st_case_info }}", classes="text-caption text-medium-emphasis", raw_attrs=testid("case-info"))


def _segments(app: SegTruthWebApp) -> None:
    """The segment list, as the label table (name, value, color, voxels), with add and delete."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    _heading("Segments (label table: name, value, color)")
    with (
        v.VList(density="compact", nav=True, classes="py-0"),
        v.VListItem(
            v_for="row in st_rows",
            key="row.segment_id",
            active=("row.segment_id === st_selected",),
            click=send("select", "{segment: row.segment_id}"),
            raw_attrs=dynamic_testid("segment-", "row.key"),
        ),
    ):
        with v.Template(v_slot_prepend=True):
            v.VIcon("mdi-square-rounded", color=("row.color",), classes="mr-n4")
        v.VListItemTitle("{{ row.name }}")
        with v.VListItemSubtitle():
            html.Span("value {{ row.value === null ? '?' : row.value }} · ")
            html.Span("{{ row.voxels }}", raw_attrs=dynamic_testid("segment-voxels-", "row.key"))
            html.Span(" voxels")
        with v.Template(v_slot_append=True):
            _segment_display_buttons()
            v.VBtn(
                icon="mdi-delete-outline",
                size="small",
                variant="text",
                disabled=("st_busy",),
                title="Delete segment",
                # .stop: a click on the bin must not also select the row
                raw_attrs=[
                    *dynamic_testid("segment-delete-", "row.key"),
                    f'@click.stop="{send("delete_segment", "{segment: row.segment_id}")}"',
                ],
            )
    with html.Div(classes="d-flex align-center mt-1", style="gap: 6px;"):
        v.VTextField(
            v_model=("st_new_name",),
            label="New segment",
            density="compact",
            hide_details=True,
            # Enter adds the segment (trame's VTextField drops a keyup_enter argument: a raw attribute it is). The
            # name goes with the action as typed: trame may not have sent the last keystrokes to the server yet.
            raw_attrs=[*testid("segment-new-name"), f'@keyup.enter="{send("add_segment", "{name: st_new_name}")}"'],
        )
        v.VBtn(
            icon="mdi-plus",
            size="small",
            variant="tonal",
            click=send("add_segment", "{name: st_new_name}"),
            disabled=("!st_case || st_busy",),
            title="Add segment",
            raw_attrs=testid("segment-add"),
        )


def _tools(app: SegTruthWebApp) -> None:
    """One button per tool: trame-slicer's paint and erase, then SegTruth's effects in registry order."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    _heading("Tools")
    with html.Div(classes="d-flex flex-wrap", style="gap: 4px;"):
        for key, title, icon in TOOLS:
            v.VBtn(
                title,
                prepend_icon=icon,
                size="small",
                variant=(f"st_tool === '{key}' ? 'flat' : 'tonal'",),
                color=(f"st_tool === '{key}' ? 'primary' : undefined",),
                click=send("tool", f"{{tool: '{key}'}}"),
                disabled=("!st_case || st_busy",),
                raw_attrs=testid(f"tool-{key}"),
            )


def _tool_settings(app: SegTruthWebApp) -> None:
    """The picked tool's settings: each effect's own UI function on its own state."""
    from trame.widgets import html

    for spec in EFFECTS:
        with html.Div(v_if=f"st_tool === '{spec.key}'"):
            spec.ui(app.tool_states[spec.key], app)


def _preview_controls(app: SegTruthWebApp) -> None:
    """Preview, Apply and Cancel of SegTruth's effects, and the line saying a preview is shown."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    with html.Div(v_if=f"{SEGTRUTH_TOOL_TEST} || st_preview", classes="d-flex mt-3", style="gap: 6px;"):
        v.VBtn(
            "Preview",
            prepend_icon="mdi-eye",
            size="small",
            variant="tonal",
            click=send("preview"),
            disabled=("st_busy",),
            raw_attrs=testid("tool-preview"),
        )
        v.VBtn(
            "Apply",
            prepend_icon="mdi-check",
            size="small",
            variant="flat",
            color="primary",
            click=send("apply"),
            disabled=("st_busy",),
            raw_attrs=testid("tool-apply"),
        )
        v.VBtn(
            "Cancel",
            prepend_icon="mdi-close",
            size="small",
            variant="text",
            click=send("cancel_preview"),
            disabled=("st_busy || !st_preview",),
            raw_attrs=testid("tool-cancel"),
        )
    html.Div(
        "Preview shown over the case: Apply keeps it, Cancel drops it.",
        v_if="st_preview",
        classes="text-caption text-medium-emphasis mt-1",
        raw_attrs=testid("preview-shown"),
    )


def _progress(app: SegTruthWebApp) -> None:
    """The running effect's progress, with Stop."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    with html.Div(v_if="st_busy", classes="mt-3"):
        v.VProgressLinear(model_value=("st_progress",), height=6, color="primary", raw_attrs=testid("job-progress"))
        with html.Div(classes="d-flex align-center"):
            html.Span("{{ st_progress_text }}", classes="text-caption")
            v.VSpacer()
            v.VBtn("Stop", size="x-small", variant="text", click=app.cancel_job, raw_attrs=testid("job-cancel"))


def _saved_files(app: SegTruthWebApp) -> None:
    """The files the last Save wrote."""
    from trame.widgets import html

    with html.Div(v_if="st_saved.length", classes="mt-4 text-caption", raw_attrs=testid("saved-files")):
        html.Div("Saved:")
        html.Div("{{ path }}", v_for="path in st_saved", key="path", style="word-break: break-all;")


def _segment_display_buttons() -> None:
    """A row's eye (visibility) and outline-only toggles; .stop: they must not also select the row."""
    from trame.widgets import vuetify3 as v

    for what, on_icon, off_icon, title in (
        ("visible", "mdi-eye", "mdi-eye-off", "Show or hide in the views"),
        ("outline", "mdi-vector-square", "mdi-square", "Outline only, or filled"),
    ):
        action = send("segment_display", f"{{segment: row.segment_id, {what}: !row.{what}}}")
        v.VBtn(
            icon=(f"row.{what} ? '{on_icon}' : '{off_icon}'",),
            size="small",
            variant="text",
            title=title,
            raw_attrs=[*dynamic_testid(f"segment-{what}-", "row.key"), f'@click.stop="{action}"'],
        )


def _brush(app: SegTruthWebApp) -> None:
    """The brush of paint and erase: diameter in mm, 2D (the shown slice only, as Slicer's) or a sphere."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    with html.Div(v_if="st_tool === 'paint' || st_tool === 'erase'", raw_attrs=testid("brush-settings")):
        html.Div(
            "Drag in a slice view to {{ st_tool }} the selected segment: on the shown slice only "
            "(2D brush) or in a sphere. [ and ] change the size.",
            classes="text-body-2",
        )
        with html.Div(classes="d-flex align-center", style="gap: 8px;"):
            v.VSlider(
                v_model=("st_brush_mm",),
                min=1,
                max=50,
                step=1,
                hide_details=True,
                density="compact",
                label="Brush (mm)",
                raw_attrs=testid("brush-size-slider"),
            )
            v.VTextField(
                v_model_number=("st_brush_mm",),
                type="number",
                suffix="mm",
                density="compact",
                hide_details=True,
                style="max-width: 96px;",
                raw_attrs=testid("brush-size"),
            )
        v.VCheckbox(
            v_model=("st_brush_sphere",),
            label="Sphere (paints neighbouring slices too)",
            density="compact",
            hide_details=True,
            raw_attrs=testid("brush-sphere"),
        )
        html.Div(
            "Opacity of the selected segment",
            v_if="st_rows.find(r => r.segment_id === st_selected)",
            classes="text-caption mt-1",
        )
        v.VSlider(
            v_if="st_rows.find(r => r.segment_id === st_selected)",
            model_value=("(st_rows.find(r => r.segment_id === st_selected) || {opacity: 1}).opacity",),
            min=0,
            max=1,
            step=0.05,
            hide_details=True,
            density="compact",
            update_modelValue=send("segment_display", "{segment: st_selected, opacity: $event}"),
            raw_attrs=testid("segment-opacity"),
        )


def _window_level(app: SegTruthWebApp) -> None:
    """Window/level presets (CT: abdomen, lung, bone, brain; any image: 1st-99th percentile); drag sets it too."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    _heading("Window / level (or drag in a view with no tool)")
    with html.Div(classes="d-flex flex-wrap", style="gap: 4px;"):
        v.VBtn(
            "{{ preset.title }}",
            v_for="preset in st_wl_presets",
            key="preset.value",
            size="small",
            variant=("st_wl_preset === preset.value ? 'flat' : 'tonal'",),
            color=("st_wl_preset === preset.value ? 'primary' : undefined",),
            click=send("wl_preset", "{preset: preset.value}"),
            disabled=("!st_case",),
            raw_attrs=dynamic_testid("wl-", "preset.value"),
        )


def _learning(app: SegTruthWebApp) -> None:
    """Learn as you label: train the project's model on the saved cases, pre-segment with it, rank the cases."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    _heading("Learn as you label")
    html.Div("{{ st_model_info }}", classes="text-body-2", raw_attrs=testid("learn-model"))
    with html.Div(classes="d-flex align-center mt-1", style="gap: 8px;"):
        v.VTextField(
            v_model_number=("st_train_minutes",),
            type="number",
            label="Minutes",
            density="compact",
            hide_details=True,
            style="max-width: 110px;",
            raw_attrs=testid("learn-minutes"),
        )
        v.VCheckbox(
            v_model=("st_train_sparse",),
            label="Labelled on some axial slices only",
            density="compact",
            hide_details=True,
            raw_attrs=testid("learn-sparse"),
        )
    v.VSelect(
        v_model=("st_train_dimensions",),
        items=("[{title: '2D model: slice by slice (fast on a CPU)', value: 2}, {title: '3D model', value: 3}]",),
        label="Model",
        density="compact",
        hide_details=True,
        classes="mt-1",
        raw_attrs=testid("learn-dimensions"),
    )
    v.VCheckbox(
        v_model=("st_train_finetune",),
        label="Continue from the project's model",
        v_if="st_has_model",
        density="compact",
        hide_details=True,
        raw_attrs=testid("learn-finetune"),
    )
    with html.Div(classes="d-flex flex-wrap mt-1", style="gap: 4px;"):
        v.VBtn(
            "Train on the labelled cases",
            prepend_icon="mdi-school",
            size="small",
            variant="tonal",
            click=send("train"),
            disabled=("st_learn_busy",),
            title="Saves the open case, then trains in a separate process; keep labelling meanwhile",
            raw_attrs=testid("learn-train"),
        )
        v.VBtn(
            "Pre-segment with the project's model",
            prepend_icon="mdi-robot",
            size="small",
            variant="tonal",
            click=send("presegment"),
            disabled=("!st_has_model || !st_case || st_busy",),
            raw_attrs=testid("learn-presegment"),
        )
        v.VBtn(
            "Rank the cases",
            prepend_icon="mdi-sort-descending",
            size="small",
            variant="tonal",
            click=send("rank"),
            disabled=("!st_has_model || st_learn_busy",),
            title="Unlabelled cases by the model's uncertainty (label next), labelled ones by its disagreement (review)",
            raw_attrs=testid("learn-rank"),
        )
    with html.Div(v_if="st_learn_busy", classes="mt-2"):
        v.VProgressLinear(
            model_value=("st_learn_progress",), height=6, color="secondary", raw_attrs=testid("learn-progress")
        )
        with html.Div(classes="d-flex align-center"):
            html.Span("{{ st_learn_text }}", classes="text-caption", raw_attrs=testid("learn-text"))
            v.VSpacer()
            # Out of the ordered stream, as the tools' Stop: it must not wait behind a running preview.
            v.VBtn("Stop", size="x-small", variant="text", click=app.stop_learning, raw_attrs=testid("learn-stop"))
