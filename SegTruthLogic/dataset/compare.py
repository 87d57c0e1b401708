"""Comparing two segmentations (annotator against model, two annotators) label by label.

Dice, IoU, HD95, mean surface distance and volumes in mm³, matched by label name (the label table's names
when one is given). Both are compared on one grid: the image's when one is given, else the first
segmentation's. A segmentation on another grid is resampled onto it explicitly with nearest neighbour and
the result says so; the same voxels in another axis order are moved exactly, without resampling.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..core.atomic import full_suffix
from ..core.errors import SegTruthError
from ..core.formats import SEGMENTATION_SUFFIX
from ..core.geometry import Grid, grid_difference, index_map, move_array
from ..core.image_header import image_information
from ..core.labels import LabelTable
from ..core.metrics import dice
from ..core.nrrd import check_nrrd_complete
from ..core.sources import source_grid
from ..scene.dicom import list_dicom_series
from ..scene.dicom_annotations import is_dicom_annotation
from ..scene.segmentation_io import load_segmentation
from ..scene.segments import segment_ids, segment_mask
from ..scene.session import Session
from ..scene.volumes import load_volume, volume_from_array
from .surface import surface_distances


@dataclass(frozen=True)
class LabelComparison:
    """One label's agreement; distances are NaN when either side is empty."""

    name: str
    dice: float
    iou: float
    hd95_mm: float
    msd_mm: float
    volume_a_mm3: float
    volume_b_mm3: float
    voxels_a: int
    voxels_b: int


@dataclass
class Comparison:
    """Per-label metrics of B against A on one grid, and notes on how that grid was reached."""

    a: Path
    b: Path
    grid: Grid
    grid_source: str
    labels: list[LabelComparison]
    notes: list[str] = field(default_factory=list)
    resampled: list[str] = field(default_factory=list)

    CSV_COLUMNS = (
        "label",
        "dice",
        "iou",
        "hd95_mm",
        "msd_mm",
        "volume_a_mm3",
        "volume_b_mm3",
        "voxels_a",
        "voxels_b",
        "resampled_nearest",
    )

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.CSV_COLUMNS)
        resampled = " ".join(self.resampled)
        for row in self.labels:
            writer.writerow(
                [
                    row.name,
                    *(_number(v) for v in (row.dice, row.iou, row.hd95_mm, row.msd_mm)),
                    f"{row.volume_a_mm3:.3f}",
                    f"{row.volume_b_mm3:.3f}",
                    row.voxels_a,
                    row.voxels_b,
                    resampled,
                ]
            )
        return out.getvalue()

    def format(self) -> str:
        """A table for a terminal, with the notes above it."""
        lines = [f"A: {self.a}", f"B: {self.b}", f"grid: {self.grid_source} ({self.grid.describe()})"]
        lines += [f"note: {note}" for note in self.notes]
        width = max([len("label"), *(len(row.name) for row in self.labels)])
        lines.append(
            f"{'label':<{width}}  {'Dice':>6}  {'IoU':>6}  {'HD95 mm':>8}  {'MSD mm':>8}  {'A mm³':>12}  {'B mm³':>12}"
        )
        for row in self.labels:
            lines.append(
                f"{row.name:<{width}}  {row.dice:6.4f}  {row.iou:6.4f}  {row.hd95_mm:8.3f}  {row.msd_mm:8.3f}  "
                f"{row.volume_a_mm3:12.1f}  {row.volume_b_mm3:12.1f}"
            )
        return "\n".join(lines)


def _number(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.6g}"


def read_masks(
    session: Session,
    path: str | Path,
    table: LabelTable | None = None,
    rois: Sequence[str] | None = None,
    image: str | Path | None = None,
) -> tuple[dict[str, np.ndarray], Grid]:
    """Each label's boolean (k, j, i) mask on the segmentation file's own grid, by name (overlaps allowed).

    An RTSTRUCT or DICOM SEG has no grid of its own: it is read on ``image``, else on the series in its folder.
    """
    path = Path(path)
    if not path.is_file():
        raise SegTruthError(f"{path}: segmentation file not found.")
    if is_dicom_annotation(path):
        if image is None and not list_dicom_series(path.parent):
            raise SegTruthError(
                f"{path}: an RTSTRUCT or DICOM SEG has no grid of its own; give its image series with --image "
                "or keep the file in the series' folder."
            )
        volume = load_volume(session, image if image is not None else path.parent, name="__compare__")
        grid = source_grid(volume)
    elif full_suffix(path) == SEGMENTATION_SUFFIX:
        grid = _seg_nrrd_grid(path)
        volume = volume_from_array(session, np.zeros(grid.shape_kji, np.uint8), grid, "__compare__")
    else:
        volume = load_volume(session, path, name="__compare__")
        grid = source_grid(volume)
    segmentation = None
    try:
        segmentation = load_segmentation(session, path, volume, table, rois)
        node_grid = Grid.from_node(volume)
        masks = {}
        for sid in segment_ids(segmentation):
            name = segmentation.GetSegmentation().GetSegment(sid).GetName()
            masks[name] = move_array(segment_mask(session, segmentation, sid, volume), node_grid, grid)
    finally:
        session.remove(volume, segmentation)
    return masks, grid


