"""The "SegTruth" tab: cases, the segment list as the label table, SegTruth's tools with preview/apply/cancel.

Widgets only; every click calls a method of ``SegTruthWebApp``. Each control a person (or a test) uses has
a stable ``data-testid``: ``case-<id>``, ``segment-<name>``, ``segment-voxels-<name>``, ``tool-<tool>``,
``tool-preview``/``tool-apply``/``tool-cancel``, ``save``, ... (names slugged: "right lung" -> "right-lung").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .effects import EFFECTS
from .testids import dynamic_testid, testid

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
            _tool_settings(app)
            _preview_controls(app)
            _progress(app)
        _saved_files(app)


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
            subtitle=("entry.problem",),  # a file its manifest names is missing (opening it says so too)
            active=("entry.id === st_case",),
            click=(app.open_case, "[entry.id]"),
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
            click=(app.select_segment, "[row.segment_id]"),
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
            delete = app.server.trigger_name(app.delete_segment)
            v.VBtn(
                icon="mdi-delete-outline",
                size="small",
                variant="text",
                disabled=("st_busy",),
                title="Delete segment",
                # .stop: a click on the bin must not also select the row
                raw_attrs=[
                    *dynamic_testid("segment-delete-", "row.key"),
                    f"@click.stop=\"trigger('{delete}', [row.segment_id])\"",
                ],
            )
    with html.Div(classes="d-flex align-center mt-1", style="gap: 6px;"):
        v.VTextField(
            v_model=("st_new_name",),
            label="New segment",
            density="compact",
            hide_details=True,
            keyup_enter=app.add_segment,
            raw_attrs=testid("segment-new-name"),
        )
        v.VBtn(
            icon="mdi-plus",
            size="small",
            variant="tonal",
            click=app.add_segment,
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
                click=(app.set_tool, f"['{key}']"),
                disabled=("!st_case || st_busy",),
                raw_attrs=testid(f"tool-{key}"),
            )


def _tool_settings(app: SegTruthWebApp) -> None:
    """The picked tool's settings: each effect's own UI function on its own state."""
    from trame.widgets import html

    html.Div(
        "Drag in a slice view to paint into the selected segment. Brush size and masking: Editor tab.",
        v_if="st_tool === 'paint' || st_tool === 'erase'",
        classes="text-body-2",
    )
    for spec in EFFECTS:
        with html.Div(v_if=f"st_tool === '{spec.key}'"):
            spec.ui(app.tool_states[spec.key], app)


def _preview_controls(app: SegTruthWebApp) -> None:
    """Preview, Apply and Cancel of SegTruth's effects, and the line saying a preview is shown."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    with html.Div(v_if=SEGTRUTH_TOOL_TEST, classes="d-flex mt-3", style="gap: 6px;"):
        v.VBtn(
            "Preview",
            prepend_icon="mdi-eye",
            size="small",
            variant="tonal",
            click=app.preview,
            disabled=("st_busy",),
            raw_attrs=testid("tool-preview"),
        )
        v.VBtn(
            "Apply",
            prepend_icon="mdi-check",
            size="small",
            variant="flat",
            color="primary",
            click=app.apply,
            disabled=("st_busy",),
            raw_attrs=testid("tool-apply"),
        )
        v.VBtn(
            "Cancel",
            prepend_icon="mdi-close",
            size="small",
            variant="text",
            click=app.cancel_preview,
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
