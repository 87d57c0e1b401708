"""CUDA: same answer as the CPU with AMP, device memory bounded by the tile, and the real OOM fallback.

Skipped without CUDA (the OOM fallback chain itself is tested on the CPU in test_inference_engine.py).
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="model inference needs PyTorch (pip install -c constraints.txt torch)")

import json

import numpy as np
import SimpleITK as sitk
import torch
from inference_helpers import Bright, reference_fixtures

from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.core.metrics import dice
from SegTruthLogic.inference import load_model, predict
from SegTruthLogic.inference.formats.nnunet_network import PlainConvUNet
from SegTruthLogic.inference.sliding_window import SlidingWindow

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.reference_fixtures,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
GIB = 1 << 30


def nnunet_like_network(classes: int = 4) -> torch.nn.Module:
    """nnU-Net's default 3d_fullres U-Net for a 128^3 patch (6 stages, 32..320 features), random weights."""
    kwargs = {
        "n_stages": 6,
        "features_per_stage": [32, 64, 128, 256, 320, 320],
        "conv_op": "torch.nn.modules.conv.Conv3d",
        "kernel_sizes": [[3, 3, 3]] * 6,
        "strides": [[1, 1, 1]] + [[2, 2, 2]] * 5,
        "n_conv_per_stage": [2] * 6,
        "n_conv_per_stage_decoder": [2] * 5,
        "conv_bias": True,
        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
        "norm_op_kwargs": {"eps": 1e-5, "affine": True},
        "dropout_op": None,
        "dropout_op_kwargs": None,
        "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True},
    }
    torch.manual_seed(0)
    return PlainConvUNet(1, classes, kwargs).eval()


def test_cuda_with_amp_equals_the_cpu_and_nnunet():
    fixtures = reference_fixtures()
    folder = fixtures / json.loads((fixtures / "manifest.json").read_text())["models"]["3d_fullres"]
    model = load_model(folder)
    for case in ("large", "anisotropic"):
        image = sitk.ReadImage(str(fixtures / "nnunet" / "test" / "images" / f"{case}_0000.nii.gz"))
        array, grid = sitk.GetArrayFromImage(image), Grid.from_sitk(image)
        gpu = predict(model, [array], grid, "cuda")
        reference = sitk.GetArrayFromImage(
            sitk.ReadImage(str(fixtures / "nnunet" / "test" / "ref_3d_fullres_f01" / f"{case}.nii.gz"))
        )
        assert gpu.device == "cuda"
        for label in (1, 2):
            assert dice(gpu.labels == label, reference == label) >= 0.999


def test_cuda_runs_are_deterministic():
    image = torch.rand(1, 96, 160, 160)
    window = SlidingWindow((64, 96, 96), out_channels=4)
    network = nnunet_like_network().cuda()
    first = window.run(image, lambda: [network], 1, torch.device("cuda"))
    second = window.run(image, lambda: [network], 1, torch.device("cuda"))
    assert torch.equal(first.argmax(0), second.argmax(0))


def test_device_memory_is_bounded_by_the_tile_not_the_volume():
    """A 512x512x800 volume at batch 1 with a 128^3 nnU-Net: peak GPU memory <= 4 GiB."""
    image = torch.zeros(1, 800, 512, 512)
    image[:, 300:500, 100:400, 100:400] = 1.0
    network = nnunet_like_network(4)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    window = SlidingWindow((128, 128, 128), out_channels=4, batch_size=1)
    out = window.run(image, lambda: [network], 1, torch.device("cuda"))
    peak = torch.cuda.max_memory_allocated()
    print(f"peak GPU memory for 512x512x800 at batch 1: {peak / GIB:.2f} GiB")
    assert out.shape == (4, 800, 512, 512)
    assert peak <= 4 * GIB


def test_real_out_of_memory_falls_back(monkeypatch):
    """An allocation far beyond the GPU on the first try: the chain retries and finishes with the same output."""
    image = torch.from_numpy(np.random.default_rng(0).uniform(size=(1, 40, 40, 40)).astype(np.float32))
    calls = {"n": 0}

    class Greedy(torch.nn.Module):
        def forward(self, x):
            calls["n"] += 1
            if x.shape[0] > 1:
                torch.empty(1 << 50, dtype=torch.uint8, device=x.device)  # a real CUDA out-of-memory error
            return Bright()(x)

    notices: list[str] = []
    window = SlidingWindow((16, 16, 16), out_channels=2, batch_size=2, notices=notices)
    out = window.run(image, lambda: [Greedy()], 1, torch.device("cuda"))
    assert torch.allclose(out, Bright()(image[None])[0], atol=1e-3)
    assert notices and "out of memory with cuda, batch 2" in notices[0]


def test_image_on_the_device_and_tiles_streamed_from_pinned_memory_agree():
    """Accumulating on the GPU (the image there once) or in RAM (tiles copied on a side stream): same output."""
    image = torch.from_numpy(np.random.default_rng(1).uniform(size=(1, 50, 44, 38)).astype(np.float32))
    outputs = {}
    for where in ("device", "cpu"):
        window = SlidingWindow((16, 16, 16), out_channels=2, batch_size=2, accumulate=where, keep_on_device=True)
        outputs[where] = window.run(image, lambda: [Bright()], 1, torch.device("cuda"))
    assert outputs["device"].device.type == "cuda" and outputs["cpu"].device.type == "cpu"
    assert torch.allclose(outputs["device"].cpu(), outputs["cpu"], atol=1e-5)
    assert torch.allclose(outputs["cpu"], Bright()(image[None])[0], atol=1e-5)


@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_cuda_in_float32_and_float16_equals_nnunet(precision):
    fixtures = reference_fixtures()
    folder = fixtures / json.loads((fixtures / "manifest.json").read_text())["models"]["3d_fullres"]
    model = load_model(folder)
    image = sitk.ReadImage(str(fixtures / "nnunet" / "test" / "images" / "anisotropic_0000.nii.gz"))
    result = predict(model, [sitk.GetArrayFromImage(image)], Grid.from_sitk(image), "cuda", precision=precision)
    reference = sitk.GetArrayFromImage(
        sitk.ReadImage(str(fixtures / "nnunet" / "test" / "ref_3d_fullres_f01" / "anisotropic.nii.gz"))
    )
    assert result.precision == precision
    for label in (1, 2):
        assert dice(result.labels == label, reference == label) >= 0.999
