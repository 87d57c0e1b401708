"""Bad input: one clear SegTruthError sentence naming the file, and nothing written or half-written.

Every case runs the whole load -> export path towards an output folder, which must stay empty (no result,
no temporary file), and leaves no half-built segmentation in the scene.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import slicer
from conftest import write_volume
from isolated import run_cli

from SegTruthLogic import SegTruthError
from SegTruthLogic.core.labels import LabelTable
from SegTruthLogic.scene.export import export
from SegTruthLogic.scene.segmentation_io import load_segmentation
from SegTruthLogic.scene.segments import new_segmentation
from SegTruthLogic.scene.volumes import load_volume
from SegTruthLogic.tools.threshold import threshold

ARRAY = np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7)


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    return folder


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def expect_error(action: Callable[[], object], name: str, match: str, out: Path) -> SegTruthError:
    """The action fails with one sentence naming ``name``, and ``out`` holds nothing."""
    with pytest.raises(SegTruthError, match=match) as error:
        action()
    message = str(error.value)
    assert name in message, message
    assert "\n" not in message and "Traceback" not in message, message
    assert list(out.iterdir()) == []
    return error.value


def load_and_export(session, image: Path, out: Path) -> Path:
    volume = load_volume(session, image)
    segmentation = new_segmentation(session, volume)
    threshold(session, segmentation, volume, "all", float(ARRAY.min()), None)
    return export(session, segmentation, volume, out / "labels.nii.gz")


def good_volume(folder: Path, name: str = "image.nii.gz") -> Path:
    """A small volume, compressed where the format allows."""
    image = sitk.GetImageFromArray(ARRAY)
    image.SetSpacing((0.5, 0.6, 2.0))
    image.SetOrigin((1.0, 2.0, 3.0))
    sitk.WriteImage(image, str(folder / name), useCompression=True)
    return folder / name


def truncate(path: Path, keep: float = 0.6) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


# -- images -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_truncated_image(session, inputs, out, suffix):
    image = truncate(good_volume(inputs, f"cut{suffix}"))
    expect_error(lambda: load_and_export(session, image, out), f"cut{suffix}", "truncated|corrupt", out)


def test_nifti_with_data_cut_short_inside_a_whole_gzip_stream(session, inputs, out):
    """ITK pads a short NIfTI with zeros; the byte count still gives it away."""
    image = good_volume(inputs, "short.nii.gz")
    raw = gzip.decompress(image.read_bytes())
    image.write_bytes(gzip.compress(raw[: len(raw) - 100]))
    expect_error(lambda: load_and_export(session, image, out), "short.nii.gz", "is truncated \\(", out)


def test_corrupt_compressed_nrrd(session, inputs, out):
    """Teem does not check the gzip checksum: ITK reads this corrupt .nrrd as wrong voxels without a word."""
    values = np.random.default_rng(0).integers(0, 50, (10, 12, 14)).astype(np.int16)
    image = inputs / "corrupt.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(values), str(image), useCompression=True)
    clean = image.read_bytes()
    start = clean.index(b"\n\n") + 2
    for offset in range(start + 20, len(clean) - 20, 37):
        image.write_bytes(clean[:offset] + bytes(4) + clean[offset + 4 :])
        try:
            silently_wrong = not np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(image))), values)
        except RuntimeError:
            continue
        if silently_wrong:
            break
    else:
        pytest.fail("no corruption that ITK reads silently was found")
    expect_error(lambda: load_and_export(session, image, out), "corrupt.nrrd", "compressed data fails its check", out)


@pytest.mark.parametrize("name", ["image.png", "image.txt", "image"])
def test_unknown_image_extension(session, inputs, out, name):
    image = inputs / name
    shutil.copy(good_volume(inputs), image)
    expect_error(lambda: load_and_export(session, image, out), name, "unknown image extension", out)


def test_missing_image(session, inputs, out):
    expect_error(lambda: load_and_export(session, inputs / "absent.nii.gz", out), "absent.nii.gz", "not found", out)


def test_4d_image(session, inputs, out):
    image = inputs / "series.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((3, 5, 6, 7), np.int16), isVector=False), str(image))
    expect_error(lambda: load_and_export(session, image, out), "series.nii.gz", "is a 4D image \\(7x6x5x3\\)", out)


def test_2d_image(session, inputs, out):
    image = inputs / "slice.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((6, 7), np.int16)), str(image))
    expect_error(lambda: load_and_export(session, image, out), "slice.nrrd", "is a 2D image \\(7x6\\)", out)


def test_color_image(session, inputs, out):
    image = inputs / "rgb.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((5, 6, 7, 3), np.uint8), isVector=True), str(image))
    expect_error(lambda: load_and_export(session, image, out), "rgb.nrrd", "3 components per voxel", out)


# -- label maps and segmentations -------------------------------------------------------------------------------------
def test_label_map_on_another_grid(session, inputs, out):
    volume = load_volume(session, good_volume(inputs))
    labels = write_volume(inputs / "other.nii.gz", (ARRAY > 100).astype(np.uint8), spacing=(0.5, 0.6, 2.0))
    expect_error(lambda: load_segmentation(session, labels, volume), "other.nii.gz", "is not the grid of 'image'", out)
    assert session.scene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems() == 0


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name,value\nliver,1\nspleen,1\n", "labels 'liver' and 'spleen' share the value 1"),
        ("name,value\nliver,1\nliver,2\n", "the name 'liver' is used twice"),
        ("name,value\nliver,0\n", "has value 0, which is background"),
    ],
    ids=["duplicate-values", "duplicate-names", "background"],
)
def test_bad_label_table(session, inputs, out, text, match):
    table = inputs / "labels.csv"
    table.write_text(text)
    expect_error(lambda: LabelTable.read(table), "labels.csv", match, out)


def seg_nrrd_variants(reference: Path, folder: Path) -> dict[str, Path]:
    data = reference.read_bytes()
    start = data.index(b"\n\n") + 2
    corrupt = bytearray(data)
    corrupt[start + 100 : start + 200] = b"x" * 100
    variants = {
        "truncated": data[: start + (len(data) - start) // 2],
        "header-only": data[:start],
        "checksum": bytes(corrupt),
        "garbage": b"not a segmentation\n" * 20,
        "empty": b"",
    }
    paths = {}
    for name, content in variants.items():
        paths[name] = folder / f"{name}.seg.nrrd"
        paths[name].write_bytes(content)
    return paths


@pytest.mark.parametrize("variant", ["truncated", "header-only", "checksum", "garbage", "empty"])
def test_corrupt_seg_nrrd(session, ct_chest, inputs, out, variant):
    """Slicer's own reader aborts the process on a truncated file and loads a corrupt one silently."""
    image, reference = ct_chest
    path = seg_nrrd_variants(reference, inputs)[variant]
    volume = load_volume(session, image)

    def action():
        segmentation = load_segmentation(session, path, volume)
        export(session, segmentation, volume, out / "labels.nii.gz")

    expect_error(action, path.name, "truncated|corrupt|not a NRRD file", out)
    assert session.scene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems() == 0


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ((b"\nSegmentation_ConversionParameters", b"\n\x00egmentation_ConversionParameters"), r"control byte b'\\x00'"),
        ((b"\ndimension: ", b"\x0bdimension: "), r"control byte b'\\x0b'"),
        ((b"\ndimension: ", b"\x85dimension: "), r"incomplete or invalid NRRD header"),
    ],
    ids=["nul-in-a-key", "vertical-tab-joins-two-lines", "next-line-byte"],
)
def test_damaged_seg_nrrd_header_is_one_sentence(ct_chest, inputs, out, damage, match):
    """Found by the fuzzer: Slicer's segmentation reader crashes (SIGSEGV) on a NUL in a header key and aborts
    (SIGABRT) on a line it cannot parse, where Python's str.splitlines() had seen two good lines."""
    image, reference = ct_chest
    path = inputs / "damaged.seg.nrrd"
    old, new = damage
    path.write_bytes(reference.read_bytes().replace(old, new, 1))
    for argv in (["info", path], ["export", image, path, "-o", out / "labels.nii.gz"]):
        outcome = run_cli(argv, timeout=120)
        assert outcome.returncode == 1 and outcome.one_error_line, outcome.describe()
        assert re.search(rf"segtruth: error: {re.escape(str(path))}: .*{match}", outcome.error_lines[0]), outcome.stderr
        assert list(out.iterdir()) == []


