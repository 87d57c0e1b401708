"""The engine on models whose right answer is known: tiling, blending, geometry, fallback, cancel, determinism."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="model inference needs PyTorch (pip install -c constraints.txt torch)")

import numpy as np
import SimpleITK as sitk
import torch
from conftest import write_volume
from inference_helpers import Bright, write_bright_model
from scipy import ndimage

from SegTruthLogic import Cancelled, SegTruthError
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.core.metrics import dice
from SegTruthLogic.core.progress import CancelToken
from SegTruthLogic.inference import load_model, predict, segment
from SegTruthLogic.inference.resampling import _nearest_index, resize
from SegTruthLogic.inference.sliding_window import Attempt, SlidingWindow, fallback_chain, tile_starts
from SegTruthLogic.scene.export import export
from SegTruthLogic.scene.volumes import load_volume


def blobs(shape, seed=0) -> np.ndarray:
    """Smooth random blobs in [0, 1] with values well away from 0.5 at most voxels."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=shape), 3)
    return ((field - field.min()) / (field.max() - field.min())).astype(np.float32)


def test_tile_positions_cover_the_axis_evenly():
    assert tile_starts(100, 40, 0.5) == [0, 20, 40, 60]
    assert tile_starts(40, 40, 0.5) == [0]
    assert tile_starts(30, 40, 0.5) == [0]
    starts = tile_starts(97, 32, 0.5)
    assert starts[0] == 0 and starts[-1] == 97 - 32
    assert max(np.diff(starts)) <= 16


def test_blended_tiles_equal_the_whole_volume_for_a_pointwise_network():
    image = torch.from_numpy(blobs((37, 45, 29)))[None]
    window = SlidingWindow(patch_size=(16, 20, 12), out_channels=2)
    tiled = window.run(image, lambda: [Bright()], 1, torch.device("cpu"))
    assert torch.allclose(tiled, Bright()(image[None])[0], atol=1e-5)


def test_two_d_patches_run_slice_by_slice():
    image = torch.from_numpy(blobs((5, 30, 30)))[None]
    window = SlidingWindow(patch_size=(16, 16), out_channels=2)
    tiled = window.run(image, lambda: [Bright()], 1, torch.device("cpu"))
    assert tiled.shape == (2, 5, 30, 30)
    assert torch.allclose(tiled, Bright()(image[None])[0], atol=1e-5)


def test_linear_resize_equals_order_one_splines():
    data = np.random.default_rng(1).normal(size=(2, 11, 17, 9)).astype(np.float32)
    ours = resize(torch.from_numpy(data), (23, 13, 20), order=1)
    for c in range(2):
        expected = ndimage.zoom(
            data[c].astype(float), (23 / 11, 13 / 17, 20 / 9), order=1, mode="nearest", grid_mode=True
        )
        assert np.allclose(ours[c], expected, atol=1e-5)


def test_nearest_slices_equal_order_zero_map_coordinates():
    for old, new in ((7, 19), (19, 7), (10, 25)):
        coords = old / new * (np.arange(new) + 0.5) - 0.5
        expected = ndimage.map_coordinates(np.arange(old, dtype=float), [coords], order=0, mode="nearest")
        assert np.array_equal(_nearest_index(old, new), expected.astype(int))


GEOMETRIES = {
    "oblique": dict(spacing=(0.9, 1.1, 1.3), direction=tuple(sitk.VersorTransform((1, 2, 3), 0.4).GetMatrix())),
    "anisotropic": dict(spacing=(0.4, 0.4, 5.0), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)),
    "lefthanded": dict(spacing=(1.0, 1.2, 2.0), direction=(-1, 0, 0, 0, 1, 0, 0, 0, 1)),
    "flipped_axes": dict(spacing=(1.0, 1.0, 1.0), direction=(0, 0, -1, 1, 0, 0, 0, -1, 0)),
}


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_masks_are_aligned_with_the_image(session, tmp_path, name):
    """Reorientation and tiling only move voxels: the mask is exactly 'image > 0.5' on the file's own grid."""
    array = blobs((24, 30, 26), seed=3)
    path = write_volume(tmp_path / f"{name}.nrrd", array, origin=(-5.0, 12.0, 40.0), **GEOMETRIES[name])
    model = load_model(write_bright_model(tmp_path / "model"))
    volume = load_volume(session, path)
    segmentation = segment(session, None, volume, model, device="cpu")
    out = export(session, segmentation, volume, tmp_path / "mask.nii.gz", model.card.labels)
    written = sitk.ReadImage(str(out))
    assert Grid.from_sitk(written).same_as(Grid.from_sitk(sitk.ReadImage(str(path))))
    labels = sitk.GetArrayFromImage(written)
    assert set(np.unique(labels)) == {0, 7}
    assert np.array_equal(labels == 7, array > 0.5)


