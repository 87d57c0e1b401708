"""The network's arithmetic: float32, or reduced precision where the processor computes it natively.

On the CPU, bfloat16 convolutions run 2-3x faster than float32 where the processor has bfloat16 instructions
(x86 AVX512-BF16 or AMX, Arm BF16) and oneDNN is present; elsewhere bfloat16 is emulated and slower, so
``auto`` keeps float32 there. ``auto`` uses bfloat16 on the CPU for 3D convolutional networks only (a 2D
network's labels agreed less: Dice 0.994-0.999; ``bfloat16`` still forces it), and then recomputes in float32
the tiles around voxels whose two best classes are within a near tie of each other (sliding_window.py), so
that its labels are float32's where bfloat16's rounding could change them. ``bfloat16`` alone skips that pass.
On CUDA, ``auto`` is float16 autocast (what nnU-Net itself runs on GPUs). Only the network runs in reduced
precision, and not its convolutions that read the image: its outputs are cast to float32 before the
Gaussian-weighted accumulation, and the resampling and the argmax stay in float32. ``float32`` forces full
precision anywhere; the ``SEGTRUTH_PRECISION`` environment variable gives the default for every run in a
process (batch workers inherit it). Imports torch only when used, so the command line's parser can list the
choices quickly.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from ..core.errors import SegTruthError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
ENVIRONMENT = "SEGTRUTH_PRECISION"
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX512-BF16, x86 AMX, Arm FEAT_BF16


@dataclass(frozen=True)
class Precision:
    """How the network runs: ``name`` is the dtype under autocast (float32: no autocast), ``channels_last``
    whether 3D convolutions get channels-last tensors (oneDNN's fastest layout for reduced precision)."""

    name: str
    channels_last: bool = False
    reason: str = ""
    refine: bool = False  # recompute in float32 the tiles around voxels whose two best classes are near a tie

    @property
    def dtype(self) -> torch.dtype:
        import torch

        return getattr(torch, self.name)

    @property
    def reduced(self) -> bool:
        return self.name != "float32"

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """Autocast for ``device`` in this precision, or nothing for float32."""
        if not self.reduced:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device.type, dtype=self.dtype)

    def describe(self) -> str:
        layout = ", channels-last" if self.channels_last else ""
        layout += ", float32 at near ties" if self.refine else ""
        return f"{self.name}{layout} ({self.reason})" if self.reason else f"{self.name}{layout}"


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The processor's feature flags as Linux lists them (empty elsewhere: no reduced precision by default)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def onednn_bfloat16() -> bool:
    """Whether this PyTorch has oneDNN (mkldnn) with its bfloat16 kernels."""
    import torch

    if not torch.backends.mkldnn.is_available():
        return False
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


def cpu_supports_bfloat16(flags: frozenset[str] | None = None, onednn: bool | None = None) -> bool:
    """Native bfloat16 arithmetic on this CPU: the instructions (``flags``) and oneDNN's kernels (``onednn``)."""
    flags = cpu_flags() if flags is None else flags
    onednn = onednn_bfloat16() if onednn is None else onednn
    return onednn and any(flag in flags for flag in _CPU_BF16_FLAGS)


def has_3d_convolutions(network: torch.nn.Module | None) -> bool:
    """Whether ``network`` convolves in 3D (TorchScript modules keep their class's name as ``original_name``)."""
    if network is None:
        return False
    return any(getattr(m, "original_name", type(m).__name__) == "Conv3d" for m in network.modules())


