"""The new editing tools from the command line and in recipes: each command's result equals the tool
function's on the same case, written on the image's exact grid."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import write_volume

from SegTruthLogic.cli import main

SHAPE = (20, 30, 40)  # k, j, i; spacing 1 x 1 x 2, origin 0: LPS (i, j, 2k), RAS (-i, -j, 2k)


@pytest.fixture
def boxes(tmp_path):
    values = np.zeros(SHAPE, np.int16)
    values[4:14, 5:20, 5:15] = 100  # 10 x 15 x 10 = 1500 voxels
    values[4:14, 5:20, 25:35] = 200
    labels = np.zeros(SHAPE, np.uint8)
    labels[4:14, 5:20, 5:15] = 1
    labels[4:14, 5:20, 25:35] = 2
    labels[9, 12, 3] = 1  # a spike off box 1
    image = write_volume(tmp_path / "ct.nrrd", values, (1.0, 1.0, 2.0))
    seg = write_volume(tmp_path / "labels.nii.gz", labels, (1.0, 1.0, 2.0))
    return image, seg, values, labels


def run(*argv) -> np.ndarray:
    assert main([str(a) for a in argv] + ["-q"]) == 0
    out = argv[argv.index("-o") + 1]
    return sitk.GetArrayFromImage(sitk.ReadImage(str(out)))


def test_smooth_and_hollow(tmp_path, boxes):
    image, seg, _values, labels = boxes
    out = run("smooth", image, seg, "--method", "opening", "--kernel-mm", "3", "-o", tmp_path / "s.nii.gz")
    box = labels.copy()
    box[9, 12, 3] = 0
    np.testing.assert_array_equal(out, box)  # the spike is gone, the boxes stay
    out = run(
        "hollow",
        image,
        seg,
        "--thickness",
        "2",
        "--mode",
        "outside_surface",
        "--segment",
        "Label 2",
        "-o",
        tmp_path / "h.nii.gz",
    )
    # box 2 (10 i x 15 j x 10 k, k spacing 2 mm): two voxels in along i and j, one along k
    assert int((out == 2).sum()) == 10 * 15 * 10 - 6 * 11 * 8
    assert int((out == 1).sum()) == int((labels == 1).sum())


def test_watershed_flood_fill_and_local_threshold(tmp_path, boxes):
    image, _seg, values, _labels = boxes
    seeds = np.zeros(SHAPE, np.uint8)
    seeds[9, 12, 10] = 1
    seeds[0, 0, 0] = 2
    seed_file = write_volume(tmp_path / "seeds.nii.gz", seeds, (1.0, 1.0, 2.0))
    out = run("watershed", image, seed_file, "--object-scale", "1", "-o", tmp_path / "w.nii.gz")
    assert set(np.unique(out)) == {1, 2} and (out == 1)[values == 100].mean() > 0.5
    # RAS of voxel (i, j, k) = (10, 12, 9): (-10, -12, 18)
    out = run("flood-fill", image, "--at=-10,-12,18", "--neighbourhood-mm", "0", "-o", tmp_path / "f.nii.gz")
    np.testing.assert_array_equal(out != 0, values == 100)
    out = run("local-threshold", image, "--at=-30,-12,18", "--range", "150", "250", "-o", tmp_path / "l.nii.gz")
    np.testing.assert_array_equal(out != 0, values == 200)


def test_fast_marching_and_scissors(tmp_path, boxes):
    image, _seg, values, _labels = boxes
    seeds = np.zeros(SHAPE, np.uint8)
    seeds[9, 12, 10] = 1
    seed_file = write_volume(tmp_path / "seeds.nii.gz", seeds, (1.0, 1.0, 2.0))
    percent = 100 * 1500 / values.size
    out = run(
        "fast-marching", image, seed_file, "--segment", "Label 1", "--max-volume", percent, "-o", tmp_path / "m.nii.gz"
    )
    np.testing.assert_array_equal(out != 0, values == 100)  # the box's edge holds the front
    # an axial square (RAS z = 18: slice k = 9) around i 5..14, j 5..19: RAS x -14.5..-4.5, y -19.5..-4.5
    square = "--polygon=-14.5,-19.5,18;-4.5,-19.5,18;-4.5,-4.5,18;-14.5,-4.5,18"
    out = run(
        "scissors",
        image,
        tmp_path / "m.nii.gz",
        "--segment",
        "Label 1",
        square,
        "--reach",
        "slice",
        "-o",
        tmp_path / "c.nii.gz",
    )
    expected = values == 100
    expected[9] = False
    np.testing.assert_array_equal(out != 0, expected)


def test_a_recipe_runs_the_new_steps(tmp_path, boxes):
    image, _seg, values, _labels = boxes
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        """
steps:
  - flood_fill: {segment: box, ras: [-10, -12, 18], neighbourhood_mm: 0}
  - smooth: {segment: box, method: closing, kernel_mm: 3}
  - hollow: {segment: box, thickness_mm: 2, mode: outside_surface}
  - scissors: {segment: box, polygon: [[-14.5, -19.5, 18], [-4.5, -19.5, 18], [-4.5, -4.5, 18]], reach: all}
outputs: [box.nii.gz]
""",
        encoding="utf-8",
    )
    assert main(["run", str(recipe), str(image), "-o", str(tmp_path / "out"), "-q"]) == 0
    out = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "box.nii.gz")))
    shell = values == 100
    shell[5:13, 7:18, 7:13] = False  # inner box two voxels in along i, j and one along k
    assert 0 < int((out != 0).sum()) < int(shell.sum())  # the triangle cut through every slice
    assert not (out != 0)[~shell].any()
