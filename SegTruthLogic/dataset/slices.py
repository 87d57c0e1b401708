"""2D training data: image and mask slices across a chosen anatomical axis, as PNG, NPZ or NIfTI.

For 2D networks (a U-Net with a DenseNet encoder on root canal slices, a 2D nnU-Net on annotated slices of
mouse spinal cord). Every case is first laid out the same way (see ``orient``) so slices of different cases
are not mirrored against each other; the slice number in a file name is the source file's own voxel index
across that axis, so any slice can be found again in Slicer. Files:

- ``png``: ``images/{case}_{view}_{index:04d}.png`` (8-bit, windowed) and ``masks/`` with the same names
  holding label values (not colors; 16-bit when a value exceeds 255);
- ``npz``: ``{case}_{view}_{index:04d}.npz`` with ``image`` (original intensities), ``mask``, ``spacing``;
- ``nii.gz``: ``images/`` and ``masks/`` one-slice volumes that keep each slice's position in space.

``slices.csv`` lists every slice with its case, index and the labels it holds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_folder, atomic_write, atomic_write_text
from ..core.errors import SegTruthError
from ..core.labels import LabelTable
from ..core.progress import CancelToken, ProgressCallback, report
from ..scene.export import write_array
from ..scene.session import Session
from .cases import DatasetLabels, read_case
from .manifest import CaseEntry
from .orient import display_layout, slab_grid, view_axis, view_slice, view_spacing
from .qc import auto_window, png_bytes, to_gray

FORMATS = ("png", "npz", "nii.gz")


def export_slices(
    session: Session,
    entries: Sequence[CaseEntry],
    folder: str | Path,
    view: str = "axial",
    fmt: str = "png",
    window: tuple[float, float] | None = None,
    labelled_only: bool = False,
    table: LabelTable | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Write every (or every labelled) slice of every case into ``folder``; all cases or nothing.

    ``window`` is (center, width) for PNG images; without it each case uses its own 1st-99th percentile.
    """
    axis = view_axis(view)
    if fmt not in FORMATS:
        raise SegTruthError(f"Unknown slice format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if window is not None and window[1] <= 0:
        raise SegTruthError(f"The window width {window[1]:g} must be positive.")
    if not entries:
        raise SegTruthError("The case list is empty; nothing to export.")
    labels = DatasetLabels(table)
    index_rows = [["file", "mask", "case", "view", "index", "labels"]]
    with atomic_folder(folder, overwrite) as temp:
        if fmt != "npz":
            (temp / "images").mkdir()
            (temp / "masks").mkdir()
        for number, entry in enumerate(entries):
            if cancel is not None:
                cancel.raise_if_cancelled("slice export")
            report(progress, number / len(entries), f"case {entry.case} ({number + 1}/{len(entries)})")
            case = read_case(session, entry, labels.given)
            labels.add(entry, case.table)
            if len(case.channels) != 1:
                raise SegTruthError(f"{entry.describe()}: has {len(case.channels)} channels; slices take one image.")
            layout = display_layout(case.grid)
            image = layout.to_display(case.channels[0])
            mask = layout.to_display(case.labels) if case.labels is not None else np.zeros(image.shape, np.uint8)
            low_high = (window[0] - window[1] / 2, window[0] + window[1] / 2) if window else auto_window(image)
            for index in range(layout.display.size[axis]):
                mask_slice = view_slice(mask, view, index)
                present = sorted(int(v) for v in np.unique(mask_slice) if v)
                if labelled_only and not present:
                    continue
                stem = f"{entry.case}_{view}_{layout.source_index(axis, index):04d}"
                image_slice = view_slice(image, view, index)
                if fmt == "png":
                    files = (f"images/{stem}.png", f"masks/{stem}.png")
                    _write_bytes(temp / files[0], png_bytes(to_gray(image_slice, low_high)))
                    _write_bytes(temp / files[1], png_bytes(np.ascontiguousarray(mask_slice)))
                elif fmt == "npz":
                    files = (f"{stem}.npz", f"{stem}.npz")
                    _write_npz(temp / files[0], image_slice, mask_slice, view_spacing(layout.display, view))
                else:
                    files = (f"images/{stem}.nii.gz", f"masks/{stem}.nii.gz")
                    slab = slab_grid(layout.display, axis, index)
                    take = [slice(None)] * 3
                    take[2 - axis] = slice(index, index + 1)
                    write_array(np.ascontiguousarray(image[tuple(take)]), slab, temp / files[0])
                    write_array(np.ascontiguousarray(mask[tuple(take)]), slab, temp / files[1])
                source_index = layout.source_index(axis, index)
                index_rows.append([*files, entry.case, view, str(source_index), " ".join(map(str, present))])
        atomic_write_text(temp / "slices.csv", _csv(index_rows))
        if labels.table.labels:
            atomic_write_text(temp / "labels.json", labels.table.to_json())
    report(progress, 1.0, f"{len(index_rows) - 1} slices written to {folder}")
    return Path(folder)


def _write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda temp: temp.write_bytes(data))


def _write_npz(path: Path, image: np.ndarray, mask: np.ndarray, spacing: tuple[float, float]) -> None:
    def write(temp: Path) -> None:
        with open(temp, "wb") as stream:
            np.savez_compressed(
                stream, image=np.ascontiguousarray(image), mask=np.ascontiguousarray(mask), spacing=np.array(spacing)
            )

    atomic_write(path, write)


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()