def choose_precision(
    requested: str | None,
    device: torch.device,
    network: torch.nn.Module | None = None,
    *,
    cpu_bfloat16: bool | None = None,
    cuda_bfloat16: bool | None = None,
) -> Precision:
    """The precision to run ``network`` in on ``device`` for ``requested`` (auto, float32, bfloat16, float16).

    ``None`` reads ``SEGTRUTH_PRECISION`` (default auto). ``cpu_bfloat16`` / ``cuda_bfloat16``: the devices'
    capabilities, detected when not given (tests pass them to fake another machine).
    """
    name = (requested or os.environ.get(ENVIRONMENT) or "auto").strip().lower()
    if name not in PRECISIONS:
        source = f"{ENVIRONMENT}={name!r}" if not requested else repr(name)
        raise SegTruthError(f"Unknown precision {source}; use one of {', '.join(PRECISIONS)}.")
    kind = device.type
    if name == "float32":
        return Precision("float32", reason="asked for")
    if kind == "cpu":
        native = cpu_supports_bfloat16() if cpu_bfloat16 is None else cpu_bfloat16
        if name == "float16":
            raise SegTruthError("Precision float16 is for GPUs; on the CPU use bfloat16 or float32.")
        three_d = has_3d_convolutions(network)
        if name == "auto" and not native:
            machine = platform.machine() or "this processor"
            return Precision("float32", reason=f"{machine} has no native bfloat16")
        if name == "auto" and not three_d:
            return Precision("float32", reason="not a 3D convolutional network")
        why = "asked for" if name == "bfloat16" else "the CPU computes bfloat16 natively"
        if name == "bfloat16" and not native:
            why = "asked for; emulated on this CPU, slower than float32"
        return Precision("bfloat16", channels_last=three_d, reason=why, refine=name == "auto")
    if kind == "cuda":
        if name == "bfloat16":
            import torch

            supported = torch.cuda.is_bf16_supported() if cuda_bfloat16 is None else cuda_bfloat16
            if not supported:
                raise SegTruthError("This GPU has no bfloat16 arithmetic; use float16 or float32.")
            return Precision("bfloat16", reason="asked for")
        return Precision("float16", reason="asked for" if name == "float16" else "GPU autocast")
    if name == "auto":  # Apple MPS and others: full precision unless asked
        return Precision("float32", reason=f"default on {kind}")
    return Precision(name, reason="asked for")


IMAGE_CHANNELS = 4  # a convolution reading at most this many channels reads the image: it stays in float32


def _in_float32(forward):
    """``forward`` outside autocast, on a float32 input."""

    def run(x, *args, **kwargs):
        import torch

        with torch.autocast(x.device.type, enabled=False):
            return forward(x.float(), *args, **kwargs)

    return run


def _image_convolutions(network) -> list:
    """The network's convolutions that read the image: those with at most ``IMAGE_CHANNELS`` input channels."""
    import torch

    nn = torch.nn
    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    return [m for m in network.modules() if isinstance(m, kinds) and m.in_channels <= IMAGE_CHANNELS]


@contextlib.contextmanager
def prepared_network(network, precision: Precision) -> Iterator[object]:
    """The network as it runs in ``precision`` while inference runs, then as it was.

    Channels-last 3D when the precision asks for it (oneDNN's fastest layout for bfloat16), and in reduced
    precision the convolutions that read the image stay in float32. Rounding the normalised image to bfloat16's
    8-bit mantissa before the first convolution caused half of bfloat16's label changes against float32 on the
    test fixture's model (91 instead of 196 voxels on 24 tiles) at no cost (a one-channel convolution gains
    nothing from bfloat16: 2.87x instead of 2.93x over float32 for the whole network). TorchScript modules
    run as they are.
    """
    import torch

    if not isinstance(network, torch.nn.Module):
        yield network
        return
    patched = []
    if precision.reduced and not isinstance(network, torch.jit.ScriptModule):
        patched = _image_convolutions(network)
        for conv in patched:
            conv.forward = _in_float32(conv.forward)
    if precision.channels_last:
        network.to(memory_format=torch.channels_last_3d)
    try:
        yield network
    finally:
        for conv in patched:
            del conv.forward  # the class's forward again
        if precision.channels_last:
            network.to(memory_format=torch.contiguous_format)


def to_layout(batch: torch.Tensor, precision: Precision) -> torch.Tensor:
    """A 5D batch in channels-last 3D when the precision asks for it (other shapes as they are)."""
    import torch

    if precision.channels_last and batch.ndim == 5:
        return batch.contiguous(memory_format=torch.channels_last_3d)
    return batch
