"""Reduced precision: chosen only where the processor computes it natively, forced off on request, and the
network (only the network) really runs in it; the outputs are still accumulated in float32.

Agreement with nnUNetPredictor in both precisions is in test_inference_nnunet.py.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="model inference needs PyTorch (pip install -c constraints.txt torch)")

import numpy as np
import SimpleITK as sitk
import torch
from inference_helpers import run_cli, write_bright_model

from SegTruthLogic import SegTruthError
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.inference import load_model, predict
from SegTruthLogic.inference.precision import (
    ENVIRONMENT,
    choose_precision,
    cpu_flags,
    cpu_supports_bfloat16,
    has_3d_convolutions,
    onednn_bfloat16,
)
from SegTruthLogic.inference.sliding_window import SlidingWindow

CPU = torch.device("cpu")
CUDA = torch.device("cuda")  # a device name only: choose_precision asks CUDA nothing unless bfloat16 is asked for


class TwoConvs(torch.nn.Module):
    """3D convolutions that record the dtype and layout of what they compute: the first reads the image."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.first = torch.nn.Conv3d(1, 8, 3, padding=1)
        self.middle = torch.nn.Conv3d(8, 8, 3, padding=1)
        self.last = torch.nn.Conv3d(8, 2, 1)
        self.seen: list[tuple[torch.dtype, bool]] = []
        self.seen_first: list[torch.dtype] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        read = self.first(x)
        self.seen_first.append(read.dtype)
        hidden = torch.relu(self.middle(torch.relu(read)))
        self.seen.append((hidden.dtype, hidden.is_contiguous(memory_format=torch.channels_last_3d)))
        return self.last(hidden)


class Flat(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@pytest.fixture(autouse=True)
def no_environment(monkeypatch):
    monkeypatch.delenv(ENVIRONMENT, raising=False)


# -- the choice ------------------------------------------------------------------------------------------------
def test_auto_uses_bfloat16_for_3d_networks_only_where_the_cpu_has_it():
    chosen = choose_precision("auto", CPU, TwoConvs(), cpu_bfloat16=True)
    assert (chosen.name, chosen.channels_last, chosen.reduced) == ("bfloat16", True, True)
    assert chosen.dtype == torch.bfloat16
    without = choose_precision("auto", CPU, TwoConvs(), cpu_bfloat16=False)
    assert (without.name, without.channels_last, without.reduced) == ("float32", False, False)
    assert "no native bfloat16" in without.reason
    flat = choose_precision("auto", CPU, Flat(), cpu_bfloat16=True)  # 2D: float32 unless forced
    assert flat.name == "float32" and "not a 3D" in flat.reason
    assert choose_precision(None, CPU, TwoConvs(), cpu_bfloat16=True).name == "bfloat16"  # None: auto


def test_float32_can_be_forced_and_bfloat16_asked_for():
    forced = choose_precision("float32", CPU, TwoConvs(), cpu_bfloat16=True)
    assert (forced.name, forced.channels_last) == ("float32", False)
    assert choose_precision("float32", CUDA, TwoConvs()).name == "float32"
    emulated = choose_precision("bfloat16", CPU, TwoConvs(), cpu_bfloat16=False)
    assert emulated.name == "bfloat16" and "emulated" in emulated.reason
    assert choose_precision("bfloat16", CPU, Flat(), cpu_bfloat16=True).channels_last is False


def test_gpu_choices():
    assert choose_precision("auto", CUDA, TwoConvs()).name == "float16"
    assert choose_precision("bfloat16", CUDA, TwoConvs(), cuda_bfloat16=True).name == "bfloat16"
    with pytest.raises(SegTruthError, match="no bfloat16 arithmetic"):
        choose_precision("bfloat16", CUDA, TwoConvs(), cuda_bfloat16=False)
    with pytest.raises(SegTruthError, match="float16 is for GPUs"):
        choose_precision("float16", CPU, TwoConvs(), cpu_bfloat16=True)
    assert choose_precision("auto", torch.device("mps"), TwoConvs()).name == "float32"


def test_environment_variable_and_bad_names(monkeypatch):
    monkeypatch.setenv(ENVIRONMENT, "float32")
    assert choose_precision(None, CPU, TwoConvs(), cpu_bfloat16=True).name == "float32"
    assert choose_precision("bfloat16", CPU, TwoConvs(), cpu_bfloat16=True).name == "bfloat16"  # argument wins
    monkeypatch.setenv(ENVIRONMENT, "half")
    with pytest.raises(SegTruthError, match=r"Unknown precision SEGTRUTH_PRECISION='half'"):
        choose_precision(None, CPU, TwoConvs())
    with pytest.raises(SegTruthError, match=r"Unknown precision 'double'"):
        choose_precision("double", CPU, TwoConvs())


def test_capability_needs_the_instructions_and_onednn():
    assert cpu_supports_bfloat16(frozenset({"sse2", "avx512f", "avx512_bf16"}), onednn=True)
    assert cpu_supports_bfloat16(frozenset({"amx_bf16", "amx_tile"}), onednn=True)
    assert cpu_supports_bfloat16(frozenset({"fp", "asimd", "bf16"}), onednn=True)  # Arm's Features line
    assert not cpu_supports_bfloat16(frozenset({"sse2", "avx2", "avx512f"}), onednn=True)
    assert not cpu_supports_bfloat16(frozenset({"avx512_bf16"}), onednn=False)
    # this machine: what /proc/cpuinfo and this PyTorch say
    native = bool({"avx512_bf16", "amx_bf16", "bf16"} & cpu_flags()) and onednn_bfloat16()
    assert cpu_supports_bfloat16() == native
    assert choose_precision("auto", CPU, TwoConvs()).name == ("bfloat16" if native else "float32")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_scripted_networks_are_recognised_as_3d():
    assert has_3d_convolutions(TwoConvs())
    assert has_3d_convolutions(torch.jit.script(torch.nn.Sequential(torch.nn.Conv3d(1, 2, 3), torch.nn.ReLU())))
    assert not has_3d_convolutions(torch.jit.script(Flat()))
    assert not has_3d_convolutions(None)


# -- the real path ---------------------------------------------------------------------------------------------
def _run(precision: str) -> tuple[torch.Tensor, TwoConvs, SlidingWindow]:
    network = TwoConvs().eval()
    image = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 30, 26, 22)).astype(np.float32))
    window = SlidingWindow((16, 16, 16), out_channels=2, precision=precision)
    return window.run(image, lambda: [network], 1, CPU), network, window


