"""nnU-Net v2's U-Nets (plain and residual encoder), rebuilt from the ``architecture`` entry of a ``plans.json``.

Written for SegTruth so that running an nnU-Net results folder needs neither nnunetv2 nor
dynamic-network-architectures (which pull torchvision). The module tree mirrors the checkpoint's parameter
names (``encoder.stages.0.0.convs.0.conv.weight``, the decoder's reference to the encoder, ...) so a
checkpoint loads with ``strict=True``: a missing or extra tensor is an error, never a silently random layer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...core.errors import SegTruthError

_OPS = {
    "torch.nn.modules.conv.Conv2d": nn.Conv2d,
    "torch.nn.modules.conv.Conv3d": nn.Conv3d,
    "torch.nn.modules.instancenorm.InstanceNorm2d": nn.InstanceNorm2d,
    "torch.nn.modules.instancenorm.InstanceNorm3d": nn.InstanceNorm3d,
    "torch.nn.modules.batchnorm.BatchNorm2d": nn.BatchNorm2d,
    "torch.nn.modules.batchnorm.BatchNorm3d": nn.BatchNorm3d,
    "torch.nn.modules.dropout.Dropout2d": nn.Dropout2d,
    "torch.nn.modules.dropout.Dropout3d": nn.Dropout3d,
    "torch.nn.LeakyReLU": nn.LeakyReLU,
    "torch.nn.modules.activation.LeakyReLU": nn.LeakyReLU,
    "torch.nn.ReLU": nn.ReLU,
    "torch.nn.modules.activation.ReLU": nn.ReLU,
}
PLAIN = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
RESIDUAL = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
SUPPORTED = (PLAIN, RESIDUAL)


class _ConvNormAct(nn.Module):
    """Convolution, optional dropout, normalization and non-linearity (same padding)."""

    def __init__(self, conv, cin, cout, kernel, stride, bias, norm, norm_kw, drop, drop_kw, act, act_kw):
        super().__init__()
        ops: list[nn.Module] = []
        self.conv = conv(cin, cout, kernel, stride, padding=[(k - 1) // 2 for k in kernel], bias=bias)
        ops.append(self.conv)
        if drop is not None:
            self.dropout = drop(**(drop_kw or {}))
            ops.append(self.dropout)
        if norm is not None:
            self.norm = norm(cout, **(norm_kw or {}))
            ops.append(self.norm)
        if act is not None:
            self.nonlin = act(**(act_kw or {}))
            ops.append(self.nonlin)
        self.all_modules = nn.Sequential(*ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.all_modules(x)


class _Stacked(nn.Module):
    def __init__(self, count: int, cin: int, cout: int, kernel, stride, blocks: dict[str, Any]):
        super().__init__()
        layers = [_ConvNormAct(blocks["conv"], cin, cout, kernel, stride, **blocks["rest"])]
        layers += [
            _ConvNormAct(blocks["conv"], cout, cout, kernel, [1] * len(kernel), **blocks["rest"])
            for _ in range(count - 1)
        ]
        self.convs = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x)


class _Encoder(nn.Module):
    def __init__(self, cin: int, features, kernels, strides, n_convs, blocks):
        super().__init__()
        stages = []
        for s, cout in enumerate(features):
            stages.append(nn.Sequential(_Stacked(n_convs[s], cin, cout, kernels[s], strides[s], blocks)))
            cin = cout
        self.stages = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        return skips


class _Residual(nn.Module):
    """Two convolutions plus a shortcut (average pooling and a 1x1 projection when the shape changes: ResNet-D)."""

    def __init__(self, cin: int, cout: int, kernel, stride, blocks: dict[str, Any]):
        super().__init__()
        rest = blocks["rest"]
        plain = {**rest, "drop": None, "drop_kw": None, "act": None, "act_kw": None}
        self.conv1 = _ConvNormAct(blocks["conv"], cin, cout, kernel, stride, **rest)
        self.conv2 = _ConvNormAct(blocks["conv"], cout, cout, kernel, [1] * len(kernel), **plain)
        self.nonlin2 = rest["act"](**(rest["act_kw"] or {})) if rest["act"] is not None else nn.Identity()
        shortcut: list[nn.Module] = []
        if any(s != 1 for s in stride):
            pool = nn.AvgPool3d if blocks["conv"] is nn.Conv3d else nn.AvgPool2d
            shortcut.append(pool(stride, stride))
        if cin != cout:
            ones = [1] * len(kernel)
            shortcut.append(_ConvNormAct(blocks["conv"], cin, cout, ones, ones, **{**plain, "bias": False}))
        self.skip = nn.Sequential(*shortcut) if shortcut else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlin2(self.conv2(self.conv1(x)) + self.skip(x))


class _ResidualStage(nn.Module):
    def __init__(self, count: int, cin: int, cout: int, kernel, stride, blocks: dict[str, Any]):
        super().__init__()
        ones = [1] * len(kernel)
        first = _Residual(cin, cout, kernel, stride, blocks)
        self.blocks = nn.Sequential(first, *[_Residual(cout, cout, kernel, ones, blocks) for _ in range(count - 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class _ResidualEncoder(nn.Module):
    def __init__(self, cin: int, features, kernels, strides, n_blocks, blocks):
        super().__init__()
        self.stem = _Stacked(1, cin, features[0], kernels[0], [1] * len(kernels[0]), blocks)
        cin = features[0]
        stages = []
        for s, cout in enumerate(features):
            stages.append(_ResidualStage(n_blocks[s], cin, cout, kernels[s], strides[s], blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        skips = []
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        return skips


class _Decoder(nn.Module):
    def __init__(self, encoder: nn.Module, features, kernels, strides, n_convs, classes: int, blocks, transposed):
        super().__init__()
        self.encoder = encoder  # part of the checkpoint's parameter names
        stages, ups, heads = [], [], []
        for s in range(1, len(features)):
            below, skip = features[-s], features[-(s + 1)]
            ups.append(transposed(below, skip, strides[-s], strides[-s], bias=blocks["rest"]["bias"]))
            stages.append(_Stacked(n_convs[s - 1], 2 * skip, skip, kernels[-(s + 1)], [1] * len(kernels[0]), blocks))
            heads.append(blocks["conv"](skip, classes, 1, 1, 0, bias=True))
        self.stages = nn.ModuleList(stages)
        self.transpconvs = nn.ModuleList(ups)
        self.seg_layers = nn.ModuleList(heads)

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        x = skips[-1]
        for s, stage in enumerate(self.stages):
            x = stage(torch.cat((self.transpconvs[s](x), skips[-(s + 2)]), 1))
        return self.seg_layers[-1](x)


class PlainConvUNet(nn.Module):
    """Encoder of strided convolution stages (plain, or residual blocks after a stem), decoder of transposed
    convolutions and skip concatenation."""

    def __init__(self, in_channels: int, classes: int, kwargs: dict[str, Any], residual: bool = False):
        super().__init__()
        n = int(kwargs["n_stages"])

        def per_stage(value, count):
            return list(value) if isinstance(value, (list, tuple)) else [value] * count

        conv = _op(kwargs["conv_op"])
        dims = 3 if conv is nn.Conv3d else 2

        def as_list(v):
            return list(v) if isinstance(v, (list, tuple)) else [v] * dims

        features = per_stage(kwargs["features_per_stage"], n)
        kernels = [as_list(k) for k in per_stage(kwargs["kernel_sizes"], n)]
        strides = [as_list(s) for s in per_stage(kwargs["strides"], n)]
        if kwargs.get("nonlin_first"):
            raise SegTruthError("nonlin_first networks are not supported.")
        blocks = {
            "conv": conv,
            "rest": {
                "bias": bool(kwargs.get("conv_bias", False)),
                "norm": _op(kwargs.get("norm_op")),
                "norm_kw": kwargs.get("norm_op_kwargs"),
                "drop": _op(kwargs.get("dropout_op")),
                "drop_kw": kwargs.get("dropout_op_kwargs"),
                "act": _op(kwargs.get("nonlin")),
                "act_kw": kwargs.get("nonlin_kwargs"),
            },
        }
        transposed = nn.ConvTranspose3d if dims == 3 else nn.ConvTranspose2d
        self.encoder: nn.Module
        if residual:
            if str(kwargs.get("block", "BasicBlockD")).rsplit(".", 1)[-1] != "BasicBlockD" or kwargs.get(
                "stem_channels"
            ):
                raise SegTruthError("only residual encoders of BasicBlockD blocks with the default stem are supported.")
            n_blocks = per_stage(kwargs["n_blocks_per_stage"], n)
            self.encoder = _ResidualEncoder(in_channels, features, kernels, strides, n_blocks, blocks)
        else:
            n_convs = per_stage(kwargs["n_conv_per_stage"], n)
            self.encoder = _Encoder(in_channels, features, kernels, strides, n_convs, blocks)
        self.decoder = _Decoder(
            self.encoder,
            features,
            kernels,
            strides,
            per_stage(kwargs["n_conv_per_stage_decoder"], n - 1),
            classes,
            blocks,
            transposed,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def _op(name: str | None):
    if name is None:
        return None
    if name not in _OPS:
        raise SegTruthError(f"The nnU-Net plans name the layer {name!r}, which SegTruth cannot build.")
    return _OPS[name]


def build_network(architecture: dict[str, Any], in_channels: int, classes: int, where: str) -> nn.Module:
    """The network a plans.json ``architecture`` entry describes, without deep supervision."""
    name = architecture.get("network_class_name")
    if name not in SUPPORTED:
        raise SegTruthError(f"{where}: the network {name!r} is not supported (SegTruth runs {', '.join(SUPPORTED)}).")
    try:
        return PlainConvUNet(in_channels, classes, architecture["arch_kwargs"], residual=name == RESIDUAL)
    except (KeyError, TypeError, ValueError) as error:
        raise SegTruthError(f"{where}: the plans' architecture cannot be built ({error}).") from None
