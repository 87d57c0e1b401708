"""Fill between slices: segments drawn on some slices are interpolated in 3D, all at once.

This is Slicer's Fill between slices effect: the segments are merged into one labelmap (a segment
earlier in the list wins where segments overlap), ITK's morphological contour interpolation fills the
slices between drawn ones for every label together, and each segment gets its own label back. By
default the filter finds, for each label, the axes along which it was drawn on separated slices; an
axis can be forced.

Slicer's ``vtkITKMorphologicalContourInterpolator`` keeps ITK filters in thread-local storage of
ITK's worker threads. On slicer-core those are TBB threads that are torn down after ITK's globals at
interpreter exit, so a plain Python process that ran the filter segfaults when it exits. Headless, the
filter therefore runs in a short-lived child process (same Python, same slicer-core) that leaves with
``os._exit`` once the result is written (a ``jobs.ProcessJob``); the caller's process stays clean and the work
can be cancelled.
Inside the Slicer application the filter runs in-process, as the effect does.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Union

import numpy as np

from ..core.errors import SegTruthError
from ..core.geometry import Grid
from ..core.jobs import ProcessJob
from ..core.progress import CancelToken, ProgressCallback, report
from ..scene.editing import DEFAULT_OPTIONS, EditOptions, apply_mask
from ..scene.segments import find_segment, segment_ids, segment_mask
from ..scene.session import Session

Axis = Union[int, str, None]  # evaluated: Python 3.9 has no int | str

_INDEX_AXES = {"i": 0, "j": 1, "k": 2}
# Slices of a view are perpendicular to an anatomical axis: sagittal to R, coronal to A, axial to S.
_VIEW_AXES = {"sagittal": 0, "coronal": 1, "axial": 2}


def interpolation_axis(volume, axis: Axis) -> int:
    """The volume's index axis (0=i, 1=j, 2=k) to interpolate along, or -1 to let the filter find it per label.

    ``axis`` is None (automatic), 0/1/2, "i"/"j"/"k", or the view the slices were drawn in ("axial",
    "coronal", "sagittal": the index axis closest to S, A or R).
    """
    if axis is None:
        return -1
    if isinstance(axis, int) and not isinstance(axis, bool) and axis in (0, 1, 2):
        return axis
    if isinstance(axis, str):
        key = axis.strip().lower()
        if key in _INDEX_AXES:
            return _INDEX_AXES[key]
        if key in _VIEW_AXES:
            directions = Grid.from_node(volume).direction_ras
            return int(np.argmax(np.abs(directions[_VIEW_AXES[key], :])))
    raise SegTruthError(
        f"Unknown slice axis {axis!r}; use 0, 1, 2, 'i', 'j', 'k', 'axial', 'coronal', 'sagittal' or None (automatic)."
    )


def fill_between_slices(
    session: Session,
    segmentation_node,
    volume,
    segments: Sequence[str] | None = None,
    axis: Axis = None,
    options: EditOptions = DEFAULT_OPTIONS,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[str]:
    """Interpolate ``segments`` (all segments by default) between the slices they were drawn on.

    Each segment is replaced by its interpolated shape through the Segment Editor logic (``options``
    apply). Returns the IDs of the segments written.
    """
    if isinstance(segments, str):
        segments = [segments]
    ids = (
        [find_segment(segmentation_node, s) for s in segments]
        if segments is not None
        else segment_ids(segmentation_node)
    )
    if not ids:
        raise SegTruthError(f"Segmentation {segmentation_node.GetName()!r} has no segments to fill between slices.")
    if len(set(ids)) != len(ids):
        raise SegTruthError("Fill between slices got the same segment more than once.")
    axis_index = interpolation_axis(volume, axis)
    grid = Grid.from_node(volume)
    merged = np.zeros(grid.shape_kji, dtype=np.uint8 if len(ids) < 256 else np.uint16)
    for value in range(len(ids), 0, -1):  # earlier segments are painted last, so they win overlaps
        merged[segment_mask(session, segmentation_node, ids[value - 1], volume)] = value
    if not merged.any():
        raise SegTruthError(
            f"Fill between slices found nothing drawn in the segments of {segmentation_node.GetName()!r}."
        )
    box = _crop_box(merged)
    report(progress, 0.05, "Interpolating between slices")
    filled = np.zeros_like(merged)
    filled[box] = interpolate_labels(
        merged[box], grid.spacing, axis_index, in_process=not session.headless, cancel=cancel
    )
    report(progress, 0.9, "Writing segments")
    for value, segment_id in enumerate(ids, start=1):
        apply_mask(session, segmentation_node, segment_id, volume, filled == value, "set", options)
    report(progress, 1.0, "Filled between slices")
    return ids


def interpolate_labels(
    labels: np.ndarray,
    spacing: Sequence[float],
    axis: int = -1,
    in_process: bool = False,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """ITK morphological contour interpolation of a (k, j, i) label array with (i, j, k) ``spacing``."""
    labels = np.ascontiguousarray(labels)
    if in_process:
        return _run_filter(labels, spacing, axis)
    with tempfile.TemporaryDirectory(prefix="segtruth-fill-") as folder:
        source, target = Path(folder) / "labels.npy", Path(folder) / "filled.npy"
        np.save(source, labels)
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        command = [
            sys.executable,
            "-m",
            __name__,
            str(source),
            str(target),
            str(axis),
            *(str(float(s)) for s in spacing),
        ]
        job = ProcessJob(command, "fill between slices", cancel=cancel, env=env)
        try:
            job.wait()
        except BaseException:
            job.stop()  # an interrupt of this thread: the worker goes before its folder does
            raise
        if not target.exists():
            raise SegTruthError("Fill between slices: its worker process exited without writing the result.")
        return np.load(target)


def _run_filter(labels: np.ndarray, spacing: Sequence[float], axis: int) -> np.ndarray:
    import slicer
    import vtk
    from vtk.util import numpy_support

    image = vtk.vtkImageData()
    image.SetDimensions(labels.shape[2], labels.shape[1], labels.shape[0])
    image.SetSpacing(*(float(s) for s in spacing))
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(labels.ravel(), deep=True))
    interpolator = slicer.vtkITKMorphologicalContourInterpolator()
    interpolator.SetInputData(image)
    interpolator.SetAxis(int(axis))
    interpolator.Update()
    scalars = interpolator.GetOutput().GetPointData().GetScalars()
    return numpy_support.vtk_to_numpy(scalars).reshape(labels.shape).astype(labels.dtype, copy=True)


def _crop_box(labels: np.ndarray) -> tuple[slice, slice, slice]:
    """The labels' bounding box grown as Slicer's auto-complete effects grow it (10 %, at least 3 voxels)."""
    box = []
    for axis in range(3):
        present = np.flatnonzero(labels.any(axis=tuple(a for a in range(3) if a != axis)))
        lo, hi = int(present[0]), int(present[-1])
        pad = max(3, int(0.1 * (hi - lo)))
        box.append(slice(max(lo - pad, 0), min(hi + pad, labels.shape[axis] - 1) + 1))
    return tuple(box)  # type: ignore[return-value]


def _worker(argv: list[str]) -> None:
    """Child-process entry: interpolate ``argv[0]`` into ``argv[1]``; leaves with os._exit (see module doc)."""
    try:
        source, target, axis, *spacing = argv
        filled = _run_filter(np.load(source), [float(s) for s in spacing], int(axis))
        partial = target + ".part.npy"
        np.save(partial, filled)
        os.replace(partial, target)
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    _worker(sys.argv[1:])
