"""The inference engine: volume node(s) in, labelled segments out, on the image's exact voxels.

The image is taken on the grid of the file it came from (undoing Slicer's flip of left-handed volumes), so
models that read files in their own voxel order (nnU-Net) see the same array they were trained on; the result
comes back on that grid and is moved onto the node's grid without interpolation. Label values, names, colors
and terminology come from the model card, never from output channel order alone.
"""

from __future__ import annotations

import contextlib
import time
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from slicer.util import arrayFromVolume

from ..core.errors import SegTruthError
from ..core.geometry import Grid, move_array
from ..core.intensities import check_finite
from ..core.labels import LabelTable
from ..core.progress import CancelToken, ProgressCallback, report
from ..core.sources import source_grid
from ..scene.segments import ensure_segment, import_labelmap, new_segmentation
from .model import LoadedModel
from .precision import choose_precision
from .preprocessing import Prepared, postprocess
from .sliding_window import NEAR_TIE, SlidingWindow, batch_axes, network_output

MODEL_ATTRIBUTE = "SegTruth.Model"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; asking for a device that is absent is an error."""
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SegTruthError(
            f"Device {name!r} was asked for, but this PyTorch sees no CUDA GPU; use --device cpu or auto."
        )
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise SegTruthError("Device 'mps' was asked for, but Apple's Metal backend is not available here.")
    try:
        return torch.device(name)
    except RuntimeError:
        raise SegTruthError(f"Unknown device {name!r}; use auto, cpu, cuda or mps.") from None


@contextlib.contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    """Same input, same output: no cuDNN autotuning, deterministic kernels while inference runs."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved


@dataclass
class Result:
    """Label values (k, j, i) on the image file's grid, with the table they come from and what happened."""

    labels: np.ndarray
    grid: Grid
    table: LabelTable
    device: str
    seconds: float
    notices: list[str] = field(default_factory=list)
    precision: str = "float32"


def check_input(model: LoadedModel, grids: Sequence[Grid], names: Sequence[str]) -> None:
    """Channel count, matching grids and dimensionality, each a clear error naming the model and the image."""
    card = model.card
    if len(grids) != card.channels:
        wanted = f" ({', '.join(card.modality)})" if card.modality else ""
        raise SegTruthError(
            f"Model {card.name!r} expects {card.channels} input channel{'s' if card.channels != 1 else ''}{wanted}; "
            f"got {len(grids)} image{'s' if len(grids) != 1 else ''}."
        )
    for grid, name in zip(grids[1:], names[1:]):
        if not grid.same_as(grids[0]):
            raise SegTruthError(f"{name}: is not on the grid of {names[0]}; the model's channels must share one grid.")
    if card.dimensions == 3 and min(grids[0].size) < 2:
        raise SegTruthError(
            f"{names[0]}: is a single slice ({'x'.join(str(s) for s in grids[0].size)}); model {card.name!r} is a 3D model."
        )


TILE_BATCH_VOXELS_2D = 1 << 17  # 2D tiles per network call: as many as hold about this many voxels (up to 32)