def test_plain_volume_named_seg_nrrd(session, ct_chest, inputs, out):
    image, _reference = ct_chest
    renamed = inputs / "ct.seg.nrrd"
    shutil.copy(image, renamed)
    volume = load_volume(session, image)
    expect_error(lambda: load_segmentation(session, renamed, volume), "ct.seg.nrrd", "not a Slicer segmentation", out)


def test_unknown_segmentation_extension(session, inputs, out):
    volume = load_volume(session, good_volume(inputs))
    other = inputs / "labels.json"
    other.write_text("{}")
    expect_error(
        lambda: load_segmentation(session, other, volume), "labels.json", "unknown segmentation extension", out
    )


# -- DICOM ----------------------------------------------------------------------------------------------------------
def test_empty_dicom_folder(session, inputs, out):
    empty = inputs / "dicom"
    empty.mkdir()
    expect_error(lambda: load_and_export(session, empty, out), "dicom", "holds no DICOM image files", out)


# -- exports --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["labels.png", "labels.mha", "labels", "labels.nii.zip"])
def test_export_to_unknown_extension(session, inputs, out, name):
    volume = load_volume(session, good_volume(inputs))
    segmentation = new_segmentation(session, volume)
    threshold(session, segmentation, volume, "bright", 100, None)
    expect_error(lambda: export(session, segmentation, volume, out / name), name, "unknown output extension", out)


