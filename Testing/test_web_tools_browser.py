"""The new web effects as a person uses them, in headless Chromium: Flood fill from a click in a view,
Smoothing, Scissors from an outline dragged in a view, Fast Marching, each previewed (screenshot), applied, and the voxel counts the page shows equal to the
tool functions run headless on the same case.

Needs Debian's ``chromium`` and PyPI ``playwright`` (see test_web_browser.py). SEGTRUTH_SCREENSHOTS=docs/images
keeps the screenshots for the README; by default they go to pytest's temporary folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from web_support import NEEDS_CHROMIUM, browser_page, by_id, serving, view_fraction

pytest.importorskip(
    "trame_slicer", reason="the web front end needs trame-slicer (pip install 'trame-slicer[standalone]')"
)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser tests need playwright (pip install playwright)"
)

pytestmark = [pytest.mark.slow, NEEDS_CHROMIUM]

RIGHT_LUNG = [63.0, -15.0, -110.0]  # RAS mm


@pytest.fixture(scope="module")
def served(tmp_path_factory, ct_chest) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("web-tools") / "cases"
    folder.mkdir()
    shutil.copyfile(ct_chest[0], folder / "chest.nrrd")
    with serving(folder) as url:
        yield url, folder


@pytest.fixture
def page(tmp_path):
    with browser_page(tmp_path / "chromium-profile") as new_page:
        yield new_page


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("SEGTRUTH_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def type_into(page, name: str, text: str) -> None:
    field = by_id(page, name).locator("input")
    field.fill(text)
    field.press("Tab")


def preview_and_apply(page, shots: Path, picture: str) -> None:
    expect = sync_api.expect
    by_id(page, "tool-preview").click()
    expect(by_id(page, "preview-shown")).to_be_attached(timeout=120_000)
    page.wait_for_timeout(1200)  # the preview's frames reach the page
    page.screenshot(path=shots / picture)
    by_id(page, "tool-apply").click()
    expect(by_id(page, "preview-shown")).not_to_be_attached(timeout=60_000)


def field_points(page, name: str) -> list[list[float]]:
    text = by_id(page, name).locator("input").input_value()
    return [[float(v) for v in point.split(",")] for point in text.split(";")]


def voxels(page, segment: str) -> int:
    return int(by_id(page, f"segment-voxels-{segment}").inner_text())


def test_new_effects_in_the_browser(served, page, shots, ct_chest):
    from slicer.util import arrayFromVolume

    from SegTruthLogic import Session
    from SegTruthLogic.scene.segments import add_segment, new_segmentation, segment_mask, set_segment_mask
    from SegTruthLogic.scene.volumes import load_volume
    from SegTruthLogic.tools import fast_marching as fm
    from SegTruthLogic.tools.flood_fill import flood_fill
    from SegTruthLogic.tools.scissors import polygon_mask
    from SegTruthLogic.tools.smoothing import smoothed_mask

    expect = sync_api.expect
    url, _folder = served
    page.goto(url)
    expect(by_id(page, "segment-right-lung")).to_be_visible(timeout=60_000)
    expect(by_id(page, "views-fitted")).to_be_attached(timeout=30_000)
    page.wait_for_timeout(1000)

    # the same steps headless, on the same CT
    session = Session.new_headless()
    volume = load_volume(session, ct_chest[0])
    segmentation = new_segmentation(session, volume)
    sid = add_segment(segmentation, "right lung")

    # 1. Flood fill, tolerance 60, from a click in the right lung on the axial slice shown (which previews it)
    by_id(page, "segment-right-lung").click()
    by_id(page, "tool-flood_fill").click()
    type_into(page, "flood-tolerance", "60")
    box = by_id(page, "view-axial").bounding_box()
    assert box is not None
    fx, fy = view_fraction(page, "axial", RIGHT_LUNG)
    page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    expect(by_id(page, "preview-shown")).to_be_attached(timeout=120_000)
    (point,) = field_points(page, "flood-point")
    np.testing.assert_allclose(point[:2], RIGHT_LUNG[:2], atol=1.0)  # within a screen pixel or two of the click
    preview_and_apply(page, shots, "web-tools-1-flood-fill.png")
    flood_fill(session, segmentation, volume, "right lung", point, 60, 1.0)
    expected = segment_mask(session, segmentation, sid, volume)
    expect(by_id(page, "segment-voxels-right-lung")).to_have_text(str(int(expected.sum())), timeout=30_000)

    # 2. Smoothing: closing, 7 mm
    by_id(page, "tool-smoothing").click()
    by_id(page, "smoothing-method").click()
    page.locator(".v-overlay .v-list-item", has_text="closing").click()
    type_into(page, "smoothing-kernel", "7")
    preview_and_apply(page, shots, "web-tools-2-smoothing.png")
    expected = smoothed_mask(expected, volume, "closing", 7.0)
    expect(by_id(page, "segment-voxels-right-lung")).to_have_text(str(int(expected.sum())), timeout=30_000)
    set_segment_mask(session, segmentation, sid, expected, volume)

    # 3. Scissors: erase inside a square dragged in the axial view, through every slice
    by_id(page, "tool-scissors").click()
    corners = [view_fraction(page, "axial", [x, y, 0]) for x, y in ((40, -40), (80, -40), (80, 10), (40, 10))]
    page.mouse.move(box["x"] + corners[0][0] * box["width"], box["y"] + corners[0][1] * box["height"])
    page.mouse.down()
    for fx, fy in corners[1:] + corners[:1]:
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"], steps=10)
    page.mouse.up()
    expect(by_id(page, "preview-shown")).to_be_attached(timeout=120_000)
    polygon = field_points(page, "scissors-polygon")
    assert len(polygon) >= 4
    preview_and_apply(page, shots, "web-tools-3-scissors.png")
    expected &= ~polygon_mask(volume, polygon, "all")
    expect(by_id(page, "segment-voxels-right-lung")).to_have_text(str(int(expected.sum())), timeout=30_000)
    set_segment_mask(session, segmentation, sid, expected, volume)

    # 4. Fast Marching in the left lung from a small flood-filled seed, to 3 % of the image; then the volume
    # slider moves along the arrival order without a new march
    add_segment(segmentation, "left lung")
    by_id(page, "segment-left-lung").click()
    by_id(page, "tool-flood_fill").click()
    type_into(page, "flood-point", "-70, -18, -110")
    type_into(page, "flood-tolerance", "15")
    type_into(page, "flood-neighbourhood", "0")
    preview_and_apply(page, shots, "web-tools-0-seed.png")
    seed = flood_fill(session, segmentation, volume, "left lung", [-70, -18, -110], 15, 0.0)
    expect(by_id(page, "segment-voxels-left-lung")).to_have_text(str(seed), timeout=30_000)
    by_id(page, "tool-fast_marching").click()
    type_into(page, "fm-max-volume", "3")
    by_id(page, "tool-preview").click()
    expect(by_id(page, "preview-shown")).to_be_attached(timeout=120_000)
    march = fm.march(session, segmentation, volume, "left lung", 3.0)
    assert march.voxels == int(np.ceil(arrayFromVolume(volume).size * 0.03)) > 10 * seed
    expect(by_id(page, "status")).to_contain_text(f"marched; {march.voxels} of {march.voxels} voxels", timeout=30_000)
    slider = by_id(page, "fm-volume").locator(".v-slider-track")
    box = slider.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 0.4 * box["width"], box["y"] + box["height"] / 2)
    by_id(page, "tool-preview").click()
    expect(by_id(page, "status")).to_contain_text("volume changed, no new march", timeout=60_000)
    page.wait_for_timeout(1200)
    page.screenshot(path=shots / "web-tools-4-fast-marching.png")
    by_id(page, "tool-apply").click()
    expect(by_id(page, "preview-shown")).not_to_be_attached(timeout=60_000)
    kept = voxels(page, "left-lung")
    assert 0.3 * march.voxels < kept < 0.5 * march.voxels
    fraction = kept / march.voxels
    np.testing.assert_allclose(fraction, round(fraction, 2), atol=0.5 / march.voxels + 1e-9)  # a 0.01 step