def test_bfloat16_runs_the_network_in_bfloat16_and_accumulates_in_float32():
    full, network, window = _run("float32")
    assert window.used_precision.name == "float32"
    assert set(network.seen) == {(torch.float32, False)}
    assert set(network.seen_first) == {torch.float32}
    reduced, network, window = _run("bfloat16")
    assert window.used_precision.name == "bfloat16"
    assert set(network.seen) == {(torch.bfloat16, True)}  # every tile, channels-last
    assert set(network.seen_first) == {torch.float32}  # the convolution reading the image stays in float32
    assert network.first.weight.is_contiguous()  # the layout is undone afterwards
    assert "forward" not in vars(network.first)  # and so is its float32 forward
    assert reduced.dtype == torch.float32 and full.dtype == torch.float32
    assert not torch.equal(reduced, full)  # really another arithmetic...
    scale = float(full.abs().max())
    assert float((reduced - full).abs().max()) < 0.02 * scale  # ...within bfloat16's rounding


class Threshold(torch.nn.Module):
    """Class 1 where the image is above 2, class 0 below: the image passes through a bfloat16 convolution, whose
    rounding (0.016 at 2) changes the label of voxels within a few thousandths of 2."""

    def __init__(self) -> None:
        super().__init__()
        self.read = torch.nn.Conv3d(1, 8, 1)  # reads the image: float32
        self.mix = torch.nn.Conv3d(8, 8, 1)  # bfloat16 under autocast
        self.out = torch.nn.Conv3d(8, 2, 1)
        with torch.no_grad():
            for conv in (self.read, self.mix, self.out):
                conv.bias.zero_()
            self.read.weight.fill_(1.0)
            self.mix.weight.copy_(torch.eye(8).reshape(8, 8, 1, 1, 1))
            self.out.weight.zero_()
            self.out.weight[1] = 1.0 / 8  # class 1: the image; class 0: 2
            self.out.bias[0] = 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.mix(self.read(x)))