def test_export_into_a_missing_folder(session, inputs, out):
    volume = load_volume(session, good_volume(inputs))
    segmentation = new_segmentation(session, volume)
    threshold(session, segmentation, volume, "bright", 100, None)
    target = out / "absent" / "labels.nii.gz"
    expect_error(lambda: export(session, segmentation, volume, target), "labels.nii.gz", "does not exist", out)


def test_export_never_overwrites_when_asked_not_to(session, inputs, out):
    volume = load_volume(session, good_volume(inputs))
    segmentation = new_segmentation(session, volume)
    threshold(session, segmentation, volume, "bright", 100, None)
    existing = out / "labels.nii.gz"
    existing.write_bytes(b"annotation")
    with pytest.raises(SegTruthError, match="already exists; refusing to overwrite"):
        export(session, segmentation, volume, existing, overwrite=False)
    assert existing.read_bytes() == b"annotation"
    assert [p.name for p in out.iterdir()] == ["labels.nii.gz"]


@pytest.mark.parametrize("suffix", [".nii.gz", ".seg.nrrd"])
def test_failing_writer_leaves_no_temporary_file(session, inputs, out, monkeypatch, suffix):
    """A writer dying half-way (disk full, killed) leaves neither a result nor its temporary file."""
    volume = load_volume(session, good_volume(inputs))
    segmentation = new_segmentation(session, volume)
    threshold(session, segmentation, volume, "bright", 100, None)

    def half_write(*args, **kwargs):
        Path(args[1] if len(args) > 1 else args[0].GetFileName()).write_bytes(b"half")
        raise RuntimeError("No space left on device")

    class FailingStorage(slicer.vtkMRMLSegmentationStorageNode):
        def WriteData(self, node):
            half_write(self)

    if suffix == ".nii.gz":
        monkeypatch.setattr(sitk, "WriteImage", half_write)
    else:
        monkeypatch.setattr(slicer, "vtkMRMLSegmentationStorageNode", FailingStorage)
    with pytest.raises((RuntimeError, SegTruthError)):
        export(session, segmentation, volume, out / f"labels{suffix}")
    assert list(out.iterdir()) == []


def test_gantry_tilted_grid_is_refused_for_nifti_but_exact_in_nrrd(tmp_path, session):
    """A 20 degree shear cannot be stored in NIfTI: a clear error, no file; NRRD keeps it exactly."""
    tilt = np.deg2rad(20.0)
    image = sitk.GetImageFromArray(np.arange(12 * 10 * 8, dtype=np.int16).reshape(8, 10, 12))
    image.SetSpacing((1.0, 1.0, 2.0))
    image.SetDirection((1, 0, 0, 0, 1, float(np.sin(tilt)), 0, 0, float(np.cos(tilt))))
    sitk.WriteImage(image, str(tmp_path / "tilted.nrrd"))
    volume = load_volume(session, tmp_path / "tilted.nrrd")
    segmentation = new_segmentation(session, volume)
    threshold(session, segmentation, volume, "upper", 500, None)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SegTruthError, match=r"cannot hold the image's grid exactly.*\.nrrd"):
        export(session, segmentation, volume, out / "mask.nii.gz")
    assert list(out.iterdir()) == []
    written = sitk.ReadImage(str(export(session, segmentation, volume, out / "mask.nrrd")))
    assert np.allclose(written.GetDirection(), image.GetDirection(), atol=1e-6)
    assert np.array_equal(sitk.GetArrayFromImage(written) == 1, sitk.GetArrayFromImage(image) >= 500)


