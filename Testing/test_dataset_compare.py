"""Comparing segmentations: metrics on two spheres with known overlap and surface distances, on an anisotropic,
oblique grid; other grids resampled explicitly and said so."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from dataset_support import OBLIQUE, run, write_image

from SegTruthLogic import SegTruthError, Session
from SegTruthLogic.dataset.compare import compare_segmentations
from SegTruthLogic.dataset.surface import surface_distances

pytest.importorskip("scipy", reason="surface distances use scipy's k-d tree")

SPACING = (0.5, 0.5, 0.8)  # (i, j, k) mm
RADIUS, OFFSET = 20.0, 8.0  # mm; offset along a direction that is not a voxel axis
DIRECTION = np.array([0.6, 0.0, 0.8])


def spheres(radius_b: float = RADIUS, offset: float = OFFSET) -> tuple[np.ndarray, np.ndarray]:
    size = int((2 * RADIUS + OFFSET + 8) / min(SPACING))
    shape = (int((2 * RADIUS + OFFSET + 8) / SPACING[2]), size, size)
    k, j, i = np.ogrid[: shape[0], : shape[1], : shape[2]]
    centre = np.array([RADIUS + 4.0] * 3)

    def ball(c, r):
        return (i * SPACING[0] - c[0]) ** 2 + (j * SPACING[1] - c[1]) ** 2 + (k * SPACING[2] - c[2]) ** 2 <= r * r

    return ball(centre, RADIUS), ball(centre + offset * DIRECTION, radius_b)


def lens_volume(r: float, d: float) -> float:
    """Volume shared by two spheres of radius r whose centres are d apart."""
    return math.pi * (4 * r + d) * (2 * r - d) ** 2 / 12


def within(value: float, expected: float, tolerance: float = 0.01) -> bool:
    return abs(value - expected) <= tolerance * abs(expected)


def test_offset_spheres_match_the_analytic_values(tmp_path):
    a, b = spheres()
    geometry = {"spacing": SPACING, "origin": (-3.0, 5.0, 11.0), "direction": OBLIQUE}
    write_image(tmp_path / "a.nii.gz", a.astype(np.uint8), geometry)
    write_image(tmp_path / "b.nrrd", b.astype(np.uint8), geometry)
    comparison = compare_segmentations(Session.new_headless(), tmp_path / "a.nii.gz", tmp_path / "b.nrrd")
    (row,) = comparison.labels
    sphere = 4 / 3 * math.pi * RADIUS**3
    shared = lens_volume(RADIUS, OFFSET)
    # A point of one sphere's surface lies |t| from the other, with t uniform on [-d, d] (area measure): the mean
    # surface distance is d/2 and the 95th percentile 0.95 d.
    assert within(row.dice, shared / sphere)
    assert within(row.iou, shared / (2 * sphere - shared))
    assert within(row.volume_a_mm3, sphere) and within(row.volume_b_mm3, sphere)
    assert within(row.msd_mm, OFFSET / 2)
    assert within(row.hd95_mm, 0.95 * OFFSET)
    assert comparison.notes == [] and comparison.resampled == []


def test_concentric_spheres_and_identical_masks():
    a, b = spheres(RADIUS - 6.0, 0.0)
    distances = surface_distances(a, b, SPACING)
    assert within(distances.mean, 6.0)
    assert within(distances.hd95, 6.0, 0.015)  # a percentile of a constant also sees the voxel noise
    same = surface_distances(a, a, SPACING)
    assert same.hd95 == same.mean == same.maximum == 0.0
    empty = surface_distances(a, np.zeros_like(a), SPACING)
    assert math.isnan(empty.hd95) and math.isnan(empty.mean)


def test_other_grid_is_resampled_and_reported(tmp_path, ct_chest, capsys):
    a, b = spheres()
    write_image(tmp_path / "a.nii.gz", (a * 1 + (b & ~a) * 2).astype(np.uint8), {"spacing": SPACING})
    coarse = b[::2, ::2, ::2]  # the same sphere on a grid twice as coarse
    write_image(
        tmp_path / "b.nii.gz",
        coarse.astype(np.uint8),
        {"spacing": tuple(2 * s for s in SPACING), "origin": (0.25, 0.25, 0.4)},
    )
    csv_path = tmp_path / "metrics.csv"
    assert run("compare", tmp_path / "a.nii.gz", tmp_path / "b.nii.gz", "--csv", csv_path) == 0
    out = capsys.readouterr().out
    assert "resampled onto that grid with nearest neighbour" in out and "differ in size" in out
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["label"] for r in rows] == ["Label 1", "Label 2"]
    assert all(r["resampled_nearest"] == "B" for r in rows)
    assert float(rows[0]["dice"]) > 0.6 and float(rows[1]["dice"]) == 0.0  # B's label 1 is the second sphere
    assert "labels only in A (Label 2)" in out


def test_real_segmentation_against_itself_and_a_shift(tmp_path, ct_chest, session):
    image, segmentation = ct_chest
    same = compare_segmentations(session, segmentation, segmentation, image=image)
    assert len(same.labels) == 7
    assert all(row.dice == 1.0 and row.hd95_mm == 0.0 for row in same.labels)
    with pytest.raises(SegTruthError, match="segmentation file not found"):
        compare_segmentations(session, segmentation, tmp_path / "none.seg.nrrd")
