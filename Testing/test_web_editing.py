"""The web editor as a clinician works in it, fast: strokes drawn one after another with no pause, a segment
picked, Save or a slice change right after them; every stroke must land in the segment and on the slice it was
drawn for, and Save must hold all of them. Then the 2D brush, Enter and typed names, window/level and the
keyboard shortcuts. Headless Chromium (Playwright) on a server this test starts, on the sample chest CT; the
saved labelmap is read back with SimpleITK and checked voxel by voxel.

The strokes are drawn the way Playwright drives a mouse: down, 8 moves, up, and the next stroke at once.
SEGTRUTH_SCREENSHOTS=docs/images keeps the README's pictures of these controls (else pytest's temporary folder).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from web_support import NEEDS_CHROMIUM, browser_page, by_id, drag, serving, wait_applied

pytest.importorskip(
    "trame_slicer", reason="the web front end needs trame-slicer (pip install 'trame-slicer[standalone]')"
)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser tests need playwright (pip install playwright)"
)
pytestmark = [pytest.mark.slow, NEEDS_CHROMIUM]
expect = sync_api.expect

# Five short vertical strokes over the right lung (the left of the axial view), 0.04 of the view apart.
A_STROKES = [(0.20 + 0.035 * n, 0.42, 0.52) for n in range(5)]
B_STROKE = (0.70, 0.42, 0.52)


@pytest.fixture(scope="module")
def served(tmp_path_factory, ct_chest) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("editing") / "cases"
    folder.mkdir()
    shutil.copyfile(ct_chest[0], folder / "chest.nrrd")
    with serving(folder) as url:
        yield url, folder


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("SEGTRUTH_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def page(served, tmp_path_factory):
    """One page for the module's tests, opened on the chest case with the brush at 6 mm."""
    url, _folder = served
    with browser_page(tmp_path_factory.mktemp("profile")) as new_page:
        new_page.goto(url)
        expect(by_id(new_page, "segment-right-lung")).to_be_visible(timeout=60_000)
        expect(by_id(new_page, "views-fitted")).to_be_attached(timeout=30_000)
        new_page.wait_for_timeout(500)
        yield new_page


def axial_box(page) -> dict:
    box = by_id(page, "view-axial").bounding_box()
    assert box is not None and box["width"] > 300
    return box


def stroke(page, where: tuple[float, float, float]) -> None:
    drag(page, axial_box(page), (where[0], where[1]), (where[0], where[2]))


def saved_labels(page, folder: Path) -> np.ndarray:
    by_id(page, "save").click()
    wait_applied(page)  # Save is applied in line after the strokes
    expect(by_id(page, "status")).to_contain_text("Saved", timeout=30_000)
    return sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labels" / "chest.nrrd")))  # (k, j, i)


def components(mask: np.ndarray) -> int:
    image = sitk.ConnectedComponent(sitk.GetImageFromArray(mask.astype(np.uint8)))
    return int(sitk.GetArrayFromImage(image).max())


def start_painting(page, brush_mm: int = 6) -> None:
    by_id(page, "segment-right-lung").click()
    by_id(page, "tool-paint").click()
    field = by_id(page, "brush-size").locator("input")
    field.fill(str(brush_mm))
    field.press("Tab")
    wait_applied(page)


def clear_case(page, strokes: int) -> None:
    """Undo the test's strokes, one undo step each, back to the empty case."""
    for _ in range(strokes):
        by_id(page, "undo").click()
    wait_applied(page)
    for name in ("right-lung", "left-lung"):
        expect(by_id(page, f"segment-voxels-{name}")).to_have_text("0", timeout=15_000)


def test_strokes_then_a_segment_switch_then_save_keep_every_stroke_in_its_segment(page, served):
    """Five strokes into the right lung, the left lung picked at once, one stroke into it, Save at once."""
    _url, folder = served
    start_painting(page)
    for where in A_STROKES:
        stroke(page, where)
    by_id(page, "segment-left-lung").click()
    stroke(page, B_STROKE)
    labels = saved_labels(page, folder)  # Save right after the strokes: it must wait for them
    right, left = labels == 1, labels == 2
    assert components(right) == 5, "every stroke drawn for the right lung is in it, and nothing else"
    assert components(left) == 1
    width = labels.shape[2]
    assert (
        np.nonzero(right)[2].min() > np.nonzero(left)[2].max() or np.nonzero(right)[2].max() < np.nonzero(left)[2].min()
    ), "the two segments lie on their own sides of the view"
    # All on the shown slice (the 2D brush), and what Save wrote is what the case holds once all is applied.
    assert len(set(np.nonzero(labels)[0])) == 1
    wait_applied(page)
    for name, mask in (("right-lung", right), ("left-lung", left)):
        expect(by_id(page, f"segment-voxels-{name}")).to_have_text(str(int(mask.sum())), timeout=15_000)
    assert width == 128
    clear_case(page, 6)


