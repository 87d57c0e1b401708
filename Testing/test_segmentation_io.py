"""Loading labelmaps and .seg.nrrd files onto a volume: exact grids, values from the table, no resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import write_volume

from SegTruthLogic import SegTruthError
from SegTruthLogic.core.geometry import Grid, move_array
from SegTruthLogic.core.labels import LabelTable
from SegTruthLogic.core.sources import source_grid
from SegTruthLogic.scene.export import export
from SegTruthLogic.scene.segmentation_io import load_segmentation
from SegTruthLogic.scene.segments import find_segment, segment_ids, segment_info, segment_mask
from SegTruthLogic.scene.session import Session
from SegTruthLogic.scene.volumes import load_volume

TABLE = LabelTable.from_csv("name,value,color\nliver,3,#aa0000\nspleen,7,#00aa00\nkidney,9,#0000aa\n", "organs.csv")
GEOMETRY = {"spacing": (0.7, 1.1, 2.5), "origin": (12.0, -30.0, 5.0)}
LEFT_HANDED = (0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # i and j swapped: negative determinant


def labels_array() -> np.ndarray:
    labels = np.zeros((6, 9, 8), dtype=np.uint8)  # k, j, i
    labels[1:3, 2:5, 1:4] = 3
    labels[3:5, 5:8, 4:7] = 7
    return labels


def pair(folder: Path, direction=(1, 0, 0, 0, 1, 0, 0, 0, 1), suffix: str = ".nii.gz") -> tuple[Path, Path]:
    """A volume and a labelmap on exactly its grid."""
    values = np.arange(6 * 9 * 8, dtype=np.int16).reshape(6, 9, 8)
    image = write_volume(folder / f"image{suffix}", values, direction=direction, **GEOMETRY)
    labels = write_volume(folder / f"labels{suffix}", labels_array(), direction=direction, **GEOMETRY)
    return image, labels


def masks_by_name(session, node, volume) -> dict[str, np.ndarray]:
    """Segment masks moved back onto the volume's file grid, by segment name."""
    out = {}
    for sid in segment_ids(node):
        mask = segment_mask(session, node, sid, volume)
        out[segment_info(node, sid)[0]] = move_array(mask, Grid.from_node(volume), source_grid(volume))
    return out


@pytest.mark.parametrize("direction", [(1, 0, 0, 0, 1, 0, 0, 0, 1), LEFT_HANDED], ids=["right", "left-handed"])
@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_labelmap_with_table(session, tmp_path, direction, suffix):
    image, labels = pair(tmp_path, direction, suffix)
    volume = load_volume(session, image)
    node = load_segmentation(session, labels, volume, TABLE)
    masks = masks_by_name(session, node, volume)
    assert set(masks) == {"liver", "spleen"}  # only labels present become segments
    assert np.array_equal(masks["liver"], labels_array() == 3)
    assert np.array_equal(masks["spleen"], labels_array() == 7)
    _name, color, _terminology, value = segment_info(node, find_segment(node, "spleen"))
    assert value == 7 and np.allclose(color, (0, 0.6667, 0), atol=1e-3)
    # Exported with the same table, the labelmap is the input file again, voxel for voxel, on its grid.
    written = export(session, node, volume, tmp_path / f"again{'.nrrd' if suffix == '.mha' else suffix}", TABLE)
    again = sitk.ReadImage(str(written))
    assert np.array_equal(sitk.GetArrayFromImage(again), labels_array())
    assert Grid.from_sitk(again).same_as(Grid.from_sitk(sitk.ReadImage(str(labels))), tolerance=1e-5)


def test_labelmap_without_table_names_values(session, tmp_path):
    image, labels = pair(tmp_path, LEFT_HANDED)
    volume = load_volume(session, image)
    node = load_segmentation(session, labels, volume)
    infos = {segment_info(node, sid)[0]: segment_info(node, sid)[3] for sid in segment_ids(node)}
    assert infos == {"Label 3": 3, "Label 7": 7}
    assert np.array_equal(masks_by_name(session, node, volume)["Label 7"], labels_array() == 7)
    written = export(session, node, volume, tmp_path / "again.nrrd")
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(written))), labels_array())


def test_labelmap_on_the_flipped_grid_is_the_same_voxels(session, tmp_path):
    """Slicer flips a left-handed volume on load and writes its labelmaps on that grid: same voxels, accepted."""
    image, _labels = pair(tmp_path, LEFT_HANDED)
    volume = load_volume(session, image)
    node_grid = Grid.from_node(volume)
    assert not node_grid.same_as(source_grid(volume))
    flipped = node_grid.apply_to_sitk(
        sitk.GetImageFromArray(move_array(labels_array(), source_grid(volume), node_grid))
    )
    sitk.WriteImage(flipped, str(tmp_path / "flipped.nrrd"))
    node = load_segmentation(session, tmp_path / "flipped.nrrd", volume, TABLE)
    assert np.array_equal(masks_by_name(session, node, volume)["liver"], labels_array() == 3)


