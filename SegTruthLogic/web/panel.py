"""The "SegTruth" tab: cases, the segment list as the label table, SegTruth's tools with preview/apply/cancel.

Widgets only; every click calls a method of ``SegTruthWebApp``. Each control a person (or a test) uses has
a stable ``data-testid``: ``case-<id>``, ``segment-<name>``, ``segment-voxels-<name>``, ``tool-<tool>``,
``tool-preview``/``tool-apply``/``tool-cancel``, ``save``, ... (names slugged: "right lung" -> "right-lung").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import SegTruthWebApp

TOOLS = [
    ("paint", "Paint", "mdi-brush"),
    ("erase", "Erase", "mdi-eraser"),
    ("threshold", "Threshold", "mdi-auto-fix"),
    ("grow", "Grow from seeds", "mdi-sprout"),
    ("islands", "Islands", "mdi-scatter-plot"),
    ("fill_between", "Fill between slices", "mdi-layers-triple"),
    ("auto_segment", "Auto-segment", "mdi-robot"),
]
ISLAND_MODES = "[{title: 'Keep largest island', value: 'keep_largest'}, {title: 'Remove small islands', value: 'remove_small'}, {title: 'Split islands into segments', value: 'split'}]"
SEGTRUTH_TOOL_TEST = "['threshold', 'grow', 'islands', 'fill_between', 'auto_segment'].includes(st_tool)"


def _heading(text: str) -> None:
    from trame.widgets import vuetify3 as v

    v.VListSubheader(text, classes="px-0")


def build_panel(app: SegTruthWebApp) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    from .app import dynamic_testid, testid

    with html.Div(classes="pa-3", style="overflow-y: auto; height: calc(100vh - 130px);"):
        # -- cases -------------------------------------------------------------------------------------------
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

        # -- segments: the label table -----------------------------------------------------------------------
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

        # -- tools ---------------------------------------------------------------------------------------------
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
        with html.Div(classes="mt-3"):
            html.Div(
                "Drag in a slice view to paint into the selected segment. Brush size and masking: Editor tab.",
                v_if="st_tool === 'paint' || st_tool === 'erase'",
                classes="text-body-2",
            )
            with html.Div(v_if="st_tool === 'threshold'"):
                html.Div("Voxels in [low, high] go into the selected segment.", classes="text-body-2 mb-2")
                with html.Div(classes="d-flex", style="gap: 6px;"):
                    v.VTextField(
                        v_model=("st_thr_low",),
                        label="Low",
                        type="number",
                        density="compact",
                        hide_details=True,
                        raw_attrs=testid("threshold-low"),
                    )
                    v.VTextField(
                        v_model=("st_thr_high",),
                        label="High",
                        type="number",
                        density="compact",
                        hide_details=True,
                        raw_attrs=testid("threshold-high"),
                    )
                    v.VBtn(
                        "Otsu",
                        size="small",
                        variant="text",
                        click=app.auto_threshold,
                        raw_attrs=testid("threshold-auto"),
                    )
            with html.Div(v_if="st_tool === 'grow'"):
                html.Div(
                    "Seeds: every segment with voxels. Paint a stroke in each structure, then Preview; "
                    "more strokes update the preview incrementally.",
                    classes="text-body-2 mb-2",
                )
                v.VSelect(
                    v_model=("st_grow_inside",),
                    items=("st_segments",),
                    label="Grow only inside segment",
                    clearable=True,
                    density="compact",
                    hide_details=True,
                    raw_attrs=testid("grow-inside"),
                )
                v.VCheckbox(
                    v_model=("st_grow_whole",),
                    label="Whole image (else the seeds' box + 15 %)",
                    density="compact",
                    hide_details=True,
                    raw_attrs=testid("grow-whole-image"),
                )
                v.VCheckbox(
                    v_model=("st_grow_auto",),
                    label="Update the preview after each stroke",
                    density="compact",
                    hide_details=True,
                    raw_attrs=testid("grow-auto-update"),
                )
            with html.Div(v_if="st_tool === 'islands'"):
                html.Div("On the selected segment.", classes="text-body-2 mb-2")
                v.VSelect(
                    v_model=("st_islands_mode",),
                    items=(ISLAND_MODES,),
                    density="compact",
                    hide_details=True,
                    raw_attrs=testid("islands-mode"),
                )
                v.VTextField(
                    v_if="st_islands_mode === 'remove_small'",
                    v_model=("st_islands_min",),
                    label="Minimum size (voxels)",
                    type="number",
                    density="compact",
                    hide_details=True,
                    classes="mt-2",
                    raw_attrs=testid("islands-min-size"),
                )
            with html.Div(v_if="st_tool === 'fill_between'"):
                html.Div("Interpolates every segment drawn on a few slices.", classes="text-body-2 mb-2")
                v.VSelect(
                    v_model=("st_fill_axis",),
                    items=("['auto', 'axial', 'coronal', 'sagittal']",),
                    label="Slices drawn in",
                    density="compact",
                    hide_details=True,
                    raw_attrs=testid("fill-axis"),
                )
            with html.Div(v_if="st_tool === 'auto_segment'"):
                html.Div("A catalog model (or a model folder on the server) on this image.", classes="text-body-2 mb-2")
                v.VCombobox(
                    v_model=("st_model",),
                    items=("st_models",),
                    label="Model",
                    density="compact",
                    hide_details=True,
                    raw_attrs=testid("auto-model"),
                )
                v.VSelect(
                    v_model=("st_device",),
                    items=("['auto', 'cpu', 'cuda']",),
                    label="Device (on the server)",
                    density="compact",
                    hide_details=True,
                    classes="mt-2",
                    raw_attrs=testid("auto-device"),
                )
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
            with html.Div(v_if="st_busy", classes="mt-3"):
                v.VProgressLinear(
                    model_value=("st_progress",), height=6, color="primary", raw_attrs=testid("job-progress")
                )
                with html.Div(classes="d-flex align-center"):
                    html.Span("{{ st_progress_text }}", classes="text-caption")
                    v.VSpacer()
                    v.VBtn("Stop", size="x-small", variant="text", click=app.cancel_job, raw_attrs=testid("job-cancel"))

        # -- saved files -----------------------------------------------------------------------------------------
        with html.Div(v_if="st_saved.length", classes="mt-4 text-caption", raw_attrs=testid("saved-files")):
            html.Div("Saved:")
            html.Div("{{ path }}", v_for="path in st_saved", key="path", style="word-break: break-all;")
