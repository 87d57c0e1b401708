"""A person-like session in ``segtruth serve``, timed action by action in headless Chromium (Playwright).

Run: ``.venv/bin/python benchmarks/bench_web.py`` (about 8 minutes; needs Debian's chromium and PyPI playwright).
The session runs twice: on an idle machine, then with one extra busy core (``python -c "while True: pass"``).
``--parts grow`` or ``--parts edit`` runs one half (the 256^3 grow, or the strokes and slice steps on the chest
CT); ``--busy no`` skips the busy-core run. ``--compare DIR`` also serves from DIR (another commit's tree, e.g.
``git archive COMMIT | tar -x -C DIR``), alternating with this tree ``--rounds`` times: an A/B in one run,
on one machine in one state.

What is timed (all in the page, with ``performance.now()``):
- stroke visible: a pointer event of a stroke until the frame that shows it drawn on the view (the page draws
  strokes itself at once);
- stroke applied: the mouse-up until the server says it painted the stroke (its action confirmed);
- stroke frame: the mouse-up until the first image of the view from the server after that;
- grow update: on a 256^3 synthetic CT with a grow-from-seeds preview over the whole image that follows the
  strokes, the mouse-up of a new seed stroke until the updated preview is shown;
- scroll: Page Up / Page Down until the server applied it, and until the view's next image arrived.

Goals (issue 16): visible < 0.1 s, applied < 0.5 s, grow update < 1 s on 256^3, scroll < 0.1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Testing"))

from web_support import browser_page, by_id, serving, wait_applied  # noqa: E402

PAUSE_MS = 350  # a person's pause between two actions


def big_case(path: Path, size: int = 256) -> None:
    """A 256^3 CT-like volume: a 60-voxel ball (60 HU) in fat (-100 HU), with noise; 1 mm voxels."""
    rng = np.random.default_rng(0)
    z, y, x = np.ogrid[:size, :size, :size]
    ball = (x - size / 2) ** 2 + (y - size / 2) ** 2 + (z - size / 2) ** 2 <= 60**2
    values = np.where(ball, 60, -100).astype(np.int16) + rng.normal(0, 15, (size, size, size)).astype(np.int16)
    values[0, 0, 0], values[-1, -1, -1] = -1000, 400  # the range of a CT
    sitk.WriteImage(sitk.GetImageFromArray(values), str(path), True)


def person_stroke(page, box: dict, x: float, y0: float, y1: float, steps: int = 10) -> None:
    """A short vertical stroke, 10 moves 15 ms apart (a person's quick stroke)."""
    page.mouse.move(box["x"] + x * box["width"], box["y"] + y0 * box["height"])
    page.mouse.down()
    for n in range(1, steps + 1):
        page.mouse.move(box["x"] + x * box["width"], box["y"] + (y0 + (y1 - y0) * n / steps) * box["height"])
        page.wait_for_timeout(15)
    page.mouse.up()


def volume_fraction(box: dict, fraction: float) -> float:
    """Horizontal view fraction of a point ``fraction`` across a square volume fitted to the view's height."""
    aspect = min(1.0, box["height"] / box["width"])
    return 0.5 + (fraction - 0.5) * aspect


def results(page) -> dict:
    return page.evaluate(
        "({latency: window.segtruth.latency, visible: window.segtruth.visible,"
        " frames: window.segtruth.frames, marks: window.segtruth.marks})"
    )


def next_after(times: list[float], t: float) -> float | None:
    later = [x for x in times if x >= t]
    return min(later) if later else None


def session(url: str, parts: set[str]) -> dict[str, list[float]]:
    """One person-like session; seconds per action kind."""
    from playwright.sync_api import expect

    figures: dict[str, list[float]] = {k: [] for k in ("visible", "applied", "frame", "grow", "scroll", "scroll frame")}
    with tempfile.TemporaryDirectory() as profile, browser_page(Path(profile)) as page:
        page.goto(url)
        expect(by_id(page, "case-name")).to_have_text("big" if "grow" in parts else "chest", timeout=120_000)
        expect(by_id(page, "views-fitted")).to_be_attached(timeout=60_000)
        page.wait_for_timeout(1000)
        box = by_id(page, "view-axial").bounding_box()
        if "grow" in parts:
            grow_part(page, box, figures)
        if "edit" in parts:
            edit_part(page, box, figures)
    return figures


def grow_part(page, box: dict, figures: dict[str, list[float]]) -> None:
    """Grow from seeds on the 256^3 case: a seed in the ball, one outside, a preview that follows strokes."""
    from playwright.sync_api import expect

    centre = volume_fraction(box, 0.5)
    by_id(page, "segment-right-lung").click()
    by_id(page, "tool-paint").click()
    person_stroke(page, box, centre, 0.45, 0.55)
    by_id(page, "segment-left-lung").click()
    person_stroke(page, box, centre, 0.06, 0.10)
    wait_applied(page)
    by_id(page, "tool-grow").click()
    by_id(page, "grow-whole-image").locator("input").check()
    by_id(page, "grow-auto-update").locator("input").check()
    by_id(page, "tool-preview").click()
    expect(by_id(page, "preview-shown")).to_be_visible(timeout=300_000)
    wait_applied(page, 300_000)
    by_id(page, "tool-paint").click()  # the preview stays: it follows the strokes
    for n in range(6):
        segment = "right-lung" if n % 2 == 0 else "left-lung"
        by_id(page, f"segment-{segment}").click()
        page.wait_for_timeout(PAUSE_MS)
        marks = len(results(page)["marks"])
        x = centre + (0.02 * (n - 3) if segment == "right-lung" else 0.0)
        person_stroke(page, box, x, *((0.47, 0.53) if segment == "right-lung" else (0.06 + 0.01 * n, 0.12)))
        page.wait_for_function(f"window.segtruth.marks.length > {marks}", timeout=120_000)
        data = results(page)
        sent = [e for e in data["latency"] if e["kind"] == "paint"][-1]["sent"]
        figures["grow"].append((data["marks"][-1]["t"] - sent) / 1000)
        page.wait_for_timeout(PAUSE_MS)
    wait_applied(page)
    by_id(page, "tool-cancel").click()


def edit_part(page, box: dict, figures: dict[str, list[float]]) -> None:
    """Strokes and scrolling on the chest CT."""
    from playwright.sync_api import expect

    by_id(page, "case-chest").click()
    expect(by_id(page, "case-name")).to_have_text("chest", timeout=60_000)
    wait_applied(page)
    page.wait_for_timeout(1000)
    by_id(page, "segment-right-lung").click()
    by_id(page, "tool-paint").click()
    wait_applied(page)
    before = len(results(page)["latency"])
    for n in range(12):
        person_stroke(page, box, 0.2 + 0.02 * n, 0.40, 0.55)
        page.wait_for_timeout(PAUSE_MS)
    page.mouse.move(box["x"] + 40, box["y"] + 40)
    for n in range(12):
        page.keyboard.press("PageUp" if n % 4 < 2 else "PageDown")
        page.wait_for_timeout(PAUSE_MS)
    wait_applied(page)
    page.wait_for_timeout(500)
    data = results(page)
    frames = data["frames"].get("axial", [])
    for entry in data["latency"][before:]:
        if entry["kind"] == "paint":
            figures["applied"].append(entry["ms"] / 1000)
            frame = next_after(frames, entry["applied"])
            if frame is not None:
                figures["frame"].append((frame - entry["sent"]) / 1000)
        elif entry["kind"] == "slice_step":
            figures["scroll"].append(entry["ms"] / 1000)
            frame = next_after(frames, entry["applied"])
            if frame is not None:
                figures["scroll frame"].append((frame - entry["sent"]) / 1000)
    figures["visible"] = [ms / 1000 for ms in data["visible"]]


@contextmanager
def busy_core(on: bool):
    if not on:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.terminate()
        spinner.wait()


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"{statistics.median(values):.3f} / {p90:.3f} / {max(values):.3f} (n={len(values)})"


@contextmanager
def served_from(root: Path | None):
    """Start the server from ``root``'s tree (``python -m`` resolves the package in the working directory)."""
    if root is None:
        yield
        return
    here = Path.cwd()
    os.chdir(root)
    try:
        yield
    finally:
        os.chdir(here)


def main() -> None:
    from SegTruthLogic.web.cases import SAMPLE_LABELS  # noqa: F401  (the server uses the sample label table)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="grow,edit", help="grow, edit or both (default)")
    parser.add_argument("--busy", choices=("both", "no", "yes"), default="both", help="the busy-core run")
    parser.add_argument("--compare", type=Path, help="another tree to serve from, alternating with this one")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each tree (with --compare)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    loads = [
        (label, busy)
        for label, busy in (("idle", False), ("one busy core", True))
        if args.busy in ("both", "yes" if busy else "no")
    ]
    trees: list[tuple[str, Path | None]] = [("this tree", ROOT)]
    if args.compare is not None:
        trees.append((f"{args.compare.name}", args.compare.resolve()))

    sys.path.insert(0, str(ROOT / "Testing"))
    from conftest import ct_chest_paths

    rows: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cases"
        folder.mkdir()
        shutil.copyfile(ct_chest_paths()[0], folder / "chest.nrrd")
        if "grow" in parts:
            big_case(folder / "big.nrrd")
        for _round in range(args.rounds if args.compare is not None else 1):
            for label, busy in loads:
                for tree, root in trees:
                    name = label if args.compare is None else f"{tree}, {label}"
                    with busy_core(busy), served_from(root), serving(folder) as url:
                        figures = session(url, parts)
                    for key, values in figures.items():
                        rows.setdefault(name, {}).setdefault(key, []).extend(values)
                    for path in (folder / "labels").glob("*") if (folder / "labels").exists() else []:
                        path.unlink()
    goals = {
        "visible": "< 0.1",
        "applied": "< 0.5",
        "frame": "",
        "grow": "< 1 (256^3)",
        "scroll": "< 0.1",
        "scroll frame": "< 0.1",
    }
    print("| action (s: median / p90 / max) | goal | " + " | ".join(rows) + " |")
    print("|---|---|" + "---|" * len(rows))
    names = {
        "visible": "stroke visible (drawn in the page)",
        "applied": "stroke applied (server confirmed)",
        "frame": "stroke in the server's image",
        "grow": "grow preview updated after a stroke",
        "scroll": "slice step applied",
        "scroll frame": "slice step in the server's image",
    }
    for key, name in names.items():
        if all(not rows[r][key] for r in rows):
            continue
        print(f"| {name} | {goals[key]} | " + " | ".join(summary(rows[r][key]) for r in rows) + " |")


if __name__ == "__main__":
    main()