def _ramp() -> torch.Tensor:
    """Values rising by 0.02 a slice along the first axis through 2 at slice 19.5, jittered by +-0.005."""
    z = np.arange(40, dtype=np.float64)[:, None, None]
    jitter = np.random.default_rng(1).uniform(-0.005, 0.005, (40, 24, 24))
    return torch.from_numpy((2.0 + (z - 19.5) * 0.02 + jitter).astype(np.float32))[None]


def test_auto_recomputes_the_tiles_near_a_tie_in_float32_and_gets_float32_labels(monkeypatch):
    monkeypatch.setattr("SegTruthLogic.inference.precision.cpu_supports_bfloat16", lambda *a, **k: True)
    network, image = Threshold().eval(), _ramp()

    def run(precision: str) -> tuple[torch.Tensor, SlidingWindow]:
        window = SlidingWindow((16, 16, 16), out_channels=2, precision=precision, near_tie=0.05, notices=[])
        return window.run(image, lambda: [network], 1, CPU), window

    full, _ = run("float32")
    reduced, plain = run("bfloat16")
    assert plain.refined is None  # bfloat16 asked for: no second pass
    changed = int((reduced.argmax(0) != full.argmax(0)).sum())
    assert changed > 0  # bfloat16 alone changes labels next to 2 ...
    error = float((reduced - full).abs().max())
    assert error < 0.05  # ... by less than the near tie
    refined, window = run("auto")
    assert window.used_precision.name == "bfloat16" and window.used_precision.refine
    assert window.refined == (8, 16)  # the tiles over slices 17-22 of 40 (2 of 4 along that axis), not the others
    assert torch.equal(refined.argmax(0), full.argmax(0))  # every label is float32's
    near = (reduced.max(0).values - reduced.min(0).values) < 0.05
    assert int(near.sum()) > 0 and torch.equal(refined[:, near], full[:, near])  # bit for bit at the near ties
    untouched = torch.zeros(image.shape[1:], dtype=torch.bool)
    untouched[32:] = True  # slices only the last tile along that axis covers: not recomputed
    assert torch.equal(refined[:, untouched], reduced[:, untouched])
    assert window.notices is not None and window.notices[0].startswith("float32 again for 8 of 16 tiles")


def test_predict_reports_its_precision_and_the_environment_switch(tmp_path, monkeypatch):
    model = load_model(write_bright_model(tmp_path / "bright"))
    image = np.random.default_rng(0).random((12, 14, 16)).astype(np.float32)
    grid = Grid((16, 14, 12), np.eye(4))
    # a pointwise scripted network without 3D convolutions: auto keeps float32
    assert predict(model, [image], grid, "cpu").precision == "float32"
    forced = predict(model, [image], grid, "cpu", precision="bfloat16")
    assert forced.precision == "bfloat16"
    monkeypatch.setenv(ENVIRONMENT, "bfloat16")
    assert predict(model, [image], grid, "cpu").precision == "bfloat16"
    monkeypatch.setenv(ENVIRONMENT, "float32")
    assert predict(model, [image], grid, "cpu").precision == "float32"


def test_cli_precision_switch_and_a_bad_environment(tmp_path, monkeypatch, capsys):
    card = write_bright_model(tmp_path / "bright")
    array = np.zeros((12, 14, 16), np.float32)
    array[3:9, 4:10, 5:11] = 1.0
    image = tmp_path / "image.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(array), str(image))
    out = tmp_path / "out.nii.gz"
    assert run_cli("segment", image, "--model", card, "-o", out, "--device", "cpu", "--precision", "float32", "-q") == 0
    assert int((sitk.GetArrayFromImage(sitk.ReadImage(str(out))) == 7).sum()) == 6 * 6 * 6
    monkeypatch.setenv(ENVIRONMENT, "quarter")
    capsys.readouterr()
    assert run_cli("segment", image, "--model", card, "-o", tmp_path / "other.nii.gz", "--device", "cpu", "-q") == 1
    assert "Unknown precision SEGTRUTH_PRECISION='quarter'" in capsys.readouterr().err
    assert not (tmp_path / "other.nii.gz").exists()
