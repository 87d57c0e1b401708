"""Model formats, the catalog, downloads, the CLI, background runs, and bad input as one clear error each."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="model inference needs PyTorch (pip install -c constraints.txt torch)")

import hashlib
import http.server
import json
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from conftest import write_volume
from inference_helpers import bright_card, run_cli, write_bright_model

from SegTruthLogic import Cancelled, SegTruthError
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.inference import (
    describe_models,
    load_model,
    predict,
    register_model,
    run_in_subprocess,
    run_in_thread,
    segment,
    unregister_model,
)
from SegTruthLogic.inference.weights import download
from SegTruthLogic.scene.volumes import load_volume, volume_from_array


@pytest.fixture(autouse=True)
def private_homes(tmp_path, monkeypatch):
    """Each test gets its own user catalog and download cache."""
    monkeypatch.setenv("SEGTRUTH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SEGTRUTH_CACHE", str(tmp_path / "cache"))


def image_file(folder: Path, shape=(20, 24, 22), name="image.nii.gz") -> tuple[Path, np.ndarray]:
    array = np.random.default_rng(0).uniform(0, 1, size=shape).astype(np.float32)
    return write_volume(folder / name, array, spacing=(1.0, 1.0, 2.0), origin=(4.0, 5.0, 6.0)), array


# -- formats -------------------------------------------------------------------------------------------------------
def monai_unet_card(folder: Path) -> Path:
    pytest.importorskip("monai", reason="MONAI networks need the monai package")
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    args = {"spatial_dims": 3, "in_channels": 1, "out_channels": 3, "channels": [4, 8], "strides": [2]}
    torch.save(UNet(**args).state_dict(), folder / "weights.pth")
    card = {
        "name": "tiny-unet",
        "format": "monai_network",
        "network": {"name": "UNet", "args": args},
        "preprocessing": {"orientation": "RAS", "axes": "ijk", "spacing": [1.5, 1.5, 1.5]},
        "inference": {"patch_size": [16, 16, 16], "divisible_by": 2},
        "labels": [{"name": "a", "value": 10, "channel": 1}, {"name": "b", "value": 20, "channel": 2}],
        "weights": {"file": "weights.pth"},
    }
    path = folder / "tiny-unet.card.json"
    path.write_text(json.dumps(card))
    return path


def test_monai_network_state_dict_with_card(session, tmp_path):
    from monai.inferers import sliding_window_inference

    image, array = image_file(tmp_path)
    model = load_model(monai_unet_card(tmp_path))
    volume = load_volume(session, image)
    segmentation = segment(session, None, volume, model, device="cpu")
    names = {segmentation.GetSegmentation().GetNthSegment(i).GetName() for i in range(2)}
    assert names == {"a", "b"}
    # one tile covering the volume is exactly the network's output; tiled, it is close to MONAI's own sliding
    # window (tile positions and Gaussian sigmas differ a little, and instance norm sees each tile alone)
    from SegTruthLogic.inference.sliding_window import SlidingWindow

    prepared = model.prepare([array], Grid.from_sitk(sitk.ReadImage(str(image))))
    window = SlidingWindow(None, 3, divisible_by=2, precision="float32")  # the network exactly, as called directly
    whole = window.run(prepared.image, model.members, 1, torch.device("cpu"))
    shape = prepared.image.shape[1:]
    pads = [(-s) % 2 for s in shape]
    padded = torch.nn.functional.pad(prepared.image, [v for p in reversed(pads) for v in (p // 2, p - p // 2)])
    with torch.inference_mode():
        direct = model.network(padded[None])[0]
        crop = tuple(slice(p // 2, p // 2 + s) for p, s in zip(pads, shape))
        assert torch.allclose(whole, direct[(slice(None), *crop)], atol=1e-5)
        theirs = sliding_window_inference(
            prepared.image[None], (16, 16, 16), 1, model.network, overlap=0.5, mode="gaussian"
        )
    tiled = SlidingWindow((16, 16, 16), 3).run(prepared.image, model.members, 1, torch.device("cpu"))
    assert np.corrcoef(tiled.numpy().ravel(), theirs[0].numpy().ravel())[0, 1] > 0.9


def test_monai_bundle_made_with_monai_tools(session, tmp_path):
    pytest.importorskip("monai", reason="MONAI bundles need the monai package")
    from monai.bundle import init_bundle
    from monai.networks.nets import SegResNet

    torch.manual_seed(0)
    network = SegResNet(
        spatial_dims=3, in_channels=1, out_channels=2, init_filters=8, blocks_down=(1, 1), blocks_up=(1,)
    )
    inference = {
        "bundle_root": ".",
        "network_def": {
            "_target_": "SegResNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 2, "init_filters": 8,
            "blocks_down": [1, 1], "blocks_up": [1],
        },
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "LoadImaged", "keys": "image"},
                {"_target_": "EnsureChannelFirstd", "keys": "image"},
                {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
                {"_target_": "Spacingd", "keys": "image", "pixdim": [1.5, 1.5, 1.5], "mode": "bilinear"},
                {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": 0, "a_max": 1, "b_min": -1, "b_max": 1, "clip": True},
                {"_target_": "EnsureTyped", "keys": "image"},
            ],
        },
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [16, 16, 16], "overlap": 0.5, "mode": "gaussian"},
    }  # fmt: skip
    metadata = {
        "version": "0.1.0",
        "description": "test bundle",
        "network_data_format": {
            "inputs": {"image": {"type": "image", "num_channels": 1, "modality": "MR"}},
            "outputs": {"pred": {"type": "image", "num_channels": 2, "channel_def": {"0": "background", "1": "blob"}}},
        },
    }
    bundle = tmp_path / "bundle"
    init_bundle(bundle, network=network, metadata_str=metadata, inference_str=inference)
    assert (bundle / "models" / "model.pt").is_file()
    image, _ = image_file(tmp_path)
    model = load_model(bundle)
    assert model.card.preprocessing.spacing == (1.5, 1.5, 1.5)
    assert model.card.preprocessing.normalization[0] == {"op": "clip", "lower": 0.0, "upper": 1.0}
    assert model.card.inference.patch_size == (16, 16, 16)
    volume = load_volume(session, image)
    segmentation = segment(session, None, volume, bundle, device="cpu")
    assert segmentation.GetSegmentation().GetNthSegment(0).GetName() == "blob"


def test_torchscript_file_needs_its_card(tmp_path):
    card = write_bright_model(tmp_path / "m")
    assert load_model(tmp_path / "m" / "model.pt").card.name == "bright"
    card.unlink()
    with pytest.raises(SegTruthError, match=r"model.pt: has no model card beside it; write model.card.json"):
        load_model(tmp_path / "m" / "model.pt")


# -- bad input ------------------------------------------------------------------------------------------------------
def test_wrong_channel_count(session, tmp_path):
    card = write_bright_model(tmp_path / "m", input={"channels": 2, "modality": ["T1", "T2"]})
    volume = load_volume(session, image_file(tmp_path)[0])
    with pytest.raises(SegTruthError, match=r"Model 'bright' expects 2 input channels \(T1, T2\); got 1 image\."):
        segment(session, None, volume, load_model(card))


def test_missing_weights(tmp_path):
    card = write_bright_model(tmp_path / "m")
    (tmp_path / "m" / "model.pt").unlink()
    with pytest.raises(SegTruthError, match=r"model.pt: missing weights"):
        load_model(card)


@pytest.mark.parametrize("kind", ["torchscript", "state_dict"])
def test_corrupt_checkpoint(tmp_path, kind):
    if kind == "torchscript":
        card = write_bright_model(tmp_path / "m")
        weights = tmp_path / "m" / "model.pt"
        message = "is not a readable TorchScript model"
    else:
        card = monai_unet_card(tmp_path)
        weights = tmp_path / "weights.pth"
        message = "is not a readable PyTorch checkpoint"
    weights.write_bytes(weights.read_bytes()[:300])
    with pytest.raises(SegTruthError, match=message):
        load_model(card)


def test_pickled_code_is_refused(tmp_path):
    card = monai_unet_card(tmp_path)
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": Path("/")}, tmp_path / "weights.pth")
    with pytest.raises(SegTruthError, match=r"holds code or objects besides weights .* refused for safety"):
        load_model(card)


def test_weights_that_do_not_fit(tmp_path):
    card = monai_unet_card(tmp_path)
    torch.save({"w": torch.zeros(3)}, tmp_path / "weights.pth")
    with pytest.raises(SegTruthError, match=r"weights.pth: the weights do not fit the network"):
        load_model(card)


def test_two_d_image_into_a_three_d_model(session, tmp_path, capsys):
    card = write_bright_model(tmp_path / "m")
    flat = volume_from_array(session, np.zeros((1, 30, 30), np.float32), Grid((30, 30, 1), np.eye(4)), "slice")
    with pytest.raises(SegTruthError, match=r"slice: is a single slice \(30x30x1\); model 'bright' is a 3D model\."):
        segment(session, None, flat, load_model(card))
    picture = tmp_path / "picture.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((30, 30), np.float32)), str(picture))
    assert run_cli("segment", picture, "--model", card, "-o", tmp_path / "out.nii.gz", "-q") == 1
    assert "is a 2D image (30x30); SegTruth needs one 3D volume" in capsys.readouterr().err
    assert not (tmp_path / "out.nii.gz").exists()


def test_bad_cards(tmp_path):
    card = write_bright_model(tmp_path / "m", preprocessing={"orientation": "ASL"})
    with pytest.raises(SegTruthError, match=r"preprocessing.orientation: 'ASL' is not one of file, RAS, LPS"):
        load_model(card)
    card.write_text("{not json")
    with pytest.raises(SegTruthError, match=r"model.card.json: not valid JSON"):
        load_model(card)


def test_unknown_device_is_an_error(tmp_path):
    model = load_model(write_bright_model(tmp_path / "m"))
    with pytest.raises(SegTruthError, match="Unknown device 'tpu'"):
        predict(model, [np.zeros((4, 4, 4), np.float32)], Grid((4, 4, 4), np.eye(4)), "tpu")
    if not torch.cuda.is_available():
        with pytest.raises(SegTruthError, match="sees no CUDA GPU"):
            predict(model, [np.zeros((4, 4, 4), np.float32)], Grid((4, 4, 4), np.eye(4)), "cuda")


# -- catalog and downloads -------------------------------------------------------------------------------------------
def test_register_a_users_model_in_one_call(tmp_path):
    write_bright_model(tmp_path / "mine")
    entry = register_model("my-model", tmp_path / "mine", description="mine")
    assert entry.user
    assert load_model("my-model").card.labels.by_name("bright").value == 7
    assert any(row["name"] == "my-model" and row["registered_by"] == "user" for row in describe_models())
    unregister_model("my-model")
    with pytest.raises(SegTruthError, match=r"my-model: no such model file or folder, and no catalog model"):
        load_model("my-model")


def test_register_refuses_what_does_not_load(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SegTruthError, match="not a model folder"):
        register_model("broken", tmp_path / "empty")


def serve(folder: Path):
    """A loopback HTTP server for ``folder`` (downloads with Content-Length)."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_url_weights_download_once_with_checksum_and_progress(tmp_path, monkeypatch):
    write_bright_model(tmp_path / "pkg")
    archive = tmp_path / "served" / "bright.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as z:
        for f in (tmp_path / "pkg").iterdir():
            z.write(f, f.name)
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    server = serve(archive.parent)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/bright.zip"
        seen: list[float] = []
        folder = download(url, sha, "bright", progress=lambda f, m: seen.append(f))
        assert seen[-1] == 1.0
        assert (folder / "model.card.json").is_file()
        catalog = tmp_path / "home" / "models.json"
        catalog.parent.mkdir(parents=True)
        catalog.write_text(json.dumps({"models": [{"name": "remote", "weights": {"url": url, "sha256": sha}}]}))
        assert load_model("remote").card.name == "bright"
    finally:
        server.shutdown()
    # offline once cached: the server is gone
    assert load_model("remote").card.name == "bright"
    assert next(r for r in describe_models() if r["name"] == "remote")["available"] == "cached"