@pytest.mark.parametrize("name", ["anisotropic", "oblique"])
def test_resampled_masks_stay_aligned(session, tmp_path, name):
    """With resampling to 1 mm the mask is interpolated, but it stays where the bright voxels are."""
    array = blobs((24, 30, 26), seed=5)
    path = write_volume(tmp_path / f"{name}.nii.gz", array, origin=(3.0, -7.0, 1.0), **GEOMETRIES[name])
    card = write_bright_model(tmp_path / "model", preprocessing={"spacing": [1.0, 1.0, 1.0], "interpolation": "linear"})
    volume = load_volume(session, path)
    model = load_model(card)
    result = predict(
        model, [sitk.GetArrayFromImage(sitk.ReadImage(str(path)))], Grid.from_sitk(sitk.ReadImage(str(path))), "cpu"
    )
    truth = array > 0.5
    assert dice(result.labels == 7, truth) > 0.93
    centre = np.array(ndimage.center_of_mass(result.labels == 7)) - np.array(ndimage.center_of_mass(truth))
    assert np.abs(centre).max() < 0.5  # voxels
    segment(session, None, volume, model, device="cpu")


def test_out_of_memory_falls_back_and_says_so():
    """An injected allocator failure for batches above one: the run retries smaller and gives the same output."""
    image = torch.from_numpy(blobs((30, 30, 30)))[None]

    class Starved(torch.nn.Module):
        def forward(self, x):
            if x.shape[0] > 1:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return Bright()(x)

    notices: list[str] = []
    messages: list[str] = []
    window = SlidingWindow(
        patch_size=(16, 16, 16), out_channels=2, batch_size=4, notices=notices, progress=lambda f, m: messages.append(m)
    )
    out = window.run(image, lambda: [Starved()], 1, torch.device("cpu"))
    assert torch.allclose(out, Bright()(image[None])[0], atol=1e-5)
    assert notices == [
        "out of memory with cpu, batch 4, accumulation on CPU; retrying with cpu, batch 2, accumulation on CPU",
        "out of memory with cpu, batch 2, accumulation on CPU; retrying with cpu, batch 1, accumulation on CPU",
    ]
    assert notices[0] in messages


def test_fallback_chain_for_a_gpu_ends_on_the_cpu():
    chain = fallback_chain(Attempt(torch.device("cuda"), 4, True))
    assert [a.describe() for a in chain] == [
        "cuda, batch 4, accumulation on device",
        "cuda, batch 2, accumulation on device",
        "cuda, batch 1, accumulation on device",
        "cuda, batch 1, accumulation on CPU",
        "cpu, batch 1, accumulation on CPU",
    ]


def test_out_of_memory_everywhere_is_a_clear_error():
    class Broke(torch.nn.Module):
        def forward(self, x):
            raise torch.OutOfMemoryError("out of memory")

    window = SlidingWindow(patch_size=(8, 8, 8), out_channels=2)
    with pytest.raises(SegTruthError, match="ran out of memory even with"):
        window.run(torch.zeros(1, 10, 10, 10), lambda: [Broke()], 1, torch.device("cpu"))


def test_cancel_stops_between_tiles_and_writes_nothing(session, tmp_path):
    path = write_volume(tmp_path / "image.nii.gz", blobs((40, 40, 40)))
    model = load_model(write_bright_model(tmp_path / "model"))
    volume = load_volume(session, path)
    token = CancelToken()
    seen: list[float] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(fraction)
        if "tile 2/" in message:
            token.cancel()

    before = session.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")
    with pytest.raises(Cancelled):
        segment(session, None, volume, model, device="cpu", progress=progress, cancel=token)
    assert session.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == before
    assert seen and max(seen) < 0.9


def test_same_input_same_output(tmp_path):
    array = blobs((30, 34, 28), seed=9)
    grid = Grid((28, 34, 30), np.diag([0.8, 0.8, 2.0, 1.0]))
    model = load_model(write_bright_model(tmp_path / "model", preprocessing={"spacing": [1.0, 1.0, 1.0]}))
    first = predict(model, [array], grid, "cpu", tta=True)
    second = predict(model, [array], grid, "cpu", tta=True)
    assert np.array_equal(first.labels, second.labels)


def test_progress_is_reported_from_zero_to_one(tmp_path):
    array = blobs((30, 30, 30))
    model = load_model(write_bright_model(tmp_path / "model"))
    seen: list[tuple[float, str]] = []
    predict(model, [array], Grid((30, 30, 30), np.eye(4)), "cpu", progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert any("tile" in m for _, m in seen)


def test_outputs_too_large_for_ram_accumulate_in_half_precision():
    image = torch.from_numpy(blobs((20, 24, 28)))[None]
    notices: list[str] = []
    window = SlidingWindow((16, 16, 16), out_channels=2, ram_accumulator_budget=1, notices=notices)
    out = window.run(image, lambda: [Bright()], 1, torch.device("cpu"))
    assert out.dtype == torch.float32
    assert torch.allclose(out, Bright()(image[None])[0], atol=2e-2)  # float16 sums of weights up to ~80
    assert notices == ["0.0 GiB of outputs: accumulating in float16 to fit in memory"]
