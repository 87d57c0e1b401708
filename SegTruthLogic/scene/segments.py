"""Segmentation nodes and segments as numpy masks on a volume's grid.

Masks cross the boundary between MRML and numpy only together with the volume node that gives them
their geometry, so no geometry-less array leaves this module.
"""

from __future__ import annotations

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from ..core.errors import SegTruthError
from ..core.geometry import Grid
from ..core.labels import Label, LabelTable, default_color
from ..core.terminology import Terminology
from .session import Session

LABEL_VALUE_TAG = "SegTruth.LabelValue"
TERMINOLOGY_TAG = "TerminologyEntry"


def new_segmentation(session: Session, volume, name: str | None = None):
    """An empty segmentation node whose reference geometry is the volume's grid."""
    node = session.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name or f"{volume.GetName()} segmentation")
    node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    return node


def segment_ids(segmentation_node) -> list[str]:
    ids = vtk.vtkStringArray()
    segmentation_node.GetSegmentation().GetSegmentIDs(ids)
    return [ids.GetValue(i) for i in range(ids.GetNumberOfValues())]


def find_segment(segmentation_node, name_or_id: str) -> str:
    """Segment ID from a segment name or ID; a clear error when there is none."""
    segmentation = segmentation_node.GetSegmentation()
    if segmentation.GetSegment(name_or_id) is not None:
        return name_or_id
    found = segmentation.GetSegmentIdBySegmentName(name_or_id)
    if not found:
        names = ", ".join(repr(segmentation.GetSegment(i).GetName()) for i in segment_ids(segmentation_node))
        raise SegTruthError(
            f"No segment named {name_or_id!r} in {segmentation_node.GetName()!r} (segments: {names or 'none'})."
        )
    return found


def add_segment(segmentation_node, label: Label | str, color=None) -> str:
    """Add an empty segment named after the label (or a plain name); returns its ID."""
    if isinstance(label, str):
        existing = segmentation_node.GetSegmentation().GetSegmentIdBySegmentName(label)
        if existing:
            raise SegTruthError(f"Segment {label!r} already exists in {segmentation_node.GetName()!r}.")
        value = len(segment_ids(segmentation_node)) + 1
        label = Label(label, value, tuple(color) if color is not None else default_color(value))  # type: ignore[arg-type]
        tag_value = False
    else:
        tag_value = True
    segment_id = segmentation_node.GetSegmentation().AddEmptySegment("", label.name, list(label.color))
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    segment.SetTag(TERMINOLOGY_TAG, label.terminology.serialize())
    if tag_value:
        segment.SetTag(LABEL_VALUE_TAG, str(label.value))
    return segment_id


def ensure_segment(segmentation_node, name: str, table: LabelTable | None = None) -> str:
    """The ID of the segment called ``name``, adding it (with the table's value/color if listed) if absent."""
    found = segmentation_node.GetSegmentation().GetSegmentIdBySegmentName(name)
    if found:
        return found
    label = table.by_name(name) if table else None
    return add_segment(segmentation_node, label or name)


# -- numpy <-> vtkOrientedImageData on a volume's grid ------------------------------------------------------------
def oriented_image(array: np.ndarray, volume) -> slicer.vtkOrientedImageData:
    """A vtkOrientedImageData with the geometry of ``volume`` (a volume node or its ``Grid``) holding ``array``
    (k, j, i)."""
    grid = Grid.of(volume)
    if array.shape != grid.shape_kji:
        name = "the image" if isinstance(volume, Grid) else repr(volume.GetName())
        raise SegTruthError(f"A mask of shape {array.shape} does not fit {name} ({grid.describe()}).")
    image = slicer.vtkOrientedImageData()
    image.SetImageToWorldMatrix(grid.vtk_matrix())
    image.SetExtent(0, grid.size[0] - 1, 0, grid.size[1] - 1, 0, grid.size[2] - 1)
    flat = np.ascontiguousarray(array).ravel()
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(flat, deep=True))
    return image


def reference_image(volume) -> slicer.vtkOrientedImageData:
    """An image with the volume's geometry and no voxels: all resampling needs.

    (``CreateOrientedImageDataFromVolumeNode`` copies the voxels into an object Python never frees, leaking a
    whole volume per call in batch work.)
    """
    grid = Grid.from_node(volume)
    image = slicer.vtkOrientedImageData()
    image.SetImageToWorldMatrix(grid.vtk_matrix())
    image.SetExtent(0, grid.size[0] - 1, 0, grid.size[1] - 1, 0, grid.size[2] - 1)
    return image