def test_checksum_mismatch_discards_the_file(tmp_path):
    payload = tmp_path / "weights.pt"
    payload.write_bytes(b"x" * 1000)
    with pytest.raises(
        SegTruthError, match=r"checksum mismatch for model 'm' \(sha256 [0-9a-f]{64}, catalog says 0{64}\)"
    ):
        download(payload.as_uri(), "0" * 64, "m")
    cached = list((tmp_path / "cache").rglob("*"))
    assert not [p for p in cached if p.is_file()]
    with pytest.raises(SegTruthError, match=r"a download needs the file's sha256"):
        download(payload.as_uri(), "", "m")


def test_unreachable_url_is_a_clear_error(tmp_path):
    with pytest.raises(SegTruthError, match=r"could not be downloaded"):
        download((tmp_path / "absent.pt").as_uri(), "a" * 64, "m")


def test_pip_package_that_is_absent(tmp_path):
    catalog = tmp_path / "home" / "models.json"
    catalog.parent.mkdir(parents=True)
    catalog.write_text(json.dumps({"models": [{"name": "p", "weights": {"pip": "no-such-package-xyz"}}]}))
    with pytest.raises(SegTruthError, match=r"needs the pip package 'no-such-package-xyz', which is not installed"):
        load_model("p")


# -- CLI and background runs ------------------------------------------------------------------------------------------
def test_cli_models_lists_the_catalog(capsys):
    assert run_cli("models") == 0
    text = capsys.readouterr().out
    assert "deepbet:" in text and "pip package deepbet" in text
    assert run_cli("models", "--json") == 0
    assert any(row["name"] == "deepbet" for row in json.loads(capsys.readouterr().out))


