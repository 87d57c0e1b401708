"""2D slices (PNG, NPZ, NIfTI) and crops: names keep case and slice index, world geometry is kept, and the same
anatomy stored in different voxel orders gives the same slices."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import SimpleITK as sitk
from dataset_support import LEFT_HANDED, header_grid, leftovers, run, synthetic_case, write_image

from SegTruthLogic import SegTruthError, Session
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.dataset.crop import box_from_labels, crop_case
from SegTruthLogic.dataset.manifest import CaseEntry
from SegTruthLogic.dataset.qc import read_png
from SegTruthLogic.dataset.slices import export_slices

GEOMETRY = {"spacing": (0.9, 0.8, 1.5), "origin": (5.0, -3.0, 7.0)}


def flipped_copy(folder, image, labels, image_array, label_array):
    """The same voxels stored left-handed: i reversed, origin at the former last column."""
    grid = header_grid(image)
    last = grid.ijk_to_ras @ np.array([grid.size[0] - 1, 0, 0, 1.0])
    origin_lps = (-last[0], -last[1], last[2])
    geometry = {"spacing": GEOMETRY["spacing"], "origin": origin_lps, "direction": LEFT_HANDED}
    return (
        write_image(folder / "flip.nii.gz", np.ascontiguousarray(image_array[:, :, ::-1]), geometry),
        write_image(folder / "flip_labels.nii.gz", np.ascontiguousarray(label_array[:, :, ::-1]), geometry),
    )


def test_png_slices_match_across_voxel_orders(tmp_path):
    image, labels, image_array, label_array = synthetic_case(tmp_path, "plain", 0, GEOMETRY)
    flip_image, flip_labels = flipped_copy(tmp_path, image, labels, image_array, label_array)
    entries = [CaseEntry("plain", (image,), labels), CaseEntry("flip", (flip_image,), flip_labels)]
    out = tmp_path / "slices"
    export_slices(Session.new_headless(), entries, out, "coronal", "png", window=(100, 600), labelled_only=True)
    rows = list(csv.DictReader((out / "slices.csv").open()))
    labelled_j = sorted({j for j in range(28) if label_array[:, j, :].any()})
    plain = [r for r in rows if r["case"] == "plain"]
    assert sorted(int(r["index"]) for r in plain) == labelled_j  # only labelled slices, source j index kept
    assert {r["file"] for r in plain} == {f"images/plain_coronal_{j:04d}.png" for j in labelled_j}
    for j in labelled_j:
        name = f"plain_coronal_{j:04d}.png"
        mask = read_png(out / "masks" / name)
        # A coronal slice of an LPS-stored volume: superior (high k) on top, patient right (low i) on the left.
        assert np.array_equal(mask, label_array[::-1, j, :])
        assert np.array_equal(read_png(out / "images" / name), read_png(out / "images" / f"flip_coronal_{j:04d}.png"))
        assert np.array_equal(mask, read_png(out / "masks" / f"flip_coronal_{j:04d}.png"))
    gray = read_png(out / "images" / f"plain_coronal_{labelled_j[0]:04d}.png")
    expected = np.clip((image_array[::-1, labelled_j[0], :].astype(float) + 200) * 255 / 600, 0, 255)
    assert np.abs(gray.astype(float) - expected).max() <= 1.0
    assert leftovers(tmp_path) == []


def test_npz_and_nifti_slices(tmp_path):
    image, labels, image_array, label_array = synthetic_case(tmp_path, "c", 1, GEOMETRY)
    assert run("slices", image, labels, "-o", tmp_path / "npz", "--format", "npz", "--view", "axial", "-q") == 0
    files = sorted((tmp_path / "npz").glob("*.npz"))
    assert len(files) == 20 and files[0].name == "c_axial_0000.npz"
    with np.load(files[5]) as data:
        assert np.array_equal(data["image"], image_array[5]) and np.array_equal(data["mask"], label_array[5])
        assert np.allclose(data["spacing"], (0.8, 0.9))
    assert run("slices", image, labels, "-o", tmp_path / "nii", "--format", "nii.gz", "--view", "sagittal", "-q") == 0
    volume = header_grid(image)
    for i in (0, 7, 23):
        written = sitk.ReadImage(str(tmp_path / "nii" / "masks" / f"c_sagittal_{i:04d}.nii.gz"))
        assert written.GetSize() == (1, 28, 20)
        assert np.array_equal(sitk.GetArrayFromImage(written)[:, :, 0], label_array[:, :, i])
        slab = Grid.from_sitk(written)  # every voxel where it was in the volume
        assert np.allclose(slab.ijk_to_ras @ [0, 3, 4, 1], volume.ijk_to_ras @ [i, 3, 4, 1], atol=1e-4)


def test_crop_keeps_world_positions(tmp_path, session):
    image, labels, image_array, label_array = synthetic_case(tmp_path, "c", 2, {**GEOMETRY, "direction": LEFT_HANDED})
    box = crop_case(
        session, image, labels, tmp_path / "img.nrrd", tmp_path / "lab.nii.gz", margin_mm=2.0, label="Label 2"
    )
    k, j, i = np.nonzero(label_array == 2)
    pad = np.ceil(2.0 / np.array(GEOMETRY["spacing"])).astype(int)
    assert box.start == (max(i.min() - pad[0], 0), max(j.min() - pad[1], 0), max(k.min() - pad[2], 0))
    cropped, source = header_grid(tmp_path / "img.nrrd"), header_grid(image)
    values = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "img.nrrd")))
    masks = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "lab.nii.gz")))
    (i0, j0, k0), (i1, j1, k1) = box.start, box.stop
    assert np.array_equal(values, image_array[k0:k1, j0:j1, i0:i1])
    assert np.array_equal(masks, label_array[k0:k1, j0:j1, i0:i1])
    assert np.allclose(cropped.ijk_to_ras @ [0, 0, 0, 1], source.ijk_to_ras @ [i0, j0, k0, 1], atol=1e-4)
    assert not cropped.right_handed  # the source file's own axes

    # A RAS region: the voxels whose centres it touches.
    corner = source.ijk_to_ras @ [3, 4, 5, 1]
    far = source.ijk_to_ras @ [10, 12, 9, 1]
    assert run("crop", image, labels, "-o", tmp_path / "roi.nii.gz", "-m", tmp_path / "roi_lab.nii.gz",
               "--roi", *corner[:3], *far[:3]) == 0  # fmt: skip
    assert sitk.ReadImage(str(tmp_path / "roi.nii.gz")).GetSize() == (8, 9, 5)
    assert run("crop", image, labels, "-o", tmp_path / "box.nii.gz", "-m", tmp_path / "box_lab.nii.gz",
               "--box", 1, 2, 3, 4, 5, 6) == 0  # fmt: skip
    assert np.array_equal(
        sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "box.nii.gz"))), image_array[5:7, 3:5, 1:3]
    )


def test_crop_errors(tmp_path, session):
    image, labels, _, label_array = synthetic_case(tmp_path, "c", 3, GEOMETRY)
    with pytest.raises(SegTruthError, match=r"not within 0\.\.23"):
        crop_case(session, image, labels, tmp_path / "a.nii.gz", tmp_path / "b.nii.gz", ((0, 0, 0), (30, 1, 1)))
    with pytest.raises(SegTruthError, match="has no label named 'liver'"):
        crop_case(session, image, labels, tmp_path / "a.nii.gz", tmp_path / "b.nii.gz", margin_mm=1, label="liver")
    with pytest.raises(SegTruthError, match="no labelled voxels"):
        box_from_labels(np.zeros_like(label_array), header_grid(image))
    with pytest.raises(SegTruthError, match="must be a labelmap"):
        crop_case(session, image, labels, tmp_path / "a.nii.gz", tmp_path / "b.seg.nrrd", margin_mm=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([image.name, labels.name])
