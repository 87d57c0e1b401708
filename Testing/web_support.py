"""What the browser tests share: starting ``python -m SegTruthLogic.web`` on a folder, headless Chromium through
Playwright, finding controls by ``data-testid``, and waiting until the page's actions are all applied."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("SEGTRUTH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 850}
NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(folder: Path, extra: list[str] | None = None) -> Iterator[str]:
    """``python -m SegTruthLogic.web FOLDER`` (what ``segtruth serve`` runs) with the sample label table; its URL."""
    from SegTruthLogic.web.cases import SAMPLE_LABELS

    port = free_port()
    log = folder.parent / f"server-{folder.name}.log"
    command = [sys.executable, "-m", "SegTruthLogic.web", str(folder), "--labels", str(SAMPLE_LABELS)]
    command += ["--port", str(port), *(extra or [])]
    with open(log, "wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "TRAME_ARGS": ""})
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"the server exited with {server.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the server did not answer within 120 s:\n{log.read_text(errors='replace')[-3000:]}")
                time.sleep(0.5)
        yield url
        assert server.poll() is None, f"the server exited with {server.returncode}"
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        print(f"server log ({log}), last lines:\n{log.read_text(errors='replace')[-4000:]}")  # shown on failure


@contextmanager
def browser_page(profile: Path):
    """A fresh headless Chromium page (Debian's chromium; Playwright downloads no browser)."""
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def by_id(page, name: str):
    return page.locator(f'[data-testid="{name}"]')


def wait_applied(page, timeout_ms: int = 30_000) -> None:
    """Until the server has applied every action the page sent (the page counts them in ``sync``)."""
    from playwright.sync_api import expect

    expect(by_id(page, "sync")).to_have_attribute("data-pending", "0", timeout=timeout_ms)


def drag(page, box: dict, start: tuple[float, float], end: tuple[float, float], steps: int = 8) -> None:
    """A left-button drag in a view, from and to fractions of its box; no pause (as fast as a person)."""
    page.mouse.move(box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"], steps=steps)
    page.mouse.up()


def view_fraction(page, view: str, ras) -> tuple[float, float]:
    """Where a RAS point's (x, y) lies on the slice a view shows, as fractions of the view (y down)."""
    import numpy as np

    geometry = page.evaluate(f"window.trame.state.get('st_views')['{view}']")
    matrix = np.array(geometry["xy_to_ras"], float).reshape(4, 4)
    x, y, _ = np.linalg.solve(matrix[:3, :3], np.asarray(ras, float) - matrix[:3, 3])
    return float(x / geometry["width"]), float(1 - y / geometry["height"])
