"""Grow from seeds, incremental while the preview is up: more strokes only relax what they change.

The seeds and the editable area come from ``tools.grow.grow_inputs``, the function the CLI and recipes use,
and the result is written by ``tools.grow.write_grown``: the same case gives the same voxels everywhere.

After a stroke the preview is updated, not rebuilt: the case's labelmap layers are read once (they give the
seed segments, their seeds and what the stroke changed), the kept ``GrowCut`` relaxes only the new seeds,
and only the box of voxels whose result changed is written into the preview's own labelmap layers, with
the values ``write_grown`` would give there (``update_preview``). Where that cannot hold (other seed
segments, a new region, segments that would overlap in a layer) the preview is rebuilt as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import vtk
from vtk.util import numpy_support

from ...core.geometry import Grid
from ...core.progress import CancelToken, ProgressCallback
from ...scene.segments import image_array, layers, segment_ids
from ..testids import testid
from ..workspace import Workspace
from .base import BoundState, Effect, EffectSpec, Work, names

if TYPE_CHECKING:
    from ..app import SegTruthWebApp


@dataclass
class GrowState:
    inside: str | None = None  # segment ID
    whole_image: bool = False
    auto_update: bool = True


@dataclass
class GrowEffect(Effect):
    """seeds: the seed segments (default: every segment with voxels except ``inside``). inside: grow only in
    this segment, as Slicer's editable area "inside segment" (seeds outside it are ignored; the area is fixed
    when the preview starts, so strokes added later stay incremental). whole_image: grow over the whole image
    instead of the seeds' box plus ``margin`` (Slicer's default, which needs seeds spread around the structure).
    """

    seeds: list[str] | None = None
    inside: str | None = None
    whole_image: bool = False
    margin: float = 0.15
    key: ClassVar[str] = "grow"
    title: ClassVar[str] = "Grow from seeds"
    last_update: str = field(default="", init=False)
    _cut: Any = field(default=None, init=False, repr=False)
    _inputs: Any = field(default=None, init=False, repr=False)
    _case: Any = field(default=None, init=False, repr=False)  # the case's layers read by start
    _labels: Any = field(default=None, init=False, repr=False)  # the grown labels of the last update
    _shown: Any = field(default=None, init=False, repr=False)  # (case layers, labels, box, seed IDs) in the preview

    def _seed_ids(self, ws: Workspace, counts: dict[str, int]) -> list[str]:
        if self.seeds is not None:
            return [sid for sid in self.seeds if sid != self.inside]
        return [sid for sid in segment_ids(ws.segmentation) if counts.get(sid) and sid != self.inside]

    def start(self, ws: Workspace) -> Work:
        from ...tools.grow import GrowInputs, grow_inputs, growcut_for

        case = layers(ws.segmentation, ws.volume)  # one read of the case serves the seeds and the update
        counts = _counts(case)
        ids = self._seed_ids(ws, counts)
        previous = self._inputs
        present = sum(1 for sid in ids if counts.get(sid))
        if previous is not None and self._cut is not None and ids == previous.ids and present >= 2:
            # The same seed segments: their seeds from the layers just read (as ``seeds_from_segments`` makes
            # them: label n for the n-th, the later wins), the area as the preview started.
            grid = Grid.from_node(ws.volume)
            inputs = GrowInputs(previous.values, grid.spacing, _seed_map(case, ids), ids, previous.allowed)
        else:
            inside = ws.segment_name(self.inside) if self.inside is not None else None
            inputs = grow_inputs(ws.session, ws.segmentation, ws.volume, names(ws, ids), inside_segment=inside)
            if previous is None or inputs.ids != previous.ids:
                self._cut = None  # other seed segments: start over
            else:
                inputs.allowed = previous.allowed  # the area stays as the preview started
        self._cut = growcut_for(inputs, self._cut, margin=self.margin_setting)
        self._inputs, self._case, self._labels = inputs, case, None
        cut = self._cut

        def work(progress: ProgressCallback | None, cancel: CancelToken) -> None:
            self._labels = cut.update(inputs.seeds, progress, cancel)
            self.last_update = cut.last_update or ""

        return work

    @property
    def margin_setting(self) -> float | None:
        return None if self.whole_image else self.margin

    @property
    def area(self):
        """The editable area of the preview ((k, j, i) booleans; None: everywhere)."""
        return None if self._inputs is None else self._inputs.allowed

    def write(self, ws: Workspace, node) -> list[str]:
        from ...tools.grow import write_grown

        write_grown(ws.session, node, ws.volume, self._inputs.ids, self._cut)
        # What the node now holds: the case as copied into it (read again: the case may have changed since
        # start) and the labels written.
        self._shown = (
            None
            if self._labels is None
            else (layers(ws.segmentation, ws.volume), self._labels, self._cut.box, list(self._inputs.ids))
        )
        return list(self._inputs.ids)

    def update_preview(self, ws: Workspace, node) -> list[str] | None:
        """Write only what changed since the last ``write`` into ``node`` (the preview), in place; None when
        the preview must be rebuilt instead. The result is what ``write`` gives on a fresh copy of the case."""
        shown, labels, case, cut = self._shown, self._labels, self._case, self._cut
        if shown is None or labels is None or case is None or cut is None:
            return None
        old_case, old_labels, old_box, old_ids = shown
        if old_ids != self._inputs.ids or cut.box != old_box or [v for _, v in old_case] != [v for _, v in case]:
            return None  # other seed segments (label n means another), another region, or the layers changed
        if set(segment_ids(node)) != set(segment_ids(ws.segmentation)):
            return None
        changed = labels != old_labels
        for (old, _), (new, _) in zip(old_case, case):
            changed |= old != new
        box = _bounding_box(changed)
        if box is not None and not _write_box(node, Grid.from_node(ws.volume), box, self._wanted(case, labels, box)):
            return None
        self._shown = (case, labels, cut.box, list(self._inputs.ids))
        return list(self._inputs.ids)

    def _wanted(self, case, labels: np.ndarray, box: tuple[slice, ...]) -> dict[str, np.ndarray]:
        """Each segment's voxels in ``box`` as ``write_grown`` leaves them: the grown label inside the region
        the grow decided, the case's voxels elsewhere."""
        wanted = {sid: values[box] == value for values, segments in case for value, sid in segments.items()}
        decided = np.zeros(tuple(s.stop - s.start for s in box), dtype=bool)
        region = self._cut.box
        inner = tuple(slice(max(a.start, r.start), min(a.stop, r.stop)) for a, r in zip(box, region))
        if all(s.start < s.stop for s in inner):
            local = tuple(slice(i.start - a.start, i.stop - a.start) for i, a in zip(inner, box))
            decided[local] = True if self._cut.mask is None else self._cut.mask[inner]
        grown = labels[box]
        for label, sid in enumerate(self._inputs.ids, start=1):
            old = wanted.get(sid, np.zeros_like(decided))
            wanted[sid] = np.where(decided, grown == label, old)
        return wanted

    def summary(self) -> str:
        kind = {"full": "computed", "incremental": "updated incrementally", "unchanged": "unchanged"}
        return f"Grow from seeds: preview {kind.get(self.last_update, 'ready')}."


