"""Real data: slicerio's chest CT with its reference segmentations, read back by slicerio (an independent reader)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio

from SegTruthLogic import SegTruthError
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.scene.export import export
from SegTruthLogic.scene.segmentation_io import load_segmentation
from SegTruthLogic.scene.segments import find_segment, segment_mask
from SegTruthLogic.scene.volumes import load_volume


def by_name(segmentation: dict) -> dict[str, dict]:
    return {segment["name"]: segment for segment in segmentation["segments"]}


def assert_same_lattice(ours: dict, reference: dict) -> None:
    assert np.allclose(ours["ijkToLPS"], reference["ijkToLPS"], atol=1e-6)
    assert list(ours["referenceImageExtentOffset"]) == list(reference["referenceImageExtentOffset"])
    assert ours["voxels"].shape[-3:] == reference["voxels"].shape[-3:]


def test_seg_nrrd_round_trip_keeps_everything(session, ct_chest, tmp_path):
    image, reference_path = ct_chest
    volume = load_volume(session, image)
    segmentation = load_segmentation(session, reference_path, volume)
    written = export(session, segmentation, volume, tmp_path / "out.seg.nrrd")

    reference, ours = slicerio.read_segmentation(str(reference_path)), slicerio.read_segmentation(str(written))
    assert_same_lattice(ours, reference)
    assert len(ours["segments"]) == len(reference["segments"]) == 7
    mine = by_name(ours)
    for name, expected in by_name(reference).items():
        got = mine[name]
        assert np.allclose(got["color"], expected["color"], atol=1e-6), name
        assert got["labelValue"] == expected["labelValue"], name
        assert got["terminology"] == expected["terminology"], name
        assert np.array_equal(slicerio.segment_mask(ours, got), slicerio.segment_mask(reference, expected)), name
    assert np.array_equal(ours["voxels"], reference["voxels"])  # one layer, same values: identical voxels


def test_labelmap_export_equals_the_reference(session, ct_chest, tmp_path):
    image, reference_path = ct_chest
    volume = load_volume(session, image)
    segmentation = load_segmentation(session, reference_path, volume)
    written = export(session, segmentation, volume, tmp_path / "labels.nii.gz")

    labels = sitk.ReadImage(str(written))
    assert Grid.from_sitk(labels).same_as(Grid.from_sitk(sitk.ReadImage(str(image))), tolerance=1e-4)
    reference = slicerio.read_segmentation(str(reference_path))
    assert np.array_equal(sitk.GetArrayFromImage(labels), reference["voxels"].transpose(2, 1, 0))
    assert sorted(np.unique(sitk.GetArrayFromImage(labels))) == list(range(8))


def test_overlapping_segments(session, ct_chest, tmp_path):
    image, reference_path = ct_chest
    overlapping = reference_path.parent / "SegmentationOverlapping.seg.nrrd"
    volume = load_volume(session, image)
    segmentation = load_segmentation(session, overlapping, volume)
    reference = slicerio.read_segmentation(str(overlapping))
    assert reference["voxels"].ndim == 4  # two layers

    with pytest.raises(SegTruthError, match=r"overlap in \d+ voxels; a labelmap"):
        export(session, segmentation, volume, tmp_path / "labels.nii.gz")
    assert list(tmp_path.iterdir()) == []

    written = export(session, segmentation, volume, tmp_path / "layers.seg.nrrd")
    ours = slicerio.read_segmentation(str(written))
    assert_same_lattice(ours, reference)
    assert ours["voxels"].ndim == 4
    mine = by_name(ours)
    assert set(mine) == set(by_name(reference))
    for name, expected in by_name(reference).items():
        mask = slicerio.segment_mask(reference, expected)
        assert mask.any(), name
        assert np.array_equal(slicerio.segment_mask(ours, mine[name]), mask), name
        assert np.allclose(mine[name]["color"], expected["color"], atol=1e-6), name
    # SegTruth's values stay unique across layers in its own tag; Slicer's writer renumbers the labelValue of
    # segments it puts in extra layers (from 1), so only the first layer's labelValue is the table's.
    values = [int(segment["tags"]["SegTruth.LabelValue"]) for segment in ours["segments"]]
    assert sorted(values) == list(range(1, 9))
    assert all(s["labelValue"] == int(s["tags"]["SegTruth.LabelValue"]) for s in ours["segments"] if s["layer"] == 0)


def test_loaded_segments_are_the_reference_masks(session, ct_chest):
    image, reference_path = ct_chest
    volume = load_volume(session, image)
    segmentation = load_segmentation(session, reference_path, volume)
    reference = slicerio.read_segmentation(str(reference_path))
    for segment in reference["segments"]:
        mask = segment_mask(session, segmentation, find_segment(segmentation, segment["name"]), volume)
        assert np.array_equal(mask, slicerio.segment_mask(reference, segment).transpose(2, 1, 0)), segment["name"]


def test_labelmap_file_back_onto_the_ct(session, ct_chest, tmp_path: Path):
    image, reference_path = ct_chest
    volume = load_volume(session, image)
    written = export(session, load_segmentation(session, reference_path, volume), volume, tmp_path / "labels.nrrd")
    segmentation = load_segmentation(session, written, volume)
    reference = slicerio.read_segmentation(str(reference_path))
    for segment in reference["segments"]:
        # Without a table the names are "Label N" with value N.
        mask = segment_mask(session, segmentation, find_segment(segmentation, f"Label {segment['labelValue']}"), volume)
        assert np.array_equal(mask, slicerio.segment_mask(reference, segment).transpose(2, 1, 0))
