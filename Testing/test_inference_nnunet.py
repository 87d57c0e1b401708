"""nnU-Net v2 results folders: SegTruth's output equals nnunetv2's own nnUNetPredictor on the same image.

The results folder and the reference predictions come from nnunetv2 itself (planning, preprocessing, a short
training, nnUNetPredictor), made by Testing/fixtures/make_reference_fixtures.sh; without them these tests skip.
The test images are larger than the patch (several tiles), anisotropic (separate-z resampling), oblique and
left-handed (Slicer flips those on load; the output must still be on the file's grid).
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="model inference needs PyTorch (pip install -c constraints.txt torch)")

import json
import shutil

import numpy as np
import SimpleITK as sitk
from inference_helpers import reference_fixtures, run_cli

from SegTruthLogic import SegTruthError
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.core.metrics import dice
from SegTruthLogic.inference import load_model, segment
from SegTruthLogic.scene.export import export
from SegTruthLogic.scene.volumes import load_volume

pytestmark = pytest.mark.reference_fixtures
CASES = ["anisotropic", "large", "lefthanded", "oblique"]


def _native_bfloat16() -> bool:
    from SegTruthLogic.inference.precision import cpu_supports_bfloat16

    return cpu_supports_bfloat16()


# bfloat16 where the CPU computes it natively (auto uses it there for 3D networks); elsewhere it is emulated
PRECISIONS = [
    "float32",
    pytest.param(
        "bfloat16", marks=pytest.mark.skipif(not _native_bfloat16(), reason="this CPU has no native bfloat16")
    ),
]


@pytest.fixture(scope="module")
def fixtures():
    return reference_fixtures()


def model_folder(fixtures, configuration: str):
    return fixtures / json.loads((fixtures / "manifest.json").read_text())["models"][configuration]


def assert_equal_to_reference(ours_path, reference_path, labels=(1, 2)):
    ours, reference = sitk.ReadImage(str(ours_path)), sitk.ReadImage(str(reference_path))
    assert Grid.from_sitk(ours).same_as(Grid.from_sitk(reference))
    a, b = sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(reference)
    assert b.any(), "the reference model predicts nothing: the comparison would be empty"
    for label in labels:
        assert (b == label).any()
        assert dice(a == label, b == label) >= 0.999, (label, dice(a == label, b == label))
    return a, b


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("case", CASES)
def test_two_folds_equal_nnunet_predictor(session, tmp_path, fixtures, case, precision):
    """In float32 and in bfloat16 (the network only; accumulation and resampling stay float32)."""
    model = load_model(model_folder(fixtures, "3d_fullres"))
    assert model.ensemble_size == 2
    image = fixtures / "nnunet" / "test" / "images" / f"{case}_0000.nii.gz"
    volume = load_volume(session, image)
    segmentation = segment(session, None, volume, model, device="cpu", precision=precision)
    out = export(session, segmentation, volume, tmp_path / "ours.nii.gz", model.card.labels)
    assert_equal_to_reference(out, fixtures / "nnunet" / "test" / "ref_3d_fullres_f01" / f"{case}.nii.gz")


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("case", ["anisotropic", "lefthanded"])
def test_mirroring_equals_nnunet_predictor(session, tmp_path, fixtures, case, precision):
    model = load_model(model_folder(fixtures, "3d_fullres"), folds=(0,))
    volume = load_volume(session, fixtures / "nnunet" / "test" / "images" / f"{case}_0000.nii.gz")
    segmentation = segment(session, None, volume, model, device="cpu", tta=True, precision=precision)
    out = export(session, segmentation, volume, tmp_path / "ours.nii.gz", model.card.labels)
    assert_equal_to_reference(out, fixtures / "nnunet" / "test" / "ref_3d_fullres_f0_tta" / f"{case}.nii.gz")


@pytest.mark.parametrize("precision", ["float32", "auto"])
@pytest.mark.parametrize("case", ["anisotropic", "oblique"])
def test_2d_configuration_equals_nnunet_predictor(session, tmp_path, fixtures, case, precision):
    """auto keeps 2D networks in float32 (in bfloat16 this one's labels reach Dice 0.994 only)."""
    model = load_model(model_folder(fixtures, "2d"))
    volume = load_volume(session, fixtures / "nnunet" / "test" / "images" / f"{case}_0000.nii.gz")
    segmentation = segment(session, None, volume, model, device="cpu", precision=precision)
    out = export(session, segmentation, volume, tmp_path / "ours.nii.gz", model.card.labels)
    assert_equal_to_reference(out, fixtures / "nnunet" / "test" / "ref_2d_f0" / f"{case}.nii.gz")


def test_cli_segments_with_an_nnunet_folder(tmp_path, fixtures, capsys):
    """``segtruth segment IMAGE --model FOLDER`` (the dataset folder: 3d_fullres is picked) writes OUT on IMAGE's grid."""
    image = fixtures / "nnunet" / "test" / "images" / "lefthanded_0000.nii.gz"
    out = tmp_path / "out.seg.nrrd"
    dataset = model_folder(fixtures, "3d_fullres").parent
    assert run_cli("segment", image, "--model", dataset, "-o", out, "--device", "cpu", "-q") == 0
    assert "wrote" in capsys.readouterr().out
    labels = tmp_path / "labels.nii.gz"
    assert run_cli("segment", image, "--model", dataset, "-o", labels, "--device", "cpu", "-q") == 0
    a, _ = assert_equal_to_reference(labels, fixtures / "nnunet" / "test" / "ref_3d_fullres_f01" / "lefthanded.nii.gz")
    assert set(np.unique(a)) <= {0, 1, 2}
    import slicerio

    segmentation = slicerio.read_segmentation(str(out))
    assert sorted((s["name"], s["labelValue"]) for s in segmentation["segments"]) == [("cube", 2), ("sphere", 1)]


def test_predictions_are_near_the_truth(fixtures):
    """The fixture's model is a real (if briefly trained) one: its output overlaps the phantoms' truth."""
    for case in CASES:
        reference = sitk.GetArrayFromImage(
            sitk.ReadImage(str(fixtures / "nnunet" / "test" / "ref_3d_fullres_f01" / f"{case}.nii.gz"))
        )
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(fixtures / "nnunet" / "test" / f"{case}_truth.nii.gz")))
        assert dice(reference == 1, truth == 1) > 0.7, case