def test_cli_segment_writes_the_model_values_on_the_image_grid(tmp_path):
    card = write_bright_model(tmp_path / "m")
    image = write_volume(
        tmp_path / "lh.nrrd", np.linspace(0, 1, 20 * 22 * 24, dtype=np.float32).reshape(20, 22, 24),
        spacing=(0.7, 0.8, 2.5), direction=(-1, 0, 0, 0, 1, 0, 0, 0, 1),
    )  # fmt: skip
    out = tmp_path / "out.nrrd"
    assert run_cli("segment", image, "--model", card, "-o", out, "--device", "cpu", "-q") == 0
    written, source = sitk.ReadImage(str(out)), sitk.ReadImage(str(image))
    assert Grid.from_sitk(written).same_as(Grid.from_sitk(source))
    assert np.array_equal(sitk.GetArrayFromImage(written) == 7, sitk.GetArrayFromImage(source) > 0.5)
    before = out.read_bytes()
    assert run_cli("segment", image, "--model", card, "-o", out, "--no-overwrite", "-q") == 1
    assert out.read_bytes() == before


def test_thread_job_reports_progress_and_applies_on_the_main_thread(session, tmp_path):
    card = write_bright_model(tmp_path / "m")
    image, array = image_file(tmp_path)
    volume = load_volume(session, image)
    job = run_in_thread(volume, card, device="cpu")
    result = job.wait(timeout=120)
    assert job.done and job.fraction == 1.0
    assert result.labels.shape == array.shape
    node = job.apply(session=session)
    assert node.GetSegmentation().GetNthSegment(0).GetName() == "bright"


