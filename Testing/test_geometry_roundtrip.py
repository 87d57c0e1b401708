"""Property tests: any grid in, the same grid out, and every label where numpy says it belongs.

Random oblique, anisotropic, offset and left-handed volumes are written by SimpleITK, loaded by Slicer
(which flips left-handed ones), thresholded by Slicer's segment editor logic and exported. The exports are
read back by SimpleITK and nibabel, two independent readers, and compared with the input file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from conftest import write_volume
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from SegTruthLogic import Session
from SegTruthLogic.core.geometry import LPS_TO_RAS, Grid
from SegTruthLogic.scene.export import export
from SegTruthLogic.scene.segments import new_segmentation
from SegTruthLogic.scene.volumes import load_volume
from SegTruthLogic.tools.threshold import threshold


def rotation(quaternion: tuple[float, float, float, float]) -> np.ndarray:
    w, x, y, z = np.array(quaternion) / np.linalg.norm(quaternion)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


@st.composite
def directions(draw) -> np.ndarray:
    """A random rotation, or a signed axis permutation (how most real scans are stored); maybe left-handed."""
    if draw(st.booleans()):
        quaternion = draw(
            st.tuples(*[st.floats(-1, 1, allow_subnormal=False)] * 4).filter(lambda q: np.linalg.norm(q) > 0.2)
        )
        matrix = rotation(quaternion)
        matrix[np.abs(matrix) < 1e-12] = 0.0  # no subnormal cosines: no scanner writes them, and ITK misindexes them
    else:
        matrix = np.eye(3)[draw(st.permutations([0, 1, 2]))]
        matrix = matrix * np.array(draw(st.tuples(*[st.sampled_from([-1.0, 1.0])] * 3)))
    if draw(st.booleans()) != (np.linalg.det(matrix) < 0):
        matrix[:, draw(st.integers(0, 2))] *= -1  # make it left-handed (or right-handed again)
    return matrix


@st.composite
def volumes(draw) -> dict:
    size = (draw(st.integers(2, 12)), draw(st.integers(2, 14)), draw(st.integers(2, 10)))  # i, j, k
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.int16, np.float32]))
    values = rng.integers(-100, 100, size[::-1]) if dtype is np.int16 else rng.normal(0, 50, size[::-1])
    values = values.astype(dtype)
    flat = np.sort(values.ravel())
    lo_index = draw(st.integers(0, flat.size - 1))
    hi_index = draw(st.integers(lo_index, flat.size - 1))
    return {
        "array": values,
        "spacing": tuple(draw(st.floats(0.3, 4.0)) for _ in range(3)),
        "origin": tuple(draw(st.floats(-200, 200)) for _ in range(3)),
        "direction": draw(directions()),
        "range": (float(flat[lo_index]), float(flat[hi_index])),
        "suffix": draw(st.sampled_from([".nii.gz", ".nrrd"])),
    }


def assert_same_geometry(image: sitk.Image, reference: sitk.Image, tolerance: float) -> None:
    """Same size; origin, spacing (mm) and direction cosines equal within the formats' precision."""
    assert image.GetSize() == reference.GetSize()
    assert np.allclose(image.GetOrigin(), reference.GetOrigin(), rtol=tolerance, atol=tolerance)
    assert np.allclose(image.GetSpacing(), reference.GetSpacing(), rtol=tolerance, atol=tolerance)
    assert np.allclose(image.GetDirection(), reference.GetDirection(), atol=tolerance)
    assert Grid.from_sitk(image).same_as(Grid.from_sitk(reference), tolerance=100 * tolerance)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(volumes())
def test_threshold_export_round_trip(case: dict) -> None:
    session = Session.new_headless()
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        source = write_volume(
            folder / f"input{case['suffix']}",
            case["array"],
            spacing=case["spacing"],
            origin=case["origin"],
            direction=tuple(case["direction"].ravel()),
        )
        original = sitk.ReadImage(str(source))  # the file as stored (NIfTI rounds geometry to float32)
        values = sitk.GetArrayFromImage(original)
        lo, hi = case["range"]
        expected = (values >= lo) & (values <= hi)

        volume = load_volume(session, source)
        segmentation = new_segmentation(session, volume)
        threshold(session, segmentation, volume, "inside", lo, hi)

        for suffix in (".nii.gz", ".nrrd"):
            written = export(session, segmentation, volume, folder / f"labels{suffix}")
            image = sitk.ReadImage(str(written))
            precise = suffix == ".nrrd" and case["suffix"] == ".nrrd"
            assert_same_geometry(image, original, 1e-9 if precise else 1e-5)
            labels = sitk.GetArrayFromImage(image)
            assert np.array_equal(labels != 0, expected)
            assert set(np.unique(labels)) <= {0, 1}

        check_with_nibabel(folder / "labels.nii.gz", original, expected, lo, hi)
        assert sorted(p.name for p in folder.iterdir()) == sorted([source.name, "labels.nii.gz", "labels.nrrd"])


def check_with_nibabel(path: Path, original: sitk.Image, expected: np.ndarray, lo: float, hi: float) -> None:
    """nibabel's (i, j, k) array and RAS affine agree with the input file, voxel by voxel and in world space."""
    image = nib.load(str(path))
    data = np.asanyarray(image.dataobj)
    assert data.shape == original.GetSize()
    assert np.array_equal(data.transpose(2, 1, 0) != 0, expected)
    affine = image.affine
    ijk_to_ras = Grid.from_sitk(original).ijk_to_ras
    assert np.allclose(affine, ijk_to_ras, atol=1e-4, rtol=1e-5)
    values = sitk.GetArrayViewFromImage(original)
    labelled = np.argwhere(data != 0)
    for i, j, k in labelled[:: max(1, len(labelled) // 5)]:
        ras = affine @ np.array([i, j, k, 1.0])
        lps = (LPS_TO_RAS @ ras)[:3]
        # The same world position in the input file is the same voxel, and its value is in the range.
        assert original.TransformPhysicalPointToIndex(tuple(float(c) for c in lps)) == (i, j, k)
        assert np.allclose(original.TransformIndexToPhysicalPoint((int(i), int(j), int(k))), lps, atol=1e-3)
        assert lo <= values[k, j, i] <= hi
