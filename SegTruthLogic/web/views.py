"""What the page needs to know about each slice view, and window/level.

``view_geometry`` is published to the page for every slice view: Slicer's XY-to-RAS matrix and the view's size
(the brush maps a stroke with them), the slice position in mm, its number among the volume's slices, and the
patient directions at the view's edges (orientation markers). Window/level presets follow Slicer's CT presets;
an MR (or any image that is not in Hounsfield units) gets its window from the 1st and 99th percentiles.
"""

from __future__ import annotations

import numpy as np
import vtk

from .brush import volume_ijk_to_ras

CT_PRESETS: dict[str, tuple[float, float]] = {  # name: (window, level) in HU, as Slicer's CT presets
    "abdomen": (350.0, 40.0),
    "lung": (1400.0, -500.0),
    "bone": (1000.0, 400.0),
    "brain": (100.0, 50.0),
}
PRESET_TITLES = {"abdomen": "Abdomen", "lung": "Lung", "bone": "Bone", "brain": "Brain", "auto": "Auto (1-99 %)"}
VIEW_TITLES = {"axial": "Axial", "coronal": "Coronal", "sagittal": "Sagittal"}
_DIRECTIONS = (("L", "R"), ("P", "A"), ("I", "S"))  # RAS axes: (negative, positive) patient direction


def _direction_letter(vector: np.ndarray) -> str:
    """The patient direction a vector in RAS points to most ('R', 'A', 'S', ...)."""
    axis = int(np.argmax(np.abs(vector)))
    return _DIRECTIONS[axis][1 if vector[axis] > 0 else 0]


def view_geometry(view, volume) -> dict:
    """The slice view's geometry as the page reads it (JSON-ready)."""
    node = view.get_view_node()
    matrix = node.GetXYToRAS()
    xy_to_ras = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    width, height = view.render_window().GetSize()
    right, up = xy_to_ras[:3, 0], xy_to_ras[:3, 1]
    normal = xy_to_ras[:3, 2]
    geometry = {
        "name": VIEW_TITLES.get(view.get_orientation().lower(), view.get_orientation()),
        "xy_to_ras": [float(v) for v in xy_to_ras.ravel()],
        "width": int(width),
        "height": int(height),
        "offset": round(float(view.get_slice_value()), 2),
        "axis": _direction_letter(normal),
        "left": _direction_letter(-right),
        "right": _direction_letter(right),
        "top": _direction_letter(up),
        "bottom": _direction_letter(-up),
        "index": 0,
        "count": 1,
        "step": float(view.get_slice_step()),  # mm the slice moves along its normal for one slice step
        "index_mm": 0.0,  # mm along the normal from one volume slice to the next (signed)
    }
    if volume is not None and volume.GetImageData() is not None:
        index, count, index_mm = slice_index(volume, xy_to_ras, (width, height))
        geometry.update(index=index, count=count, index_mm=index_mm)
    return geometry


def slice_index(volume, xy_to_ras: np.ndarray, size: tuple[int, int]) -> tuple[int, int, float]:
    """The volume slice (0-based) the view shows, how many there are along its normal, and the mm between them."""
    ijk_to_ras = volume_ijk_to_ras(volume)
    centre = xy_to_ras @ np.array([size[0] / 2.0, size[1] / 2.0, 0.0, 1.0])
    ijk = np.linalg.inv(ijk_to_ras) @ centre
    normal = xy_to_ras[:3, 2] / (np.linalg.norm(xy_to_ras[:3, 2]) or 1.0)
    axis = int(np.argmax(np.abs(np.linalg.inv(ijk_to_ras[:3, :3]) @ normal)))
    dims = volume.GetImageData().GetDimensions()
    index_mm = float(ijk_to_ras[:3, axis] @ normal)
    return int(np.clip(np.floor(ijk[axis] + 0.5), 0, dims[axis] - 1)), int(dims[axis]), index_mm


def is_ct(values: np.ndarray) -> bool:
    """Hounsfield units: air near -1000 and something denser than water."""
    return bool(values.size) and float(values.min()) <= -900 and float(values.max()) >= 100


def auto_window(values: np.ndarray) -> tuple[float, float]:
    """Window and level from the 1st and 99th percentiles (a sample of the voxels is enough)."""
    flat = values.ravel()
    if flat.size > 2_000_000:
        flat = flat[:: flat.size // 1_000_000]
    low, high = np.percentile(flat, [1.0, 99.0])
    if high <= low:
        high = low + 1.0
    return float(high - low), float((high + low) / 2.0)


def preset_window(name: str, values: np.ndarray) -> tuple[float, float]:
    if name in CT_PRESETS:
        return CT_PRESETS[name]
    return auto_window(values)


def set_window_level(volume, window: float, level: float) -> None:
    display = volume.GetDisplayNode() if volume is not None else None
    if display is None:
        return
    display.AutoWindowLevelOff()
    display.SetWindowLevel(float(window), float(level))


def window_level(volume) -> tuple[float, float]:
    display = volume.GetDisplayNode()
    return float(display.GetWindow()), float(display.GetLevel())


def observe(node, callback) -> int:
    return node.AddObserver(vtk.vtkCommand.ModifiedEvent, callback)