def _counts(case: list[tuple[np.ndarray, dict[int, str]]]) -> dict[str, int]:
    """Voxels per segment in layers already read (a comparison per segment: several times faster than a
    histogram of a uint8 layer, which numpy widens to int64 first)."""
    return {sid: int(np.count_nonzero(values == value)) for values, segments in case for value, sid in segments.items()}


def _seed_map(case, ids: list[str]) -> np.ndarray:
    """The seed map ``tools.grow.seeds_from_segments`` makes, from layers already read."""
    where = {sid: (values, value) for values, segments in case for value, sid in segments.items()}
    seeds = np.zeros(case[0][0].shape, dtype=np.uint16)
    for label, sid in enumerate(ids, start=1):
        if sid in where:
            values, value = where[sid]
            seeds[values == value] = label
    return seeds


def _bounding_box(changed: np.ndarray) -> tuple[slice, ...] | None:
    """The (k, j, i) box of the True voxels; None when there is none."""
    box = []
    for axis in range(changed.ndim):
        hit = np.flatnonzero(changed.any(axis=tuple(a for a in range(changed.ndim) if a != axis)))
        if hit.size == 0:
            return None
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


def _write_box(node, grid: Grid, box: tuple[slice, ...], wanted: dict[str, np.ndarray]) -> bool:
    """Write each segment's ``wanted`` voxels into the box of its labelmap layer of ``node``, in place.

    False (nothing written) when a layer is not on the volume's grid or two of its segments would share a
    voxel (Slicer would then put them in separate layers: the caller rebuilds). A layer cropped to its
    segments' bounds (as Slicer stores them) that does not cover the box is widened to the whole grid first.
    """
    segmentation = node.GetSegmentation()
    matrix = _grid_matrix(grid)
    plans = []
    for layer in range(segmentation.GetNumberOfLayers()):
        image = segmentation.GetLayerDataObject(layer)
        ids = segmentation.GetSegmentIDsForLayer(layer)
        if not ids:
            continue
        if image.GetPointData().GetScalars() is None or image.GetNumberOfScalarComponents() != 1:
            return False
        m = vtk.vtkMatrix4x4()
        image.GetImageToWorldMatrix(m)
        if not np.allclose([[m.GetElement(r, c) for c in range(4)] for r in range(4)], matrix, atol=1e-6):
            return False
        values = {sid: segmentation.GetSegment(sid).GetLabelValue() for sid in ids}
        new = np.zeros(tuple(s.stop - s.start for s in box), dtype=np.int64)
        count = np.zeros(new.shape, dtype=np.uint8)
        for sid, value in values.items():
            mask = wanted.get(sid)
            if mask is None:
                return False
            new[mask] = value
            count += mask
        if count.max(initial=0) > 1:
            return False
        plans.append((image, new, list(values)))
    for image, new, ids in plans:
        e = image.GetExtent()
        if any(e[2 * a] > box[2 - a].start or e[2 * a + 1] < box[2 - a].stop - 1 for a in range(3)):
            if not new.any():
                continue  # nothing of this layer's segments in the box, and the layer has no voxel there
            _widen(image, grid)
            e = image.GetExtent()
        local = tuple(slice(s.start - e[4 - 2 * a], s.stop - e[4 - 2 * a]) for a, s in enumerate(box))
        view = image_array(image)
        if np.array_equal(view[local], new):
            continue
        view[local] = new
        image.Modified()
        for sid in ids:
            segmentation.GetSegment(sid).Modified()
    return True


