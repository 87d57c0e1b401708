"""The web front end as a person uses it: headless Chromium (Playwright) on a server this test starts.

On the sample chest CT: open the case, paint one stroke in each lung, threshold the air into a new segment
(overlapping the strokes), grow from seeds inside the air, keep each lung's largest island, save; then the saved files are read back
with SimpleITK and slicerio and checked voxel by voxel and grid by grid: the threshold against numpy, the
lungs against SegTruth's own tools replayed headless on the seeds the browser painted (saved midway).

Needs Debian's ``chromium`` (``apt-get install chromium``; set SEGTRUTH_CHROMIUM for another path) and PyPI
``playwright`` (no browser download). SEGTRUTH_SCREENSHOTS=docs/images keeps the step screenshots for the
README; by default they go to pytest's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from web_support import NEEDS_CHROMIUM, browser_page, by_id, serving

# Where a stroke goes in the axial view, as fractions of the view (the view fits the CT, right lung on the left).
RIGHT_LUNG_STROKE = (0.27, 0.40, 0.62)
LEFT_LUNG_STROKE = (0.73, 0.40, 0.62)
AIR = (-1100.0, -400.0)

pytest.importorskip(
    "trame_slicer", reason="the web front end needs trame-slicer (pip install 'trame-slicer[standalone]')"
)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser tests need playwright (pip install playwright)"
)
pytestmark = [
    pytest.mark.slow,
    NEEDS_CHROMIUM,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory, ct_chest) -> Iterator[tuple[str, Path]]:
    """The server on a copy of the sample CT."""
    folder = tmp_path_factory.mktemp("web") / "cases"
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


def grid_of(image: sitk.Image) -> tuple:
    return image.GetSize(), image.GetOrigin(), image.GetSpacing(), image.GetDirection()


def assert_same_grid(image: sitk.Image, reference: sitk.Image) -> None:
    assert image.GetSize() == reference.GetSize()
    for a, b in zip(grid_of(image)[1:], grid_of(reference)[1:]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


def assert_seg_nrrd_matches(
    path: Path, labels: np.ndarray, reference: sitk.Image, names: list[tuple[str, int]]
) -> None:
    """slicerio reads the ``.seg.nrrd``: its segments, values, voxels and grid are the labelmap's."""
    import slicerio

    segmentation = slicerio.read_segmentation(str(path))
    assert [(s["name"], s["labelValue"]) for s in segmentation["segments"]] == names
    assert segmentation["voxels"].ndim == 3  # one layer: no overlaps
    np.testing.assert_array_equal(segmentation["voxels"].transpose(2, 1, 0), labels)
    direction = np.array(reference.GetDirection()).reshape(3, 3)
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, :3] = direction * np.array(reference.GetSpacing())
    ijk_to_lps[:3, 3] = reference.GetOrigin()
    np.testing.assert_allclose(segmentation["ijkToLPS"], ijk_to_lps, atol=1e-6)