def test_missing_fold_and_corrupt_checkpoint_are_clear_errors(tmp_path, fixtures):
    source = model_folder(fixtures, "3d_fullres")
    copy = tmp_path / source.name
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("checkpoint_best.pth", "*.png", "*.txt"))
    with pytest.raises(SegTruthError, match=r"fold_3/checkpoint_final.pth: missing weights"):
        load_model(copy, folds=(3,))
    checkpoint = copy / "fold_0" / "checkpoint_final.pth"
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    with pytest.raises(SegTruthError, match=r"checkpoint_final.pth: is not a readable PyTorch checkpoint"):
        load_model(copy, folds=(0,))
    plans = json.loads((copy / "plans.json").read_text())
    plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["features_per_stage"][0] = 16
    (copy / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(SegTruthError, match=r"its weights do not fit the plans' network"):
        load_model(copy, folds=(1,))


def test_residual_encoder_unet_equals_nnunets_network(fixtures):
    """nnU-Net's ResEnc M plans: SegTruth's network loads nnunetv2's weights strictly and gives its output."""
    import torch

    from SegTruthLogic.inference.formats.nnunet_network import build_network

    folder = fixtures / "resenc"
    if not (folder / "resenc_reference.pt").is_file():
        pytest.skip(f"{folder}: absent; run make_reference_fixtures.sh --only resenc")
    plans = json.loads((folder / "plans.json").read_text())
    reference = torch.load(folder / "resenc_reference.pt", weights_only=True)
    network = build_network(plans["configurations"]["3d_fullres"]["architecture"], 1, 3, "plans.json").eval()
    network.load_state_dict(reference["state_dict"], strict=True)
    with torch.inference_mode():
        assert torch.allclose(network(reference["input"]), reference["output"], atol=1e-4)


@pytest.mark.parametrize("numpy_module", ["numpy._core.multiarray", "numpy.core.multiarray"])
def test_checkpoints_saved_under_either_numpy_load(tmp_path, numpy_module):
    """nnU-Net logs numpy scalars; numpy 1.x (Slicer 5.8) names their builder numpy.core, numpy 2.x numpy._core."""
    import zipfile

    import torch

    from SegTruthLogic.inference.formats.nnunet import load_checkpoint

    saved = tmp_path / "saved.pth"
    torch.save({"logging": {"loss": [np.float64(0.25), np.float32(-1.5)]}, "weights": torch.ones(2)}, saved)
    renamed = tmp_path / "checkpoint_final.pth"
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(renamed, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith("data.pkl"):
                written = np.float64.__reduce__(np.float64(0))[0].__module__  # as this numpy names it
                assert f"{written}\nscalar".encode() in data  # pickle protocol 2: GLOBAL module, name
                data = data.replace(f"{written}\nscalar".encode(), f"{numpy_module}\nscalar".encode())
            target.writestr(item, data)
    loaded = load_checkpoint(renamed)
    assert loaded["logging"]["loss"] == [0.25, -1.5]
    assert [type(v) for v in loaded["logging"]["loss"]] == [np.float64, np.float32]
    assert torch.equal(loaded["weights"], torch.ones(2))