def _widen(image, grid: Grid) -> None:
    """Give a labelmap layer the volume's whole extent, its voxels kept (zero where it had none)."""
    e = image.GetExtent()
    old = image_array(image) if e[0] <= e[1] and e[2] <= e[3] and e[4] <= e[5] else None
    scalars = image.GetPointData().GetScalars()
    dtype = numpy_support.get_numpy_array_type(scalars.GetDataType())
    full = np.zeros(grid.shape_kji, dtype=dtype)
    if old is not None:
        full[e[4] : e[5] + 1, e[2] : e[3] + 1, e[0] : e[1] + 1] = old
    array = numpy_support.numpy_to_vtk(full.ravel(), deep=True, array_type=scalars.GetDataType())
    array.SetName(scalars.GetName())
    image.SetExtent(0, grid.size[0] - 1, 0, grid.size[1] - 1, 0, grid.size[2] - 1)
    image.GetPointData().SetScalars(array)


def _grid_matrix(grid: Grid) -> np.ndarray:
    """The grid's IJK-to-RAS matrix as an array (to compare with a layer's image-to-world matrix)."""
    m = grid.vtk_matrix()
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])


def grow_ui(bound: BoundState[GrowState], app: SegTruthWebApp) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    html.Div(
        "Seeds: every segment with voxels. Paint a stroke in each structure, then Preview; "
        "more strokes update the preview incrementally.",
        classes="text-body-2 mb-2",
    )
    v.VSelect(
        v_model=(bound.name("inside"),),
        items=("st_segments",),
        label="Grow only inside segment",
        clearable=True,
        density="compact",
        hide_details=True,
        raw_attrs=testid("grow-inside"),
    )
    for field_name, label, name in (
        ("whole_image", "Whole image (else the seeds' box + 15 %)", "grow-whole-image"),
        ("auto_update", "Update the preview after each stroke", "grow-auto-update"),
    ):
        v.VCheckbox(
            v_model=(bound.name(field_name),), label=label, density="compact", hide_details=True, raw_attrs=testid(name)
        )


SPEC = EffectSpec(
    key="grow",
    title="Grow from seeds",
    icon="mdi-sprout",
    prefix="st_grow",
    state_type=GrowState,
    ui=grow_ui,
    settings=lambda state, app: (state.inside or None, bool(state.whole_image)),
    make=lambda settings, app: GrowEffect(inside=settings[0], whole_image=settings[1]),
    follows_edits=lambda state: bool(state.auto_update),
)
