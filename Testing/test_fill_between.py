"""Fill between slices with ITK's morphological contour interpolation: shapes recovered, labels kept apart."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import write_volume

from SegTruthLogic import Cancelled, SegTruthError
from SegTruthLogic.core.progress import CancelToken
from SegTruthLogic.scene.segments import add_segment, find_segment, new_segmentation, segment_mask, set_segment_mask
from SegTruthLogic.scene.volumes import load_volume
from SegTruthLogic.tools.fill_between import fill_between_slices, interpolation_axis

SHAPE = (40, 44, 48)  # k, j, i
SPACING = (0.8, 0.9, 2.0)  # i, j, k


def shapes() -> tuple[np.ndarray, np.ndarray]:
    """A cylinder along k and a ball, apart from each other."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    cylinder = ((j - 14) ** 2 + (i - 14) ** 2 <= 64) & (k >= 5) & (k <= 35)
    ball = ((k - 20) * 2.0) ** 2 + ((j - 30) * 0.9) ** 2 + ((i - 34) * 0.8) ** 2 <= 12.0**2
    return cylinder, ball


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


@pytest.fixture
def scene(session, tmp_path):
    volume = load_volume(
        session, write_volume(tmp_path / "v.nrrd", np.zeros(SHAPE, np.int16), SPACING, (4.0, 2.0, -9.0))
    )
    return session, new_segmentation(session, volume), volume


def draw(scene, name: str, shape: np.ndarray, drawn: tuple) -> np.ndarray:
    """Put the shape's voxels on the ``drawn`` slices only into a new segment; returns what was drawn."""
    session, segmentation, volume = scene
    sparse = np.zeros(SHAPE, dtype=bool)
    sparse[drawn] = shape[drawn]
    set_segment_mask(session, segmentation, add_segment(segmentation, name), sparse, volume)
    return sparse


def mask_of(scene, name: str) -> np.ndarray:
    session, segmentation, volume = scene
    return segment_mask(session, segmentation, find_segment(segmentation, name), volume)


def test_all_segments_at_once_each_keeps_its_label(scene):
    session, segmentation, volume = scene
    cylinder, ball = shapes()
    every_5th_k = (slice(5, 36, 5), slice(None), slice(None))
    drawn_cylinder = draw(scene, "cylinder", cylinder, every_5th_k)
    drawn_ball = draw(scene, "ball", ball, (slice(12, 29, 4), slice(None), slice(None)))
    ids = fill_between_slices(session, segmentation, volume)
    assert [segmentation.GetSegmentation().GetSegment(i).GetName() for i in ids] == ["cylinder", "ball"]
    filled_cylinder, filled_ball = mask_of(scene, "cylinder"), mask_of(scene, "ball")
    assert dice(filled_cylinder, cylinder) >= 0.95
    assert dice(filled_ball, ball) >= 0.9  # a ball is not a prism: its slices change between drawn ones
    assert not (filled_cylinder & filled_ball).any()
    # The slices that were drawn are untouched.
    assert np.array_equal(filled_cylinder[every_5th_k], drawn_cylinder[every_5th_k])
    assert np.array_equal(filled_ball[12:29:4], drawn_ball[12:29:4])
    assert not filled_cylinder[:5].any() and not filled_cylinder[36:].any()  # nothing beyond the end slices


def test_slices_along_i_and_a_forced_axis(scene):
    session, segmentation, volume = scene
    k, j, i = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    rod = ((k - 20) ** 2 + (j - 22) ** 2 <= 49) & (i >= 6) & (i <= 41)
    drawn = draw(scene, "rod", rod, (slice(None), slice(None), slice(6, 42, 5)))
    assert interpolation_axis(volume, "sagittal") == 0  # i runs along R (negated L) on this grid
    fill_between_slices(session, segmentation, volume, ["rod"], axis="k")  # drawn across i: nothing to do along k
    assert np.array_equal(mask_of(scene, "rod"), drawn)
    fill_between_slices(session, segmentation, volume, "rod", axis="sagittal")
    filled = mask_of(scene, "rod")
    assert dice(filled, rod & (i <= 41)) >= 0.95
    assert np.array_equal(filled[:, :, 6:42:5], drawn[:, :, 6:42:5])


def test_bad_input_and_cancel(scene):
    session, segmentation, volume = scene
    with pytest.raises(SegTruthError, match="no segments"):
        fill_between_slices(session, segmentation, volume)
    draw(scene, "empty", np.zeros(SHAPE, dtype=bool), (slice(None),) * 3)
    with pytest.raises(SegTruthError, match="found nothing drawn"):
        fill_between_slices(session, segmentation, volume)
    with pytest.raises(SegTruthError, match="No segment named 'liver'"):
        fill_between_slices(session, segmentation, volume, ["liver"])
    with pytest.raises(SegTruthError, match="Unknown slice axis 'oblique'"):
        fill_between_slices(session, segmentation, volume, axis="oblique")
    with pytest.raises(SegTruthError, match="Unknown slice axis 3"):
        fill_between_slices(session, segmentation, volume, axis=3)
    cylinder, _ball = shapes()
    drawn = draw(scene, "cylinder", cylinder, (slice(5, 36, 10), slice(None), slice(None)))
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        fill_between_slices(session, segmentation, volume, ["cylinder"], cancel=token)
    assert np.array_equal(mask_of(scene, "cylinder"), drawn)  # nothing written


def test_a_headless_process_that_filled_exits_cleanly(tmp_path):
    """Run in-process, Slicer's interpolator makes this very script segfault at exit (8 of 8 runs here)."""
    script = tmp_path / "fill.py"
    script.write_text(
        textwrap.dedent(
            """
            import numpy as np
            from SegTruthLogic import Session
            from SegTruthLogic.scene.segments import add_segment, new_segmentation, segment_mask, set_segment_mask
            from SegTruthLogic.tools.fill_between import fill_between_slices
            from SegTruthLogic.scene.volumes import volume_from_array
            from SegTruthLogic.core.geometry import Grid

            session = Session.new_headless()
            volume = volume_from_array(session, np.zeros((30, 40, 40), np.int16), Grid((40, 40, 30), np.eye(4)))
            segmentation = new_segmentation(session, volume)
            segment = add_segment(segmentation, "cylinder")
            k, j, i = np.mgrid[:30, :40, :40]
            drawn = ((j - 20) ** 2 + (i - 20) ** 2 <= 100) & (k % 5 == 0) & (k >= 5) & (k <= 25)
            set_segment_mask(session, segmentation, segment, drawn, volume)
            fill_between_slices(session, segmentation, volume)
            print(int(segment_mask(session, segmentation, segment, volume).sum()))
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(21 * 317)  # 21 slices of the 317-voxel disc