def test_rebuild_the_lungs_in_the_browser(served, page, shots, tmp_path, ct_chest):
    expect = sync_api.expect
    url, folder = served
    ct = sitk.ReadImage(str(folder / "chest.nrrd"))
    values = sitk.GetArrayFromImage(ct)
    air_voxels = (values >= AIR[0]) & (values <= AIR[1])
    started = time.monotonic()

    # 1. Open: the case and its label table as the segment list.
    page.goto(url)
    expect(by_id(page, "segment-right-lung")).to_be_visible(timeout=60_000)
    expect(by_id(page, "case-name")).to_have_text("chest")
    expect(by_id(page, "segment-voxels-bone")).to_have_text("0")
    expect(by_id(page, "views-fitted")).to_be_attached(timeout=30_000)  # the views fit the image to their size
    page.wait_for_timeout(1000)  # and the fitted frames reach the page
    page.screenshot(path=shots / "web-1-open.png")

    # Edits overlap other segments (overwrite mode "allow overlap", in the Editor tab's masking options), as
    # Slicer users set it to grow inside a segment: the air thresholded later keeps the strokes' voxels.
    by_id(page, "tab-editor").click()
    page.get_by_text("Masking options").click()
    page.locator(".v-select", has_text="Overwrite mode").click()
    page.locator(".v-overlay .v-list-item", has_text="Allow Overlap").click()
    by_id(page, "tab-segtruth").click()
    page.wait_for_timeout(800)  # the tab's transition: fields filled during it lose their input

    # 2. One paint stroke in each lung, in the axial view; saved as the seeds to replay headless.
    view = by_id(page, "view-axial").bounding_box()
    assert view is not None and view["width"] > 300

    def stroke(segment: str, where: tuple[float, float, float]) -> None:
        by_id(page, f"segment-{segment}").click()
        x = view["x"] + where[0] * view["width"]
        y0, y1 = (view["y"] + f * view["height"] for f in where[1:])
        page.mouse.move(x, y0)
        page.wait_for_timeout(300)
        page.mouse.down()
        page.mouse.move(x, y1, steps=12)
        page.wait_for_timeout(200)
        page.mouse.up()
        expect(by_id(page, f"segment-voxels-{segment}")).not_to_have_text("0", timeout=15_000)

    by_id(page, "tool-paint").click()
    stroke("right-lung", RIGHT_LUNG_STROKE)
    stroke("left-lung", LEFT_LUNG_STROKE)
    page.wait_for_timeout(800)
    page.screenshot(path=shots / "web-3-seeds.png")
    by_id(page, "save").click()  # the seeds as painted, kept to replay the rest headless
    expect(by_id(page, "status")).to_contain_text("Saved", timeout=30_000)
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copyfile(folder / "chest.seg.nrrd", seeds / "chest.seg.nrrd")
    shutil.copyfile(folder / "labels" / "chest.nrrd", seeds / "chest.nrrd")

    # 3. Threshold the air into a new segment (overlapping the strokes: the seeds lie in the air).
    by_id(page, "segment-new-name").locator("input").fill("air")
    by_id(page, "segment-add").click()
    expect(by_id(page, "segment-air")).to_be_visible()
    by_id(page, "tool-threshold").click()
    by_id(page, "threshold-low").locator("input").fill(str(AIR[0]))
    by_id(page, "threshold-high").locator("input").fill(str(AIR[1]))
    by_id(page, "tool-preview").click()
    expect(by_id(page, "preview-shown")).to_be_visible(timeout=30_000)
    expect(by_id(page, "segment-voxels-air")).to_have_text("0")  # a preview is not in the case yet
    page.wait_for_timeout(800)
    page.screenshot(path=shots / "web-2-threshold-preview.png")
    by_id(page, "tool-apply").click()
    expect(by_id(page, "segment-voxels-air")).to_have_text(str(int(air_voxels.sum())), timeout=30_000)

    # 4. Grow from seeds inside the air, over the whole image.
    by_id(page, "tool-grow").click()
    by_id(page, "grow-inside").click()
    page.locator(".v-overlay .v-list-item", has_text="air").click()
    by_id(page, "grow-whole-image").locator("input").check()
    by_id(page, "tool-preview").click()
    expect(by_id(page, "preview-shown")).to_be_visible(timeout=60_000)
    expect(by_id(page, "status")).to_contain_text("Grow from seeds: preview computed")
    page.wait_for_timeout(800)
    page.screenshot(path=shots / "web-4-grow-preview.png")
    by_id(page, "tool-apply").click()
    expect(by_id(page, "status")).to_have_text("Grow from seeds applied.", timeout=30_000)

    # 5. Keep the largest island of each lung; undo and redo the last one.
    for segment in ("right-lung", "left-lung"):
        by_id(page, f"segment-{segment}").click()
        by_id(page, "tool-islands").click()
        by_id(page, "tool-preview").click()
        expect(by_id(page, "preview-shown")).to_be_visible(timeout=30_000)
        by_id(page, "tool-apply").click()
        expect(by_id(page, "status")).to_have_text("Islands applied.", timeout=30_000)
    kept = by_id(page, "segment-voxels-left-lung").inner_text()
    by_id(page, "undo").click()
    expect(by_id(page, "segment-voxels-left-lung")).not_to_have_text(kept, timeout=15_000)
    by_id(page, "redo").click()
    expect(by_id(page, "segment-voxels-left-lung")).to_have_text(kept, timeout=15_000)
    page.screenshot(path=shots / "web-5-islands.png")

    # 6. Drop the helper segment and save.
    by_id(page, "segment-delete-air").click()
    expect(by_id(page, "segment-air")).to_have_count(0)
    by_id(page, "save").click()
    expect(by_id(page, "status")).to_contain_text("Saved chest.seg.nrrd and labels/chest.nrrd", timeout=30_000)
    page.screenshot(path=shots / "web-6-saved.png")
    by_id(page, "tab-editor").click()  # trame-slicer's own editor panel, for the README
    page.wait_for_timeout(800)
    page.screenshot(path=shots / "web-7-editor-tab.png")
    browser_seconds = time.monotonic() - started

    # The midway files: the two strokes, on the CT's grid.
    seeds_labels = sitk.ReadImage(str(seeds / "chest.nrrd"))
    assert_same_grid(seeds_labels, ct)
    painted = sitk.GetArrayFromImage(seeds_labels)
    right, left = painted == 1, painted == 2
    assert right.sum() > 50 and left.sum() > 50 and set(np.unique(painted)) == {0, 1, 2}
    assert_seg_nrrd_matches(seeds / "chest.seg.nrrd", painted, ct, [("right lung", 1), ("left lung", 2), ("bone", 3)])

    # The final files: on the CT's grid, and exactly what SegTruth's tools give on the painted seeds.
    final = sitk.ReadImage(str(folder / "labels" / "chest.nrrd"))
    assert_same_grid(final, ct)
    labels = sitk.GetArrayFromImage(final)
    np.testing.assert_array_equal(labels, replay(folder / "chest.nrrd", seeds / "chest.seg.nrrd"))
    assert_seg_nrrd_matches(folder / "chest.seg.nrrd", labels, ct, [("right lung", 1), ("left lung", 2), ("bone", 3)])

    # And they are lungs: slicerio's reference segmentation of this CT agrees.
    import slicerio

    from SegTruthLogic.core.metrics import dice

    reference = slicerio.read_segmentation(str(ct_chest[1]))
    for name, value in (("right lung", 1), ("left lung", 2)):
        assert dice(labels == value, slicerio.segment_mask(reference, name).transpose(2, 1, 0) > 0) > 0.95, name
    assert browser_seconds < 240


