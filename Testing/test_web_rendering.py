"""A slice step renders only the view that moved: the others' frames would be the same pixels.

Each frame costs the server's loop about 0.1 s on a CPU renderer and every later action waits for it, so
rendering three views per Page Down made a slice step take a second. These tests count the frames each view
renders after a step, check the views left alone would indeed have shown the same pixels, and that with
Slicer's slice intersections on (which draw the moved slice in the other views) all of them render.
"""

from __future__ import annotations

import asyncio
import shutil

import numpy as np
import pytest

pytest.importorskip(
    "trame_slicer", reason="the web front end needs trame-slicer (pip install 'trame-slicer[standalone]')"
)

import vtk
from vtk.util.numpy_support import vtk_to_numpy

from SegTruthLogic.core.labels import LabelTable
from SegTruthLogic.web.cases import SAMPLE_LABELS, read_web_cases

NAMES = ("axial", "coronal", "sagittal")


def pixels(view) -> np.ndarray:
    """What the view shows now (rendered afresh)."""
    view.render_window().Render()
    grab = vtk.vtkWindowToImageFilter()
    grab.SetInput(view.render_window())
    grab.ReadFrontBufferOff()
    grab.Update()
    return vtk_to_numpy(grab.GetOutput().GetPointData().GetScalars()).copy()


def test_a_slice_step_renders_only_its_view(ct_chest, tmp_path, monkeypatch):
    from trame.app import get_server

    from SegTruthLogic.web.app import SegTruthWebApp

    monkeypatch.setenv("TRAME_ARGS", "")
    shutil.copyfile(ct_chest[0], tmp_path / "chest.nrrd")
    frames = dict.fromkeys(NAMES, 0)

    def counter(name: str):
        def count(*_args) -> None:
            frames[name] += 1

        return count

    async def frames_after(action) -> dict[str, int]:
        """The frames each view renders for ``action`` (the render schedulers run in the loop meanwhile)."""
        await asyncio.sleep(0.5)  # earlier frames done
        frames.update(dict.fromkeys(NAMES, 0))
        action()
        await asyncio.sleep(0.6)
        return dict(frames)

    async def session():
        # Made in the loop: the views' render schedulers are tasks of it.
        app = SegTruthWebApp(read_web_cases(tmp_path), LabelTable.read(SAMPLE_LABELS), server=get_server("web-render"))
        views = {name: app._view(name) for name in NAMES}
        await asyncio.sleep(0.5)  # the schedulers start and render the first frames
        for name, view in views.items():
            view.render_window().AddObserver("EndEvent", counter(name))
        for name in NAMES:
            rendered = await frames_after(lambda name=name: app.step_slice(name, 2))
            assert rendered[name] >= 1 and all(rendered[other] == 0 for other in NAMES if other != name), rendered
        # Not blocked for good: a view asked for a frame renders.
        rendered = await frames_after(views["coronal"].schedule_render)
        assert rendered["coronal"] >= 1 and rendered["axial"] == 0
        # With the slice intersections shown, the other views draw the moved slice: they all render.
        logic = app.slicer_app.app_logic
        logic.SetIntersectingSlicesEnabled(logic.IntersectingSlicesVisibility, True)
        rendered = await frames_after(lambda: app.step_slice("axial", 2))
        assert all(rendered[name] >= 1 for name in NAMES), rendered
        logic.SetIntersectingSlicesEnabled(logic.IntersectingSlicesVisibility, False)
        return app, views

    app, views = asyncio.run(session())

    # The frames left out are the pixels the views already show: a step changes its own view only.
    before = {name: pixels(view) for name, view in views.items()}
    for name in NAMES:
        app.step_slice(name, -3)
        after = {other: pixels(view) for other, view in views.items()}
        assert np.count_nonzero(after[name] != before[name]) > 1000
        for other in NAMES:
            if other != name:
                np.testing.assert_array_equal(after[other], before[other], err_msg=f"{other} after a {name} step")
        before = after