def test_strokes_during_slice_changes_land_on_the_slice_they_were_drawn_on(page, served):
    """Page Down three times, a stroke, Page Down three more, a stroke, with no pause: two slices, three apart."""
    _url, folder = served
    start_painting(page)
    axial = by_id(page, "slice-axial")
    page.mouse.move(axial_box(page)["x"] + 50, axial_box(page)["y"] + 50)  # the keys act on the view under the mouse
    wait_applied(page)
    first = int(axial.get_attribute("data-index"))
    for _ in range(3):
        page.keyboard.press("PageDown")
    stroke(page, A_STROKES[0])
    for _ in range(3):
        page.keyboard.press("PageDown")
    stroke(page, A_STROKES[2])
    wait_applied(page)
    expect(axial).to_have_attribute("data-index", str(first - 6))
    labels = saved_labels(page, folder)
    # The axial view's slice index is the volume's k (the CT's axes are the patient's).
    assert sorted(set(np.nonzero(labels)[0])) == [first - 6, first - 3]
    clear_case(page, 2)
    for _ in range(6):
        page.keyboard.press("PageUp")
    wait_applied(page)
    expect(axial).to_have_attribute("data-index", str(first))


def test_the_2d_brush_paints_the_shown_slice_and_the_sphere_its_neighbours(page, served, shots):
    _url, folder = served
    start_painting(page, brush_mm=24)
    index = int(by_id(page, "slice-axial").get_attribute("data-index"))
    stroke(page, A_STROKES[1])
    box = axial_box(page)
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.62 * box["height"])  # the brush outline, 24 mm
    page.wait_for_timeout(800)
    page.screenshot(path=shots / "web-8-brush.png")
    labels = saved_labels(page, folder)
    assert set(np.nonzero(labels)[0]) == {index}, "a 2D brush paints the shown slice only"
    by_id(page, "brush-sphere").locator("input").check()
    stroke(page, A_STROKES[4])  # a 24 mm sphere on 10 mm slices: the shown slice and one on each side
    labels = saved_labels(page, folder)
    assert set(np.nonzero(labels)[0]) == {index - 1, index, index + 1}
    by_id(page, "brush-sphere").locator("input").uncheck()
    clear_case(page, 2)


def test_new_segment_names_are_taken_as_typed_with_enter_or_plus(page):
    name = by_id(page, "segment-new-name").locator("input")
    name.fill("liver")
    name.press("Enter")
    expect(by_id(page, "segment-liver")).to_be_visible(timeout=15_000)
    name.press_sequentially("spleen", delay=0)
    by_id(page, "segment-add").click()  # at once, while the last letters may not have reached the server
    expect(by_id(page, "segment-spleen")).to_be_visible(timeout=15_000)
    expect(by_id(page, "segment-liver")).to_have_count(1)
    for segment in ("liver", "spleen"):
        by_id(page, f"segment-delete-{segment}").click()
        expect(by_id(page, f"segment-{segment}")).to_have_count(0, timeout=15_000)


def view_pixels(page, mode: str = "L") -> np.ndarray:
    from io import BytesIO

    from PIL import Image

    png = by_id(page, "view-axial").screenshot()
    return np.asarray(Image.open(BytesIO(png)).convert(mode), dtype=float)


def test_window_level_presets_and_drag_change_the_rendered_pixels(page, shots):
    """Presets and a drag change the picture; the view is named, with its patient directions at its edges."""
    expect(by_id(page, "view-name-axial")).to_have_text("Axial")
    for edge, letter in (("left", "R"), ("right", "L"), ("top", "A"), ("bottom", "P")):
        expect(by_id(page, f"orient-axial-{edge}")).to_have_text(letter)
    expect(by_id(page, "slice-axial")).to_contain_text(" / 34")
    by_id(page, "tool-paint").click()
    page.keyboard.press("Escape")  # no tool: a drag sets window/level
    expect(by_id(page, "tool-paint")).not_to_have_class("v-btn--variant-flat", timeout=10_000)
    by_id(page, "wl-abdomen").click()
    wait_applied(page)
    expect(by_id(page, "window-level")).to_have_text("W 350 L 40")
    page.wait_for_timeout(600)
    abdomen = view_pixels(page)
    by_id(page, "wl-lung").click()
    wait_applied(page)
    expect(by_id(page, "window-level")).to_have_text("W 1400 L -500")
    page.wait_for_timeout(600)
    lung = view_pixels(page)
    page.screenshot(path=shots / "web-9-window-level.png")
    # The lungs (air, -1000 HU) are black in the abdomen window and grey in the lung window.
    assert np.abs(lung - abdomen).mean() > 10
    drag(page, axial_box(page), (0.5, 0.5), (0.7, 0.5))  # left-right: a wider window
    wait_applied(page)
    text = by_id(page, "window-level").inner_text()
    assert text != "W 1400 L -500" and int(text.split()[1]) > 1400
    page.wait_for_timeout(600)
    assert np.abs(view_pixels(page) - lung).mean() > 2