def image_array(image: vtk.vtkImageData) -> np.ndarray:
    """A (k, j, i) numpy view of a VTK image's scalars."""
    dims = image.GetDimensions()
    return numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(dims[2], dims[1], dims[0])


def _on_volume_grid(image: slicer.vtkOrientedImageData, volume) -> np.ndarray:
    """An internal labelmap's values on the volume's full grid (nearest neighbour; zero outside its extent)."""
    reference = reference_image(volume)
    out = np.zeros(Grid.from_node(volume).shape_kji, dtype=numpy_support.get_numpy_array_type(image.GetScalarType()))
    extent = image.GetExtent()
    if extent[0] > extent[1] or extent[2] > extent[3] or extent[4] > extent[5]:
        return out
    resampled = slicer.vtkOrientedImageData()
    if not slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
        image, reference, resampled, False, True
    ):
        raise SegTruthError(f"A segment could not be resampled onto {volume.GetName()!r}.")
    e, full = resampled.GetExtent(), reference.GetExtent()
    lo = [max(e[2 * a], full[2 * a]) for a in range(3)]
    hi = [min(e[2 * a + 1], full[2 * a + 1]) for a in range(3)]
    if any(lo[a] > hi[a] for a in range(3)):
        return out
    values = image_array(resampled)
    out[lo[2] : hi[2] + 1, lo[1] : hi[1] + 1, lo[0] : hi[0] + 1] = values[
        lo[2] - e[4] : hi[2] - e[4] + 1, lo[1] - e[2] : hi[1] - e[2] + 1, lo[0] - e[0] : hi[0] - e[0] + 1
    ]
    return out


def segment_mask(session: Session, segmentation_node, segment_id: str, volume) -> np.ndarray:
    """The segment as a boolean (k, j, i) mask on the volume's grid (nearest neighbour when grids differ)."""
    internal = slicer.vtkOrientedImageData()
    session.segmentations.GetSegmentBinaryLabelmapRepresentation(segmentation_node, segment_id, internal)
    label_value = segmentation_node.GetSegmentation().GetSegment(segment_id).GetLabelValue()
    return _on_volume_grid(internal, volume) == label_value


def layers(segmentation_node, volume) -> list[tuple[np.ndarray, dict[int, str]]]:
    """Each shared labelmap layer on the volume's grid, with its internal value -> segment ID map.

    Segments of one layer cannot overlap (Slicer keeps them exclusive), so a whole segmentation is read
    in one pass per layer instead of one per segment.
    """
    segmentation = segmentation_node.GetSegmentation()
    out = []
    for layer in range(segmentation.GetNumberOfLayers()):
        ids = segmentation.GetSegmentIDsForLayer(layer)
        values = {segmentation.GetSegment(sid).GetLabelValue(): sid for sid in ids}
        out.append((_on_volume_grid(segmentation.GetLayerDataObject(layer), volume), values))
    return out


def segment_masks(session: Session, segmentation_node, ids: list[str], volume) -> dict[str, np.ndarray]:
    """Boolean masks of several segments on the volume's grid (in ``ids`` order), reading each layer once."""
    if len(ids) <= 1:
        return {sid: segment_mask(session, segmentation_node, sid, volume) for sid in ids}
    wanted = set(ids)
    masks = {}
    for values, segments in layers(segmentation_node, volume):
        for value, sid in segments.items():
            if sid in wanted:
                masks[sid] = values == value
    return {sid: masks[sid] if sid in masks else segment_mask(session, segmentation_node, sid, volume) for sid in ids}


def set_segment_mask(session: Session, segmentation_node, segment_id: str, mask: np.ndarray, volume) -> None:
    """Replace the segment's voxels with ``mask`` (on the volume's grid), not touching other segments."""
    image = oriented_image(mask.astype(np.uint8, copy=False), volume)
    if not slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        image, segmentation_node, segment_id, slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE
    ):
        raise SegTruthError(f"Could not write segment {segment_id!r} of {segmentation_node.GetName()!r}.")