# -- the one NaN rule -------------------------------------------------------------------------------------------------
NAN_SENTENCE = "has 12 NaN or infinite voxels; SegTruth needs finite intensities"


@pytest.fixture
def nan_case(tmp_path: Path) -> dict[str, Path]:
    """A float image with 9 NaN and 3 infinite voxels, a good labelmap and seeds on its grid, a manifest."""
    folder = tmp_path / "nan"
    folder.mkdir()
    values = ARRAY.astype(np.float32)
    values.reshape(-1)[[0, 5, 17, 40, 41, 42, 99, 150, 200]] = np.nan
    values.reshape(-1)[[60, 61]] = np.inf
    values.reshape(-1)[62] = -np.inf
    labels = (ARRAY > 100).astype(np.uint8)
    seeds = np.zeros(ARRAY.shape, np.uint8)
    seeds[0, 0, 0], seeds[4, 5, 6] = 1, 2
    paths = {}
    for name, array in (("image", values), ("labels", labels), ("seeds", seeds)):
        paths[name] = write_volume(folder / f"{name}.nrrd", array, spacing=(0.5, 0.6, 2.0))
    paths["nifti"] = write_volume(folder / "image.nii.gz", values, spacing=(0.5, 0.6, 2.0))
    for kind in ("image", "nifti"):
        paths[f"manifest-{kind}"] = folder / f"cases-{kind}.csv"
        paths[f"manifest-{kind}"].write_text(
            f"case,image,segmentation\nc1,{paths[kind].name},labels.nrrd\n", encoding="utf-8"
        )
    return paths


def _nan_commands(case: dict[str, Path], kind: str, out: Path, model: Path | None) -> dict[str, list]:
    image, result = case[kind], out / "result.nii.gz"
    dataset = ["dataset", "nnunet", case[f"manifest-{kind}"], "-o", out / "raw", "--name", "x", "--id", "7"]
    commands = {
        "threshold --range": ["threshold", image, "--range", "0", "100", "-o", result],
        "threshold --method otsu": ["threshold", image, "--method", "otsu", "-o", result],
        "grow": ["grow", image, "--seeds", case["seeds"], "-o", result],
        "export": ["export", image, case["labels"], "-o", result],
        "dataset nnunet": [*dataset, "--channel-names", "CT"],
    }
    if model is not None:
        commands["segment"] = ["segment", image, "--model", model, "--device", "cpu", "-o", result]
    return commands


@pytest.mark.parametrize("image_kind", ["image", "nifti"])
def test_every_command_refuses_an_image_with_nan_or_infinite_voxels(tmp_path, nan_case, out, image_kind):
    """One rule, one sentence, for every command that computes on intensities (NIfTI too, where ITK reads NaN as 0)."""
    model = None
    if importlib.util.find_spec("torch") is not None:
        from inference_helpers import write_bright_model

        model = write_bright_model(tmp_path / "model")
    image = nan_case[image_kind]
    for name, argv in _nan_commands(nan_case, image_kind, out, model).items():
        outcome = run_cli([*argv, "-q"], timeout=120)
        assert outcome.returncode == 1 and outcome.one_error_line, f"{name}: {outcome.describe()}"
        (line,) = outcome.error_lines
        if name == "dataset nnunet":  # the case is named first, the file is the manifest's image
            assert line.startswith("segtruth: error: Case 'c1'") and f"{image}: {NAN_SENTENCE}" in line, line
        else:
            assert line.startswith(f"segtruth: error: {image}: {NAN_SENTENCE}"), f"{name}: {line}"
        assert list(out.iterdir()) == [], name


@pytest.mark.parametrize("image_kind", ["image", "nifti"])
def test_info_counts_nan_and_infinite_voxels_and_succeeds(nan_case, image_kind):
    outcome = run_cli(["info", nan_case[image_kind], "--json"], timeout=120)
    assert outcome.returncode == 0, outcome.describe()
    info = json.loads(outcome.stdout)
    assert info["nan_voxels"] == 12
    finite = ARRAY.astype(np.float32).reshape(-1)
    finite = np.delete(finite, [0, 5, 17, 40, 41, 42, 99, 150, 200, 60, 61, 62])
    if image_kind == "image":
        assert info["range"] == [float(finite.min()), float(finite.max())]
    text = run_cli(["info", nan_case[image_kind]], timeout=120)
    assert "NaN/inf    12 voxels (NaN or infinite)" in text.stdout