def test_keyboard_shortcuts_and_their_help(page, served, shots):
    start_painting(page)
    page.mouse.move(axial_box(page)["x"] + 50, axial_box(page)["y"] + 50)
    page.keyboard.press("2")  # the second segment of the list
    wait_applied(page)
    expect(by_id(page, "segment-left-lung")).to_contain_class("v-list-item--active")
    size = by_id(page, "brush-size").locator("input")
    page.keyboard.press("]")
    expect(size).to_have_value("7")
    page.keyboard.press("[")
    page.keyboard.press("[")
    expect(size).to_have_value("3")  # the sizes go 1, 2, 3, 5, 7, 10, 15, 20, 30, 50 mm
    page.keyboard.press("]")
    expect(size).to_have_value("5")
    stroke(page, B_STROKE)
    wait_applied(page)
    expect(by_id(page, "segment-voxels-left-lung")).not_to_have_text("0", timeout=15_000)
    page.keyboard.press("Control+z")
    wait_applied(page)
    expect(by_id(page, "segment-voxels-left-lung")).to_have_text("0", timeout=15_000)
    page.keyboard.press("Control+y")
    wait_applied(page)
    expect(by_id(page, "segment-voxels-left-lung")).not_to_have_text("0", timeout=15_000)
    page.keyboard.press("Control+z")
    axial = by_id(page, "slice-axial")
    before = int(axial.get_attribute("data-index"))
    page.keyboard.press("PageUp")
    wait_applied(page)
    expect(axial).to_have_attribute("data-index", str(before + 1))
    page.keyboard.press("ArrowDown")
    wait_applied(page)
    expect(axial).to_have_attribute("data-index", str(before))
    page.keyboard.press("?")
    expect(by_id(page, "help-panel")).to_be_visible()
    expect(by_id(page, "help-panel")).to_contain_text("Ctrl+Z")
    page.wait_for_timeout(400)
    page.screenshot(path=shots / "web-10-help.png")
    page.keyboard.press("Escape")
    expect(by_id(page, "help-panel")).to_be_hidden(timeout=5000)


def after_next_frame(page, action) -> np.ndarray:
    """The axial view's pixels once the server applied ``action`` (a click) and sent the view's next image."""
    count = page.evaluate("window.segtruth.frameCount.axial || 0")
    action()
    wait_applied(page)
    page.wait_for_function(f"(window.segtruth.frameCount.axial || 0) > {count}", timeout=15_000)
    page.wait_for_function("window.segtruth.strokes.length === 0")  # the page's own drawing of a stroke is gone
    page.mouse.move(5, 400)  # and the brush outline at the mouse
    page.wait_for_timeout(300)
    return view_pixels(page, "RGB")


def changed(a: np.ndarray, b: np.ndarray) -> int:
    """Pixels with a colour channel differing by more than 25 (JPEG noise stays below)."""
    return int((np.abs(a - b).max(axis=-1) > 25).sum())


def test_segment_visibility_outline_and_the_3d_surface(page, shots):
    """The segment list's eye and outline toggles change the view; the 3D switch adds a 3D view of surfaces."""
    start_painting(page, brush_mm=30)
    shown = after_next_frame(page, lambda: stroke(page, A_STROKES[2]))
    hidden = after_next_frame(page, lambda: by_id(page, "segment-visible-right-lung").click())
    assert changed(shown, hidden) > 300  # the stroke's filled area
    again = after_next_frame(page, lambda: by_id(page, "segment-visible-right-lung").click())
    assert changed(again, shown) < 50
    outlined = after_next_frame(page, lambda: by_id(page, "segment-outline-right-lung").click())
    assert changed(outlined, shown) > 200 and changed(outlined, hidden) > 50  # no fill, an outline
    by_id(page, "segment-outline-right-lung").click()
    views = page.locator("img.image-display-area")
    expect(views).to_have_count(3)
    by_id(page, "toggle-3d").locator("input").check()
    wait_applied(page)
    expect(views).to_have_count(4, timeout=30_000)
    wait_applied(page)
    page.wait_for_timeout(2500)
    page.screenshot(path=shots / "web-11-3d.png")
    by_id(page, "toggle-3d").locator("input").uncheck()
    wait_applied(page)
    expect(views).to_have_count(3, timeout=30_000)
    clear_case(page, 1)
