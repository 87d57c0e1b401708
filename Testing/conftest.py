"""Shared fixtures: a headless session on Slicer's real classes, sample data, synthetic volumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SegTruthLogic import Session
from SegTruthLogic.core.sample_data import ct_chest_paths


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests against the reference fixtures run last, so CI can make the fixtures while the others run."""
    items.sort(key=lambda item: item.get_closest_marker("reference_fixtures") is not None)


@pytest.fixture
def session() -> Session:
    return Session.new_headless()


@pytest.fixture(scope="session")
def ct_chest() -> tuple[Path, Path]:
    """slicerio's real chest CT (128x128x34) and its 7-segment reference segmentation."""
    return ct_chest_paths()


def write_volume(
    path: Path,
    array: np.ndarray,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    direction: tuple[float, ...] = (1, 0, 0, 0, 1, 0, 0, 0, 1),
) -> Path:
    """Write a (k, j, i) array as an image file with the given LPS geometry (ITK conventions)."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture
def two_boxes(tmp_path: Path) -> Path:
    """A 40x50x60 (k, j, i) int16 volume: background 0, box A = 100, box B = 200 (known voxel counts)."""
    array = np.zeros((40, 50, 60), dtype=np.int16)
    array[5:15, 10:20, 10:30] = 100  # 10*10*20 = 2000 voxels
    array[20:35, 25:45, 30:50] = 200  # 15*20*20 = 6000 voxels
    return write_volume(tmp_path / "boxes.nii.gz", array, spacing=(0.8, 0.9, 1.5), origin=(-10.0, 5.0, 20.0))