def tile_batch(card) -> int:
    """Tiles per network call by default: one 3D tile (as nnU-Net), or a stack of small 2D tiles.

    A 2D network on a few thousand pixels spends most of a call in per-layer overhead: 25 tiles of 64x80 a call
    ran 2.7x faster than one at a time on a 2-core CPU, with the same labels. The memory fallback halves it.
    """
    patch = card.inference.patch_size
    if patch is None or len(patch) != 2:
        return 1
    return int(max(1, min(32, TILE_BATCH_VOXELS_2D // int(np.prod(patch)))))


@dataclass
class Blended:
    """The network's blended output (channels, *spatial) on its own grid, and how to take it back to the image."""

    output: torch.Tensor
    prepared: Prepared
    device: torch.device
    notices: list[str]
    precision: str


class MirrorPair(torch.nn.Module):
    """A network's output beside its output on the input mirrored along ``axes`` (mirrored back), on the channel
    axis: one pass over the tiles gives both, for measuring how much the model's answer depends on the mirroring."""

    def __init__(self, network: torch.nn.Module, axes: Sequence[int]) -> None:
        super().__init__()
        self.network = network
        self.axes = tuple(axes)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        dims = batch_axes(self.axes, batch)
        plain = network_output(self.network, batch)
        mirrored = network_output(self.network, torch.flip(batch, dims))
        return torch.cat([plain, torch.flip(mirrored, dims)], dim=1)


def decided_by_argmax(card) -> bool:
    """Whether the card's labels are the largest of several output channels (softmax or logits, not sigmoid)."""
    return card.inference.output != "sigmoid" and card.out_channels > 1


def blend(
    model: LoadedModel,
    channels: Sequence[np.ndarray],
    grid: Grid,
    device: str | torch.device = "auto",
    tta: bool = False,
    batch_size: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    names: Sequence[str] | None = None,
    precision: str | None = None,
    mirror_pair: bool = False,
) -> Blended:
    """Check and preprocess (k, j, i) arrays on ``grid`` and run the sliding window: the blended output.

    ``batch_size``: tiles per network call; None: ``tile_batch``. ``mirror_pair``: each member runs as a
    ``MirrorPair`` on the card's mirror axes (twice the channels). Progress runs from 0 to 0.9.
    """
    names = list(names or [f"image {n + 1}" for n in range(len(channels))])
    check_input(model, [grid] * len(channels), names)
    for array, name in zip(channels, names):
        if array.shape != grid.shape_kji:
            raise SegTruthError(f"{name}: its array {array.shape} does not fit its grid ({grid.describe()}).")
    target = resolve_device(device)
    choose_precision(precision, target)  # a bad name fails before any work
    card = model.card
    report(progress, 0.0, f"{card.name}: preprocessing")
    prepared = model.prepare(list(channels), grid, target)
    if cancel is not None:
        cancel.raise_if_cancelled("inference")
    notices: list[str] = []
    window = SlidingWindow(
        patch_size=card.inference.patch_size,
        out_channels=card.out_channels * (2 if mirror_pair else 1),
        overlap=card.inference.overlap,
        gaussian=card.inference.gaussian,
        mirror_axes=card.inference.mirror_axes if tta else (),
        batch_size=batch_size or tile_batch(card),
        divisible_by=card.inference.divisible_by,
        progress=_scaled(progress, 0.1, 0.9),
        cancel=cancel,
        notices=notices,
        precision=precision,
        keep_on_device=True,  # resampling back and argmax run where the output is (a GPU, when it fits there)
        near_tie=NEAR_TIE if decided_by_argmax(card) and not mirror_pair else None,
    )
    members = model.members
    if mirror_pair:
        members = lambda: (MirrorPair(network, card.inference.mirror_axes) for network in model.members())  # noqa: E731

    with _deterministic(target):
        output = window.run(prepared.image, members, model.ensemble_size, target)
    if cancel is not None:
        cancel.raise_if_cancelled("inference")
    used = window.used_precision.name if window.used_precision is not None else "float32"
    return Blended(output, prepared, target, notices, used)


def output_labels(model: LoadedModel, output: torch.Tensor, prepared: Prepared) -> np.ndarray:
    """Label values on the image file's grid from a blended output: the card's values, then its postprocessing."""
    card = model.card
    index = model.restore(output, prepared)
    offset = 1 if card.inference.output == "sigmoid" or output.shape[0] == 1 else 0
    lookup = np.zeros(
        max(int(index.max(initial=0)), max(card.channel_of_label.values(), default=0) + offset) + 1, np.uint16
    )
    for value, channel in card.channel_of_label.items():
        lookup[channel + offset] = value
    labels = postprocess(lookup[index], card.postprocessing)
    return labels.astype(np.uint8 if card.labels.max_value <= 255 else np.uint16)


def predict(
    model: LoadedModel,
    channels: Sequence[np.ndarray],
    grid: Grid,
    device: str | torch.device = "auto",
    tta: bool = False,
    batch_size: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    names: Sequence[str] | None = None,
    precision: str | None = None,
) -> Result:
    """Run the model on (k, j, i) arrays on ``grid`` (the image file's grid); label values on the same grid.

    ``precision``: the network's arithmetic, ``auto`` (bfloat16 on CPUs that compute it natively, float16 on
    CUDA, else float32), ``float32``, ``bfloat16`` or ``float16``; None reads ``SEGTRUTH_PRECISION``.
    """
    start = time.perf_counter()
    blended = blend(model, channels, grid, device, tta, batch_size, progress, cancel, names, precision)
    report(progress, 0.9, f"{model.card.name}: resampling to the image grid")
    labels = output_labels(model, blended.output, blended.prepared)
    report(progress, 1.0, f"{model.card.name}: done")
    return Result(
        labels, grid, model.card.labels, blended.device.type, time.perf_counter() - start, blended.notices,
        blended.precision,
    )  # fmt: skip


def _scaled(progress: ProgressCallback | None, low: float, high: float) -> ProgressCallback | None:
    if progress is None:
        return None
    return lambda fraction, message: progress(low + (high - low) * fraction, message)


def segment(
    session,
    segmentation_node,
    volume,
    model,
    device: str = "auto",
    tta: bool = False,
    batch_size: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    precision: str | None = None,
):
    """Segment a volume node (or a list of nodes, one per input channel) with a model; returns the segmentation node.

    Takes ``(session, segmentation_node, volume, ...)`` as every tool does. ``session``: None uses the volume's
    scene; ``segmentation_node``: None makes a new one. ``model``: a catalog name, a path (nnU-Net folder, MONAI
    bundle, ``*.card.json``, TorchScript file with a card beside it), or a loaded model. Segments get the card's
    names, colors, terminology and label values; existing segments of those names are replaced, others kept.
    ``precision``: see ``predict``.
    """
    from .catalog import load_model

    loaded = model if isinstance(model, LoadedModel) else load_model(model, progress=progress)
    nodes = list(volume) if isinstance(volume, (list, tuple)) else [volume]
    for node in nodes:
        if node is None or not node.IsA("vtkMRMLScalarVolumeNode") or node.GetImageData() is None:
            raise SegTruthError("segment() needs scalar volume nodes holding an image.")
    node_grid = Grid.from_node(nodes[0])
    file_grid = source_grid(nodes[0])
    names = [node.GetName() for node in nodes]
    check_input(loaded, [Grid.from_node(n) for n in nodes], names)
    # all channels on the first image's file grid (their node grids are the same voxels, checked above)
    channels = [move_array(arrayFromVolume(n), Grid.from_node(n), file_grid) for n in nodes]
    for name, channel in zip(names, channels):
        check_finite(channel, name)  # a volume built in memory; files are checked when they are read
    result = predict(loaded, channels, file_grid, device, tta, batch_size, progress, cancel, names, precision)
    labels = move_array(result.labels, file_grid, node_grid)
    scene_owner = session or types.SimpleNamespace(scene=nodes[0].GetScene())
    if segmentation_node is None:
        segmentation_node = new_segmentation(scene_owner, nodes[0], f"{nodes[0].GetName()} {loaded.card.name}")
    import_labelmap(scene_owner, segmentation_node, labels, nodes[0], result.table)
    for label in result.table:  # every class of the model is listed, even when absent from this image
        ensure_segment(segmentation_node, label.name, result.table)
    segmentation_node.SetAttribute(MODEL_ATTRIBUTE, loaded.card.name)
    return segmentation_node