def test_thread_job_cancel(session, tmp_path):
    card = write_bright_model(tmp_path / "m", inference={"patch_size": [8, 8, 8], "overlap": 0.75})
    volume = load_volume(session, image_file(tmp_path, shape=(40, 40, 40))[0])
    job = run_in_thread(volume, card, device="cpu")
    job.cancel()
    with pytest.raises(Cancelled):
        job.wait(timeout=120)


def test_subprocess_job_writes_output_and_can_be_cancelled(tmp_path):
    card = write_bright_model(tmp_path / "m")
    image, array = image_file(tmp_path)
    out = tmp_path / "out.nii.gz"
    job = run_in_subprocess(image, card, out, device="cpu")
    assert job.wait(timeout=300) == out
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out))) == 7, array > 0.5)
    # a slow job (tiny tiles, high overlap) cancelled while running leaves nothing behind
    slow = write_bright_model(tmp_path / "slow", inference={"patch_size": [8, 8, 8], "overlap": 0.75})
    big, _ = image_file(tmp_path, shape=(60, 60, 60), name="big.nii.gz")
    target = tmp_path / "cancelled.nii.gz"
    job = run_in_subprocess(big, slow, target, device="cpu")
    deadline = time.time() + 120
    while "tile" not in job.message and time.time() < deadline and not job.done:
        time.sleep(0.1)
    assert "tile" in job.message
    job.cancel()
    with pytest.raises(Cancelled):
        job.wait(timeout=60)
    assert not target.exists()
    assert not list(tmp_path.glob(".cancelled*"))


def test_subprocess_job_reports_errors_as_one_sentence(tmp_path):
    image, _ = image_file(tmp_path)
    job = run_in_subprocess(image, tmp_path / "nothing-here", tmp_path / "out.nii.gz", device="cpu")
    with pytest.raises(SegTruthError, match=r"nothing-here: no such model file or folder"):
        job.wait(timeout=300)


def test_cards_in_resources_are_valid():
    from SegTruthLogic.inference.card import read_card
    from SegTruthLogic.inference.catalog import CATALOG

    for path in CATALOG.parent.glob("*.card.json"):
        card = read_card(path)
        assert card.labels and card.license and card.source
    assert bright_card()["format"] == "torchscript"