def _seg_nrrd_grid(path: Path) -> Grid:
    """The reference image grid a ``.seg.nrrd`` was drawn on (Slicer records it), else its own labelmap grid."""
    header = check_nrrd_complete(path)
    for parameter in header.key_values.get("Segmentation_ConversionParameters", "").split("&"):
        name, _, rest = parameter.partition("|")
        if name != "Reference image geometry":
            continue
        try:
            numbers = [float(v) for v in rest.split("|")[0].split(";") if v.strip()]
        except ValueError:
            raise SegTruthError(f"{path}: its header's reference image geometry is damaged (not numbers).") from None
        if len(numbers) == 22:
            matrix = np.array(numbers[:16]).reshape(4, 4)
            extent = [int(v) for v in numbers[16:]]
            start = np.array([extent[0], extent[2], extent[4], 1.0])
            matrix[:3, 3] = (matrix @ start)[:3]
            size = (extent[1] - extent[0] + 1, extent[3] - extent[2] + 1, extent[5] - extent[4] + 1)
            return Grid(size, matrix)  # type: ignore[arg-type]
    reader = image_information(path)
    if reader.GetDimension() != 3:
        raise SegTruthError(f"{path}: records no reference image grid; give the image it was drawn on.")
    return Grid.from_sitk(reader)


def _onto(
    masks: dict[str, np.ndarray], grid: Grid, target: Grid, path: Path, target_name: str, notes: list[str]
) -> tuple[dict[str, np.ndarray], bool]:
    """Masks on ``target``: unchanged, moved exactly (same voxels), or resampled with nearest neighbour."""
    if grid.same_as(target):
        return masks, False
    try:
        index_map(grid, target)
        return {name: move_array(mask, grid, target) for name, mask in masks.items()}, False
    except SegTruthError:
        pass
    notes.append(
        f"{path} is on another grid than {target_name} (they differ in {grid_difference(grid, target)}); its masks were "
        "resampled onto that grid with nearest neighbour."
    )
    reference = target.apply_to_sitk(sitk.Image([int(s) for s in target.size], sitk.sitkUInt8))
    out = {}
    for name, mask in masks.items():
        image = grid.apply_to_sitk(sitk.GetImageFromArray(mask.astype(np.uint8)))
        resampled = sitk.Resample(image, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        out[name] = sitk.GetArrayFromImage(resampled).astype(bool)
    return out, True


def compare_segmentations(
    session: Session,
    a: str | Path,
    b: str | Path,
    image: str | Path | None = None,
    table: LabelTable | None = None,
    rois: Sequence[str] | None = None,
) -> Comparison:
    """Per-label Dice, IoU, HD95, mean surface distance and volumes of ``b`` against ``a``.

    ``rois`` picks the structures of an RTSTRUCT or DICOM SEG side (names or globs).
    """
    a, b = Path(a), Path(b)
    masks_a, grid_a = read_masks(session, a, table, rois if is_dicom_annotation(a) else None, image)
    masks_b, grid_b = read_masks(session, b, table, rois if is_dicom_annotation(b) else None, image)
    if image is not None:
        volume = load_volume(session, image, name="__compare_image__")
        grid, grid_source = source_grid(volume), f"the grid of {image}"
        session.remove(volume)
    else:
        grid, grid_source = grid_a, f"the grid of A ({a})"
    notes: list[str] = []
    target_name = grid_source.removeprefix("the grid of ")
    masks_a, moved_a = _onto(masks_a, grid_a, grid, a, target_name, notes)
    masks_b, moved_b = _onto(masks_b, grid_b, grid, b, target_name, notes)
    names = list(masks_a) + [name for name in masks_b if name not in masks_a]
    for side, names_here, others in (("A", masks_a, masks_b), ("B", masks_b, masks_a)):
        alone = [name for name in names_here if name not in others]
        if alone:
            notes.append(f"labels only in {side} ({', '.join(alone)}) are compared with an empty mask.")
    voxel_mm3 = float(abs(np.linalg.det(grid.ijk_to_ras[:3, :3])))
    spacing = tuple(float(s) for s in grid.spacing)
    empty = np.zeros(grid.shape_kji, bool)
    rows = []
    for name in names:
        mask_a, mask_b = masks_a.get(name, empty), masks_b.get(name, empty)
        count_a, count_b = int(mask_a.sum()), int(mask_b.sum())
        union = int(np.count_nonzero(mask_a | mask_b))
        iou = 1.0 if union == 0 else int(np.count_nonzero(mask_a & mask_b)) / union
        distances = surface_distances(mask_a, mask_b, spacing)  # type: ignore[arg-type]
        rows.append(
            LabelComparison(
                name,
                dice(mask_a, mask_b),
                iou,
                distances.hd95,
                distances.mean,
                count_a * voxel_mm3,
                count_b * voxel_mm3,
                count_a,
                count_b,
            )
        )
    resampled = [side for side, moved in (("A", moved_a), ("B", moved_b)) if moved]
    return Comparison(a, b, grid, grid_source, rows, notes, resampled)