def segment_info(
    segmentation_node, segment_id: str
) -> tuple[str, tuple[float, float, float], Terminology | None, int | None]:
    """Name, color, terminology and SegTruth label value (if recorded) of a segment."""
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    text = vtk.reference("")
    terminology = Terminology.deserialize(str(text)) if segment.GetTag(TERMINOLOGY_TAG, text) else None
    value_text = vtk.reference("")
    value = int(str(value_text)) if segment.GetTag(LABEL_VALUE_TAG, value_text) else None
    return segment.GetName(), tuple(segment.GetColor()), terminology, value  # type: ignore[return-value]


def table_from_segmentation(segmentation_node) -> LabelTable:
    """A label table from the segments: recorded values first, then Slicer's label values, then the next free."""
    infos = [(sid, *segment_info(segmentation_node, sid)) for sid in segment_ids(segmentation_node)]
    used = {info[4] for info in infos if info[4] is not None}
    labels = []
    for sid, name, color, terminology, value in infos:
        if value is None:
            candidate = segmentation_node.GetSegmentation().GetSegment(sid).GetLabelValue()
            value = candidate if candidate > 0 and candidate not in used else max(used | {0}) + 1
            used.add(value)
        labels.append(Label(name, value, color, terminology or Terminology()))
    return LabelTable(labels, f"segments of {segmentation_node.GetName()!r}")


def apply_table(segmentation_node, table: LabelTable) -> None:
    """Give segments the names' colors, terminology and values from the table (matched by name)."""
    for sid in segment_ids(segmentation_node):
        segment = segmentation_node.GetSegmentation().GetSegment(sid)
        label = table.by_name(segment.GetName())
        if label is None:
            continue
        segment.SetColor(*label.color)
        segment.SetTag(TERMINOLOGY_TAG, label.terminology.serialize())
        segment.SetTag(LABEL_VALUE_TAG, str(label.value))


def labelmap_array(session: Session, segmentation_node, volume, table: LabelTable) -> np.ndarray:
    """All segments as one (k, j, i) label array on the volume's grid with the table's values.

    Every segment must be in the table (by name) and no voxel may belong to two segments: both are
    errors, never silent loss.
    """
    segmentation = segmentation_node.GetSegmentation()
    name_of = {sid: segmentation.GetSegment(sid).GetName() for sid in segment_ids(segmentation_node)}
    for name in name_of.values():
        if table.by_name(name) is None:
            raise SegTruthError(f"Segment {name!r} is not in the {table.source}; add it or remove the segment.")
    dtype = np.uint8 if table.max_value <= 255 else np.uint16
    out = np.zeros(Grid.from_node(volume).shape_kji, dtype=dtype)
    for internal, segments in layers(segmentation_node, volume):
        lookup = np.zeros(max(int(internal.max(initial=0)), max(segments, default=0)) + 1, dtype=dtype)
        for value, sid in segments.items():
            lookup[value] = table.by_name(name_of[sid]).value  # type: ignore[union-attr]
        mapped = lookup[internal]
        claimed = (out != 0) & (mapped != 0)
        if claimed.any():
            first = tuple(int(c[0]) for c in np.nonzero(claimed))
            existing = table.by_value(int(out[first])).name  # type: ignore[union-attr]
            incoming = table.by_value(int(mapped[first])).name  # type: ignore[union-attr]
            raise SegTruthError(
                f"Segments {existing!r} and {incoming!r} overlap in {int(np.count_nonzero(claimed))} voxels; a labelmap "
                "holds one label per voxel (export .seg.nrrd to keep overlapping segments as layers)."
            )
        np.copyto(out, mapped, where=mapped != 0)
    return out


def import_labelmap(session: Session, segmentation_node, labels: np.ndarray, volume, table: LabelTable) -> list[str]:
    """Add a segment for each table label present in ``labels`` (k, j, i on the volume's grid).

    Values not in the table are an error that lists them.
    """
    present = [int(v) for v in np.unique(labels) if v != 0]
    unknown = [v for v in present if table.by_value(v) is None]
    if unknown:
        raise SegTruthError(f"Label values {unknown} are not in the {table.source}.")
    ids = []
    for label in table:
        if label.value not in present:
            continue
        sid = ensure_segment(segmentation_node, label.name, table)
        set_segment_mask(session, segmentation_node, sid, labels == label.value, volume)
        ids.append(sid)
    apply_table(segmentation_node, table)
    return ids


def remove_segment(session: Session, segmentation_node, volume, segment: str) -> None:
    """Delete a segment (e.g. a helper seed segment after grow from seeds)."""
    segmentation_node.GetSegmentation().RemoveSegment(find_segment(segmentation_node, segment))