def test_float_labelmap_with_whole_values_is_accepted(session, tmp_path):
    image, _labels = pair(tmp_path)
    floats = write_volume(tmp_path / "floats.nii.gz", labels_array().astype(np.float32), **GEOMETRY)
    node = load_segmentation(session, floats, load_volume(session, image), TABLE)
    assert len(segment_ids(node)) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.astype(np.float32) + 0.5, "non-integer values \\(e.g. 0.5\\)"),
        (lambda a: a.astype(np.int16) - 1, "label values from -1 to 6"),
        (lambda a: np.where(a == 7, 4, a), "label values \\[4\\] are not in the organs.csv"),
    ],
    ids=["fractional", "negative", "not-in-table"],
)
def test_bad_label_values(session, tmp_path, change, message):
    image, _labels = pair(tmp_path)
    bad = write_volume(tmp_path / "bad.nii.gz", change(labels_array()), **GEOMETRY)
    volume = load_volume(session, image)
    with pytest.raises(SegTruthError, match=message) as error:
        load_segmentation(session, bad, volume, TABLE)
    assert "bad.nii.gz" in str(error.value)
    assert session.scene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems() == 0


@pytest.mark.parametrize(
    ("geometry", "difference"),
    [
        (
            {"origin": (12.0, -30.0, 10.0)},
            "origin RAS \\(-12, 30, 10\\)\\) is not .* differing in origin \\(by 5 mm\\)",
        ),
        ({"spacing": (0.7, 1.1, 2.0)}, "spacing 0.7x1.1x2 mm.* differing in spacing"),
        ({"direction": (1, 0, 0, 0, 0, 1, 0, 1, 0)}, "differing in axis directions"),
    ],
    ids=["shifted-5mm", "other-spacing", "other-directions"],
)
def test_labelmap_on_another_grid_is_refused(session, tmp_path, geometry, difference):
    image, _labels = pair(tmp_path)
    moved = write_volume(tmp_path / "moved.nii.gz", labels_array(), **{**GEOMETRY, **geometry})
    volume = load_volume(session, image)
    with pytest.raises(SegTruthError, match=f"moved.nii.gz: the labelmap's grid .*{difference}; labels are never"):
        load_segmentation(session, moved, volume)


def test_other_size_is_refused(session, tmp_path):
    image, _labels = pair(tmp_path)
    small = write_volume(tmp_path / "small.nrrd", labels_array()[:, :, :5], **GEOMETRY)
    with pytest.raises(SegTruthError, match=r"5x9x6 voxels.*is not the grid of 'image' \(8x9x6 voxels"):
        load_segmentation(session, small, load_volume(session, image))


def test_seg_nrrd_with_table(session, ct_chest):
    image, reference = ct_chest
    volume = load_volume(session, image)
    with pytest.raises(SegTruthError, match=r"segments \['ribs', .*'tissue'\] are not in the organs\.csv"):
        load_segmentation(session, reference, volume, TABLE)
    table = LabelTable.from_csv("name,value,color\nleft lung,12,#123456\n", "lungs.csv")
    for name in ("ribs", "cervical vertebral column", "thoracic vertebral column", "lumbar vertebral column"):
        table = table.with_label(name)
    table = table.with_label("right lung").with_label("tissue")
    node = load_segmentation(session, reference, volume, table)
    name, color, _terminology, value = segment_info(node, find_segment(node, "left lung"))
    assert value == 12 and np.allclose(color, (0x12 / 255, 0x34 / 255, 0x56 / 255))


def test_seg_nrrd_on_another_lattice_is_refused(session, ct_chest, two_boxes):
    _image, reference = ct_chest
    with pytest.raises(SegTruthError, match="not on the voxel lattice of 'boxes'"):
        load_segmentation(session, reference, load_volume(session, two_boxes))


def test_seg_nrrd_outside_the_volume_is_refused(session, ct_chest, tmp_path):
    image, reference = ct_chest
    ct = sitk.ReadImage(str(image))
    cropped = tmp_path / "cropped.nrrd"
    sitk.WriteImage(ct[:, :, 10:], str(cropped))  # same lattice, first 10 slices cut off
    with pytest.raises(SegTruthError, match="voxels outside 'cropped'; they would be lost"):
        load_segmentation(session, reference, load_volume(session, cropped))
    # A crop that keeps every labelled voxel is fine.
    keep = tmp_path / "keep.nrrd"
    sitk.WriteImage(ct[:125, :, :], str(keep))
    assert len(segment_ids(load_segmentation(session, reference, load_volume(session, keep)))) == 7


def test_sessions_and_web_workspaces_leave_one_of_each_converter_in_the_process():
    """Slicer's converter factory is process-wide: every Segmentations logic registers its converters again, and
    every segmentation made or copied instantiates all of them, so they must not pile up session after session."""
    import slicer

    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    for _ in range(3):
        Session.new_headless()
    names = [rule.GetName() for rule in factory.GetConverterRules()]
    assert len(names) == len(set(names)) and "Binary labelmap to closed surface" in names
    pytest.importorskip("trame_slicer")
    from SegTruthLogic.web.workspace import Workspace

    for _ in range(2):
        Workspace()
    assert [rule.GetName() for rule in factory.GetConverterRules()] == names
