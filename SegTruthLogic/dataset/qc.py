"""Pictures a person checks masks with: axial, coronal and sagittal slices through each label, outlined on the image.

Rendering is numpy on the voxels (laid out the radiological way, see ``orient``), scaled to square pixels so
anisotropic volumes are not squashed; text comes from VTK's FreeType renderer and files from VTK's PNG writer,
so no window, GPU or imaging library is needed. Each label's slices are the ones where it covers the most
voxels, so even a thin or ring-shaped structure (a root canal, ribs) shows up in every view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import vtk
from vtk.util import numpy_support
from vtkmodules.vtkRenderingFreeType import vtkFreeTypeTools

from ..core.atomic import atomic_write
from ..core.geometry import Grid
from ..core.labels import LabelTable, default_color
from .orient import display_layout, view_axis, view_slice, view_spacing

BACKGROUND = (24, 24, 28)
TEXT = (235, 235, 235)
_CAPTION_WIDTH = 170
_TITLE_HEIGHT = 26
_SHOWN_VIEWS = ("axial", "coronal", "sagittal")


def auto_window(image: np.ndarray) -> tuple[float, float]:
    """Intensities from the 1st to the 99th percentile, ignoring padding (a subsample of big volumes).

    CT scanners fill the corners outside the field of view with one very low value (-3024, -2000); counted
    as intensities they would stretch the window until the patient is a flat grey.
    """
    step = max(1, round((image.size / 2e6) ** (1 / 3)))
    sample = image[::step, ::step, ::step]
    sample = sample[np.isfinite(sample)] if sample.dtype.kind == "f" else sample.ravel()
    if sample.size == 0:
        return 0.0, 1.0
    lowest = sample.min()
    padding = sample == lowest
    if 0.01 < padding.mean() < 0.9:
        sample = sample[~padding]
    low, high = np.percentile(sample, [1.0, 99.0])
    return float(low), float(high) if high > low else float(low) + 1.0


def to_gray(image: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Intensities mapped linearly from ``window`` (low, high) to 0..255."""
    low, high = window
    scaled = (np.nan_to_num(image.astype(np.float32), nan=low) - low) * (255.0 / max(high - low, 1e-6))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _resize(array: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Nearest-neighbour resize of a 2D (or 2D + channels) array."""
    r = np.minimum((np.arange(rows) + 0.5) * array.shape[0] / rows, array.shape[0] - 1).astype(int)
    c = np.minimum((np.arange(cols) + 0.5) * array.shape[1] / cols, array.shape[1] - 1).astype(int)
    return array[r][:, c]


def outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of a 2D mask with a 4-neighbour outside it."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def _fit(shape: tuple[int, int], spacing: tuple[float, float], size: int) -> tuple[int, int]:
    height, width = shape[0] * spacing[0], shape[1] * spacing[1]
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def panel(
    image: np.ndarray,
    spacing: tuple[float, float],
    window: tuple[float, float],
    overlays: list[tuple[np.ndarray, tuple[float, float, float]]],
    size: int,
) -> np.ndarray:
    """A ``size`` x ``size`` RGB tile: the slice in square pixels with each mask's outline in its color."""
    rows, cols = _fit(image.shape, spacing, size)
    gray = _resize(to_gray(image, window), rows, cols)
    tile = np.empty((size, size, 3), np.uint8)
    tile[:] = BACKGROUND
    top, left = (size - rows) // 2, (size - cols) // 2
    view = tile[top : top + rows, left : left + cols]
    view[:] = gray[..., None]
    thick = size >= 160
    for mask, color in overlays:
        edge = outline(_resize(mask, rows, cols))
        if thick:
            edge |= outline(_resize(mask, rows, cols) & ~edge)
        view[edge] = np.round(np.array(color) * 255).astype(np.uint8)
    return tile


def text(content: str, size: int = 13, color: tuple[int, int, int] = TEXT, bold: bool = False) -> np.ndarray:
    """An RGBA image of one line of text (VTK's FreeType renderer, no window needed)."""
    prop = vtk.vtkTextProperty()
    prop.SetFontSize(size)
    prop.SetColor(*(c / 255 for c in color))
    prop.SetBold(bold)
    prop.SetFontFamilyToArial()
    image = vtk.vtkImageData()
    if not content or not vtkFreeTypeTools.GetInstance().RenderString(prop, content, 72, image):
        return np.zeros((1, 1, 4), np.uint8)
    dims = image.GetDimensions()
    pixels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(dims[1], dims[0], -1)
    return pixels[::-1].copy()  # VTK rows run bottom-up


def paste_text(canvas: np.ndarray, rgba: np.ndarray, top: int, left: int) -> None:
    """Blend RGBA text onto an RGB canvas, clipped to it."""
    height = min(rgba.shape[0], canvas.shape[0] - top)
    width = min(rgba.shape[1], canvas.shape[1] - left)
    if height <= 0 or width <= 0:
        return
    alpha = rgba[:height, :width, 3:4].astype(np.float32) / 255.0
    region = canvas[top : top + height, left : left + width]
    region[:] = (rgba[:height, :width, :3] * alpha + region * (1 - alpha)).astype(np.uint8)


def _busiest(mask: np.ndarray, axis: int) -> int:
    """Index along a (k, j, i) display volume's grid ``axis`` where the mask covers the most voxels."""
    numpy_axis = 2 - axis
    other = tuple(a for a in range(3) if a != numpy_axis)
    return int(np.argmax(mask.sum(axis=other)))


def case_picture(
    image: np.ndarray,
    grid: Grid,
    labels: np.ndarray | None,
    table: LabelTable | None,
    title: str = "",
    size: int = 200,
    window: tuple[float, float] | None = None,
) -> np.ndarray:
    """One row per label present: axial, coronal and sagittal slices through it with its outline (RGB array).

    ``image`` and ``labels`` are (k, j, i) arrays on ``grid``; slice numbers shown are the source file's voxel
    indices. Without labels (or with only empty ones) one row shows the volume's middle slices.
    """
    layout = display_layout(grid)
    volume = layout.to_display(image)
    window = window or auto_window(volume)
    shown = layout.to_display(labels) if labels is not None else None
    present = [int(v) for v in np.unique(shown) if v] if shown is not None else []
    rows = []
    for value in present or [0]:
        mask = shown == value if value else None
        label = table.by_value(value) if (table is not None and value) else None
        color = label.color if label else default_color(value or 1)
        name = label.name if label else (f"label {value}" if value else "no labels")
        tiles = []
        for view in _SHOWN_VIEWS:
            axis = view_axis(view)
            index = _busiest(mask, axis) if mask is not None else layout.display.size[axis] // 2
            slice_image = view_slice(volume, view, index)
            overlays = [(view_slice(mask, view, index), color)] if mask is not None else []
            tile = panel(slice_image, view_spacing(layout.display, view), window, overlays, size)
            caption = f"{view} {layout.source_index(axis, index)}"
            paste_text(tile, text(caption, 11), 3, 4)
            tiles.append(tile)
        caption = np.empty((size, _CAPTION_WIDTH, 3), np.uint8)
        caption[:] = BACKGROUND
        swatch = np.round(np.array(color) * 255).astype(np.uint8)
        if value:
            caption[size // 2 - 7 : size // 2 + 7, 8:22] = swatch
        for line, part in enumerate(_wrap(name, 19)[:3]):
            paste_text(caption, text(part, 13, bold=line == 0), size // 2 - 9 + 17 * line, 28)
        if mask is not None:
            voxels = int(mask.sum())
            volume_ml = voxels * abs(np.linalg.det(grid.ijk_to_ras[:3, :3])) / 1000.0
            paste_text(caption, text(f"{volume_ml:,.1f} ml, {voxels:,} voxels", 11), size // 2 + 42, 28)
        rows.append(np.concatenate([caption, *tiles], axis=1))
    picture = np.concatenate(rows, axis=0)
    header = np.empty((_TITLE_HEIGHT, picture.shape[1], 3), np.uint8)
    header[:] = BACKGROUND
    paste_text(header, text(title or "", 15, bold=True), 5, 8)
    low, high = window
    paste_text(header, text(f"window {low:.4g} .. {high:.4g}", 11), 8, picture.shape[1] - 150)
    return np.concatenate([header, picture], axis=0)


def overview_picture(
    image: np.ndarray,
    grid: Grid,
    labels: np.ndarray | None,
    table: LabelTable | None,
    size: int = 128,
    window: tuple[float, float] | None = None,
) -> np.ndarray:
    """A thumbnail row: axial, coronal and sagittal slices through the labels' busiest slices, all outlines."""
    layout = display_layout(grid)
    volume = layout.to_display(image)
    window = window or auto_window(volume)
    shown = layout.to_display(labels) if labels is not None else None
    present = [int(v) for v in np.unique(shown) if v] if shown is not None else []
    tiles = []
    for view in _SHOWN_VIEWS:
        axis = view_axis(view)
        index = _busiest(shown != 0, axis) if present else layout.display.size[axis] // 2
        overlays = []
        for value in present:
            label = table.by_value(value) if table is not None else None
            color = label.color if label else default_color(value)
            overlays.append((view_slice(shown == value, view, index), color))  # type: ignore[operator]
        tiles.append(panel(view_slice(volume, view, index), view_spacing(layout.display, view), window, overlays, size))
    return np.concatenate(tiles, axis=1)


def _wrap(name: str, width: int) -> list[str]:
    lines, current = [], ""
    for word in name.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    return [*lines, current] if current else lines or [name]


def png_bytes(array: np.ndarray) -> bytes:
    """PNG file content of a (rows, cols) gray (uint8/uint16) or (rows, cols, 3|4) uint8 array."""
    if array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG holds 8- or 16-bit pixels, not {array.dtype}.")
    components = 1 if array.ndim == 2 else array.shape[2]
    image = vtk.vtkImageData()
    image.SetDimensions(array.shape[1], array.shape[0], 1)
    flat = np.ascontiguousarray(array[::-1]).reshape(-1, components)  # VTK rows run bottom-up
    scalars = numpy_support.numpy_to_vtk(flat, deep=True)
    image.GetPointData().SetScalars(scalars)
    writer = vtk.vtkPNGWriter()
    writer.SetInputData(image)
    writer.WriteToMemoryOn()
    writer.Write()
    return numpy_support.vtk_to_numpy(writer.GetResult()).tobytes()


def write_png(array: np.ndarray, path: str | Path, overwrite: bool = True) -> Path:
    """Write a PNG atomically."""
    data = png_bytes(array)
    return atomic_write(path, lambda temp: temp.write_bytes(data), overwrite)


def read_png(path: str | Path) -> np.ndarray:
    """A PNG as a (rows, cols[, components]) array, top row first (for checks)."""
    reader = vtk.vtkPNGReader()
    reader.SetFileName(str(path))
    reader.Update()
    image = reader.GetOutput()
    dims = image.GetDimensions()
    components = image.GetNumberOfScalarComponents()
    pixels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(dims[1], dims[0], components)
    pixels = pixels[::-1]
    return pixels[..., 0].copy() if components == 1 else pixels.copy()
