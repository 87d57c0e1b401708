"""Widgets over the slice views (name, orientation letters, slice number and position, slider, brush overlay)
and the keyboard help; ``send`` writes the click handler that puts an action in the page's ordered stream."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .testids import testid

if TYPE_CHECKING:
    from .app import SegTruthWebApp

SHORTCUTS = [
    ("Ctrl+Z / Ctrl+Y", "undo / redo"),
    ("Page Up / Page Down, ↑ / ↓, mouse wheel", "next / previous slice (in the view under the mouse)"),
    ("1 … 9", "select segment 1 … 9 of the list"),
    ("[ / ]", "smaller / bigger brush"),
    ("P / E / Esc", "paint / erase / no tool (drag then sets window/level)"),
    ("drag with no tool", "window (left-right) and level (up-down)"),
    ("right drag / middle drag / Ctrl+wheel", "zoom / pan / zoom"),
    ("? or H", "show or hide this help"),
]


def send(kind: str, args: str = "{}") -> str:
    """The JavaScript of a click that sends action ``kind`` (``args``: a JavaScript object expression)."""
    return f"window.segtruth.send('{kind}', {args})"


def slice_view_overlay(app: SegTruthWebApp, server, view_id: str, view) -> None:
    """Over a slice view: the brush canvas, the view's name, orientation letters, slice number and mm, a slider."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v
    from trame_slicer.app.ui.view_gutter import create_slice_buttons, create_vertical_view_gutter_ui

    name = view.get_orientation().lower()
    create_vertical_view_gutter_ui(server, view_id, view, create_slice_buttons)
    g = f"st_views.{name}"
    html.Canvas(
        style="position:absolute;top:0;left:0;width:100%;height:100%;pointer-events:none;",
        raw_attrs=[f'data-st-view="{name}"', *testid(f"view-{name}")],
    )
    label = "position:absolute;color:#fff;text-shadow:0 0 3px #000;pointer-events:none;font-size:13px;"
    with html.Div(v_if=g, style="position:absolute;top:0;left:0;width:100%;height:100%;pointer-events:none;"):
        html.Div(
            f"{{{{ {g}.name }}}}",
            style=label + "top:6px;left:44px;font-weight:600;",
            raw_attrs=testid(f"view-name-{name}"),
        )
        for edge, place in (
            ("left", "left:6px;top:50%;"),
            ("right", "right:40px;top:50%;"),
            ("top", "top:6px;left:50%;"),
            ("bottom", "bottom:24px;left:50%;"),
        ):
            html.Div(
                f"{{{{ {g}.{edge} }}}}",
                style=label + place + "font-weight:700;color:#ffd54f;",
                raw_attrs=testid(f"orient-{name}-{edge}"),
            )
        html.Div(
            f"{{{{ {g}.axis }}}} {{{{ {g}.offset.toFixed(1) }}}} mm · slice {{{{ {g}.index + 1 }}}} / {{{{ {g}.count }}}}",
            style=label + "bottom:6px;left:44px;",
            raw_attrs=[*testid(f"slice-{name}"), f':data-index="{g}.index"'],
        )
        if name == "axial":
            html.Div(
                "W {{ Math.round(st_wl.window) }} L {{ Math.round(st_wl.level) }}",
                style=label + "bottom:6px;right:40px;",
                raw_attrs=testid("window-level"),
            )
        with html.Div(
            classes="st-ui",
            style="position:absolute;right:2px;top:36px;bottom:30px;width:34px;pointer-events:auto;",
        ):
            v.VSlider(
                direction="vertical",
                min=1,
                max=(f"{g}.count",),
                step=1,
                model_value=(f"{g}.index + 1",),
                thumb_label="always",
                hide_details=True,
                density="compact",
                color="primary",
                style="height:100%;",
                update_modelValue=send("slice_to", f"{{view: '{name}', index: $event - 1}}"),
                raw_attrs=testid(f"slider-{name}"),
            )


def help_panel() -> None:
    """The keyboard shortcuts, shown with ? (or the help button)."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    with (
        v.VDialog(v_model=("st_help",), max_width=560),
        v.VCard(title="Keyboard and mouse", raw_attrs=testid("help-panel")),
    ):
        with v.VCardText(), html.Table(style="width:100%;"):
            for keys, what in SHORTCUTS:
                with html.Tr():
                    html.Td(keys, style="padding:2px 12px 2px 0;white-space:nowrap;font-family:monospace;")
                    html.Td(what)
        with v.VCardActions():
            v.VSpacer()
            v.VBtn("Close", click="st_help = false")