def replay(image: Path, seeds: Path) -> np.ndarray:
    """SegTruth's tools headless on the browser's seeds: grow inside the air (its intensity range, which is what
    the browser's air segment holds), keep the largest islands."""
    from SegTruthLogic.scene.export import labels_on_source_grid
    from SegTruthLogic.scene.segmentation_io import load_segmentation
    from SegTruthLogic.scene.segments import table_from_segmentation
    from SegTruthLogic.scene.session import Session
    from SegTruthLogic.scene.volumes import load_volume
    from SegTruthLogic.tools.grow import grow_from_seeds
    from SegTruthLogic.tools.islands import keep_largest_island

    session = Session.new_headless()
    ct = load_volume(session, image)
    seg = load_segmentation(session, seeds, ct)
    grow_from_seeds(session, seg, ct, ["right lung", "left lung"], intensity_range=AIR, margin=None)
    keep_largest_island(session, seg, ct, "right lung")
    keep_largest_island(session, seg, ct, "left lung")
    labels, _grid = labels_on_source_grid(session, seg, ct, table_from_segmentation(seg))
    return labels


def small_case(path: Path) -> np.ndarray:
    """A small CT-like volume: a box of bone (300 HU) in water."""
    array = np.zeros((12, 40, 48), np.int16)
    array[3:9, 10:30, 12:36] = 300
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path), True)
    return array


def test_a_bad_case_says_one_sentence_and_the_server_goes_on(tmp_path, page, ct_chest):
    """Among good cases, one whose .seg.nrrd is cut short (it would abort Slicer's own reader) and one missing."""
    from SegTruthLogic import SegTruthError
    from SegTruthLogic.scene.segmentation_io import load_segmentation
    from SegTruthLogic.scene.session import Session
    from SegTruthLogic.scene.volumes import load_volume

    expect = sync_api.expect
    folder = tmp_path / "cases"
    folder.mkdir()
    small_case(folder / "a.nrrd")
    small_case(folder / "b.nrrd")
    bone = small_case(folder / "c.nrrd") > 200
    data = ct_chest[1].read_bytes()
    start = data.index(b"\n\n") + 2
    (folder / "b.seg.nrrd").write_bytes(data[: start + (len(data) - start) // 2])
    (folder / "manifest.csv").write_text(
        "case,image,segmentation\na,a.nrrd,\nb,b.nrrd,b.seg.nrrd\ngone,gone.nrrd,\nc,c.nrrd,\n"
    )
    session = Session.new_headless()
    with pytest.raises(SegTruthError) as raised:  # the sentence SegTruth's reader says for this file
        load_segmentation(session, folder / "b.seg.nrrd", load_volume(session, folder / "b.nrrd"))
    sentence = str(raised.value)
    assert sentence.startswith(f"{folder / 'b.seg.nrrd'}: ")

    with serving(folder) as url:
        page.goto(url)
        expect(by_id(page, "case-name")).to_have_text("a", timeout=60_000)
        expect(by_id(page, "case-gone")).to_contain_text(
            f"Case 'gone' (manifest.csv line 4): image {folder / 'gone.nrrd'} not found."
        )  # said in the list as soon as it is built
        by_id(page, "case-b").click()
        expect(by_id(page, "status")).to_have_text(sentence, timeout=30_000)
        expect(by_id(page, "status")).to_have_attribute("data-error", "true")
        expect(by_id(page, "case-name")).to_have_text("")
        expect(by_id(page, "segment-bone")).to_have_count(0)
        by_id(page, "case-gone").click()
        expect(by_id(page, "status")).to_contain_text("gone.nrrd not found.")

        by_id(page, "case-c").click()  # the server serves on: another case opens, is edited and saved
        expect(by_id(page, "case-name")).to_have_text("c", timeout=30_000)
        by_id(page, "segment-bone").click()
        by_id(page, "tool-threshold").click()
        by_id(page, "threshold-low").locator("input").fill("200")
        by_id(page, "threshold-high").locator("input").fill("400")
        by_id(page, "tool-apply").click()
        expect(by_id(page, "segment-voxels-bone")).to_have_text(str(int(bone.sum())), timeout=30_000)
        by_id(page, "save").click()
        expect(by_id(page, "status")).to_contain_text("Saved c.seg.nrrd and labels/c.nrrd", timeout=30_000)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labels" / "c.nrrd")))
    np.testing.assert_array_equal(labels, np.where(bone, 3, 0))
    assert not (folder / "labels" / "b.nrrd").exists()
