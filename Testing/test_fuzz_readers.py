"""Fuzzing every reader: real files, damaged at random, fed to the commands that read them.

Each seed is a real file of one kind SegTruth reads: NIfTI (raw and gzip), NRRD (raw and gzip), a labelmap, a
``.seg.nrrd`` that SegTruth wrote from slicerio's chest CT, a DICOM series, a TorchScript model and a state-dict
checkpoint, each with its card (a seed too). Hypothesis damages a copy (bytes flipped or overwritten in the header or in the
data, a run of zeros, truncation at any point, an empty file, a wrong extension, one kind of model file where
another is expected) and every command that reads that kind of file runs on it in a child process
(``Testing/isolated.py``). Each must end in one of two ways: exit 0, or exit 1 with exactly one
``segtruth: error:`` line and nothing new in the output folder; never a signal, a hang or a traceback.

Exit 0 on damaged data is accepted only where the damage cannot be seen: bytes of a format without a checksum
(raw voxels, a DICOM or NRRD header), or bytes of a compressed or zipped file whose checked content is unchanged
(a gzip header's time stamp). A truncated or empty file, or a changed gzip or zip stream, that loads is a bug.

The runs are repeatable (``derandomize=True``): 385 distinct damaged files, about 750 commands, in about 95 s on
two cores. ``SEGTRUTH_FUZZ_SCALE=N`` tries N times as many, newly random each run, for a longer search.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from isolated import Outcome, run_cli

from SegTruthLogic.cli import main
from SegTruthLogic.core.atomic import full_suffix
from SegTruthLogic.core.nrrd import read_header
from SegTruthLogic.core.sample_data import ct_chest_paths

torch = pytest.importorskip("torch", reason="the model readers need PyTorch")

TIMEOUT = 60.0  # seconds; the slowest command on a seed takes well under one
SCALE = int(os.environ.get("SEGTRUTH_FUZZ_SCALE", "1"))
SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".seg.nrrd", ".mha", ".txt")
FUZZ = dict(
    derandomize=SCALE == 1,
    deadline=None,
    database=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)
_variants: dict[str, set[str]] = {}  # kind -> digests of the damaged files tried


# -- seeds ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Seed:
    """A real file of one kind, where its header ends, and how its content is checked (``gzip``, ``zip``, ``raw``)."""

    kind: str
    path: Path
    header_end: int
    check: str  # raw: no checksum exists; gzip: a gzip stream after the header; zip: a zip archive


def _dicom_series(folder: Path, array: np.ndarray, spacing=(0.8, 0.8, 2.5)) -> list[Path]:
    """Write (k, j, i) int16 voxels as a CT series, one file a slice, with the tags a scanner writes."""
    folder.mkdir(parents=True)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    uid = "1.2.826.0.1.3680043.2.1125.7.1"
    tags = {
        "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
        "0008|0060": "CT",
        "0008|103e": "fuzz series",
        "0010|0010": "Fuzz^Case",
        "0020|000d": uid + ".0",
        "0020|000e": uid,
        "0020|0011": "1",
        "0020|0037": "1\\0\\0\\0\\1\\0",
        "0028|0030": f"{spacing[1]:g}\\{spacing[0]:g}",
        "0018|0050": f"{spacing[2]:g}",
    }
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    paths = []
    for k in range(image.GetDepth()):
        plane = image[:, :, k]
        for tag, value in tags.items():
            plane.SetMetaData(tag, value)
        plane.SetMetaData("0008|0018", f"{uid}.{k + 1}")
        plane.SetMetaData("0020|0013", str(k + 1))
        plane.SetMetaData("0020|0032", "\\".join(f"{v:g}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))))
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(plane)
        paths.append(folder / f"slice{k:03d}.dcm")
    return paths


def _bright_card(folder: Path) -> Path:
    """A pointwise TorchScript network (label 7 where the voxel is above 0.5) and its card."""

    class Bright(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([torch.zeros_like(x[:, :1]), x[:, :1] - 0.5], dim=1)

    torch.jit.script(Bright()).save(str(folder / "bright.pt"))
    card = {
        "name": "bright",
        "format": "torchscript",
        "input": {"channels": 1, "modality": "any", "dimensions": 3},
        "preprocessing": {"orientation": "RAS", "axes": "ijk"},
        "inference": {"patch_size": [16, 16, 16], "output": "logits"},
        "labels": [{"name": "bright", "value": 7, "channel": 1}],
        "weights": {"file": "bright.pt"},
    }
    path = folder / "bright.card.json"
    path.write_text(json.dumps(card), encoding="utf-8")
    return path


def _unet_card(folder: Path) -> Path:
    """A tiny MONAI UNet saved as a state dict, and its card."""
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    args = {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [2, 4], "strides": [2]}
    torch.save(UNet(**args).state_dict(), folder / "unet.pth")
    card = {
        "name": "tiny-unet",
        "format": "monai_network",
        "network": {"name": "UNet", "args": args},
        "preprocessing": {"orientation": "RAS", "axes": "ijk"},
        "inference": {"patch_size": [16, 16, 16], "divisible_by": 2},
        "labels": [{"name": "a", "value": 3, "channel": 1}],
        "weights": {"file": "unet.pth"},
    }
    path = folder / "unet.card.json"
    path.write_text(json.dumps(card), encoding="utf-8")
    return path


class Seeds(dict):
    """The seeds and the good files the commands take beside them (shown short in a failure's report)."""

    def __repr__(self) -> str:
        return f"seeds in {self['folder']}"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> Seeds:
    folder = tmp_path_factory.mktemp("seeds")
    ct = sitk.ReadImage(str(ct_chest_paths()[0]))[44:68, 40:64, 12:18]  # 24 x 24 x 6 voxels of the chest CT
    for name, compress in (("ct.nii", False), ("ct.nii.gz", True), ("ct_raw.nrrd", False), ("ct.nrrd", True)):
        sitk.WriteImage(ct, str(folder / name), useCompression=compress)
    lung = folder / "lung.seg.nrrd"
    assert main(["threshold", str(folder / "ct.nrrd"), "--range", "-1024", "-400", "-o", str(lung), "-q"]) == 0
    assert main(["export", str(folder / "ct.nrrd"), str(lung), "-o", str(folder / "lung.nii.gz"), "-q"]) == 0
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "lung.nii.gz"))).any()
    dicom = _dicom_series(folder / "dicom", (np.indices((4, 12, 12)).sum(axis=0) * 10).astype(np.int16))
    models = folder / "models"
    models.mkdir()
    bright, unet = _bright_card(models), _unet_card(models)
    rng = np.random.default_rng(0)
    small = sitk.GetImageFromArray(rng.uniform(0, 1, (12, 12, 12)).astype(np.float32))
    sitk.WriteImage(small, str(folder / "small.nii.gz"))

    def nrrd(kind: str, path: Path, check: str) -> Seed:
        return Seed(kind, path, read_header(path).data_offset, check)

    listed = [
        Seed("nifti", folder / "ct.nii", 352, "raw"),
        Seed("nifti-gz", folder / "ct.nii.gz", 10, "gzip"),
        nrrd("nrrd", folder / "ct_raw.nrrd", "raw"),
        nrrd("nrrd-gz", folder / "ct.nrrd", "gzip"),
        Seed("labelmap", folder / "lung.nii.gz", 10, "gzip"),
        nrrd("seg-nrrd", lung, "gzip"),
        Seed("dicom", dicom[1], dicom[1].read_bytes().find(b"\xe0\x7f\x10\x00"), "raw"),
        Seed("torchscript", models / "bright.pt", 64, "zip"),
        Seed("checkpoint", models / "unet.pth", 64, "zip"),
        Seed("card", bright, 64, "raw"),
    ]
    return Seeds(
        seeds={seed.kind: seed for seed in listed},
        image=folder / "ct.nrrd",
        segmentation=lung,
        small=folder / "small.nii.gz",
        cards={"torchscript": bright, "checkpoint": unet, "card": bright},
        folder=folder,
    )


# -- damage ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Damage:
    """One way a file is damaged: ``op`` at ``position`` (``value`` is the XOR mask, the bytes or the length)."""

    op: str  # flip | overwrite | zeros | truncate | empty | rename | swap
    position: int = 0
    value: object = None

    def apply(self, data: bytes) -> bytes:
        if self.op == "flip":
            return data[: self.position] + bytes([data[self.position] ^ self.value]) + data[self.position + 1 :]
        if self.op in ("overwrite", "zeros"):
            patch = self.value if self.op == "overwrite" else bytes(self.value)
            return data[: self.position] + patch + data[self.position + len(patch) :]
        if self.op == "truncate":
            return data[: self.position]
        if self.op == "empty":
            return b""
        return data  # rename and swap change where the bytes go, not the bytes


@st.composite
def damages(draw, seed: Seed, size: int, renames: bool = True) -> Damage:
    ops = ["flip", "flip", "overwrite", "zeros", "truncate", "truncate", "empty"]
    ops += ["rename"] if renames else []
    ops += ["swap"] if seed.check == "zip" else []
    op = draw(st.sampled_from(ops))
    if op in ("flip", "overwrite", "zeros"):
        header = draw(st.booleans())
        low, high = (0, seed.header_end - 1) if header else (seed.header_end, size - 1)
        position = draw(st.integers(low, high))
        if op == "flip":
            return Damage(op, position, draw(st.integers(1, 255)))
        if op == "zeros":
            return Damage(op, position, draw(st.integers(1, 512)))
        return Damage(op, position, draw(st.binary(min_size=1, max_size=32)))
    if op == "truncate":
        return Damage(op, draw(st.integers(0, size - 1)))
    if op == "rename":
        return Damage(op, value=draw(st.sampled_from([s for s in SUFFIXES if s != full_suffix(seed.path)])))
    return Damage(op)


def _gunzip(data: bytes) -> bytes | None:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, ValueError, gzip.zlib.error):
        return None


def _zip_members(path: Path) -> dict[str, bytes] | None:
    try:
        with zipfile.ZipFile(path) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, RuntimeError, zipfile.zlib.error):
        return None


def _unchanged(seed: Seed, damage: Damage, original: bytes, damaged: bytes, path: Path) -> bool:
    """Whether SegTruth could know the damage at all: only then may a command succeed on the damaged file."""
    if damage.op in ("truncate", "empty"):
        return False  # every byte of every seed is needed
    if damage.op == "rename":
        return {full_suffix(seed.path), damage.value} <= {".nrrd", ".seg.nrrd"}  # a .seg.nrrd is a NRRD
    if damage.op == "swap":
        return False
    if seed.check == "raw":
        return True  # no checksum: these bytes may be any value
    if seed.check == "zip":
        return _zip_members(path) == _zip_members(seed.path)
    if seed.header_end > 10:  # NRRD: a text header (no checksum), then the gzip stream
        if damage.position < seed.header_end and len(damaged) == len(original):
            return damaged[seed.header_end :] == original[seed.header_end :]
        return _gunzip(damaged[seed.header_end :]) == _gunzip(original[seed.header_end :])
    return _gunzip(damaged) == _gunzip(original)


# -- running --------------------------------------------------------------------------------------------------------
def _commands(kind: str, target: Path, seeds: dict, out: Path) -> list[list[object]]:
    """Every command that reads ``target`` as the kind of file it is (or, for a model, through its card)."""
    result = out / "result.nii.gz"
    if kind in ("nifti", "nifti-gz", "nrrd", "nrrd-gz"):
        return [["info", target], ["export", target, seeds["segmentation"], "-o", result, "-q"]]
    if kind in ("labelmap", "seg-nrrd"):
        export = ["export", seeds["image"], target, "-o", result, "-q"]
        return [["info", target], export, ["compare", seeds["segmentation"], target, "-q"]]
    if kind == "dicom":
        return [["info", target], ["threshold", target, "--range", "0", "100", "-o", result, "-q"]]
    return [["segment", seeds["small"], "--model", target, "--device", "cpu", "-o", result, "-q"]]


def _place(seed: Seed, damage: Damage, damaged: bytes, work: Path, seeds: dict) -> tuple[Path, Path]:
    """Write the damaged bytes where a command will read them; return (argument to pass, damaged file)."""
    if seed.kind == "dicom":
        folder = shutil.copytree(seed.path.parent, work / "series")
        (folder / seed.path.name).write_bytes(damaged)
        return folder, folder / seed.path.name
    if seed.check == "zip" or seed.kind == "card":
        folder = shutil.copytree(seed.path.parent, work / "models")
        card = folder / seeds["cards"][seed.kind].name
        if damage.op == "swap":  # the other kind of model file where this one is expected
            other = "checkpoint" if seed.kind == "torchscript" else "torchscript"
            damaged = seeds["seeds"][other].path.read_bytes()
        (folder / seed.path.name).write_bytes(damaged)
        return card, folder / seed.path.name
    name = seed.path.name
    if damage.op == "rename":
        name = name[: -len(full_suffix(seed.path))] + damage.value
    target = work / name
    target.write_bytes(damaged)
    return target, target


def _check(outcome: Outcome, argv: list[object], out: Path, allowed_ok: bool, why: str) -> None:
    shown = " ".join(str(a) for a in argv)
    assert not outcome.killed_by_signal, f"{shown}: killed by signal {-outcome.returncode} ({why})"
    assert not outcome.timed_out, f"{shown}: hung for {TIMEOUT:g} s ({why})"
    assert "Traceback" not in outcome.stderr, f"{shown}: traceback ({why})\n{outcome.describe()}"
    assert "failed unexpectedly" not in outcome.stderr, f"{shown}: a bug, not a named check ({why})\n{outcome.stderr}"
    if outcome.returncode == 0:
        assert allowed_ok, f"{shown}: exit 0 on damage it should have seen ({why})\n{outcome.describe()}"
        return
    assert outcome.returncode == 1, f"{shown}: exit {outcome.returncode} ({why})\n{outcome.describe()}"
    assert outcome.one_error_line, f"{shown}: not one 'segtruth: error:' line ({why})\n{outcome.describe()}"
    assert list(out.iterdir()) == [], f"{shown}: left {sorted(p.name for p in out.iterdir())} after an error"


def fuzz_one(seeds: dict, kind: str, damage: Damage) -> None:
    seed: Seed = seeds["seeds"][kind]
    original = seed.path.read_bytes()
    damaged = damage.apply(original)
    with tempfile.TemporaryDirectory(prefix="segtruth-fuzz-") as temp:
        work, out = Path(temp) / "in", Path(temp) / "out"
        work.mkdir()
        out.mkdir()
        target, damaged_file = _place(seed, damage, damaged, work, seeds)
        content = damaged_file.read_bytes()
        _variants.setdefault(kind, set()).add(hashlib.sha256(content + damage.op.encode()).hexdigest())
        allowed_ok = _unchanged(seed, damage, original, content, damaged_file)
        before = sorted(p.relative_to(work) for p in work.rglob("*"))
        commands = _commands(kind, target, seeds, out)
        with ThreadPoolExecutor(max_workers=len(commands)) as pool:
            outcomes = list(pool.map(lambda argv: run_cli(argv, timeout=TIMEOUT), commands))
        for argv, outcome in zip(commands, outcomes):
            _check(outcome, argv, out, allowed_ok, f"{kind} seed, {damage}")
            for leftover in out.iterdir():  # a command that succeeded; the next one starts from an empty folder
                leftover.unlink()
        assert sorted(p.relative_to(work) for p in work.rglob("*")) == before, "an input folder changed"


# -- the fuzz tests, one a kind of file -----------------------------------------------------------------------------
def _fuzz(kind: str, examples: int, renames: bool = True):
    @settings(max_examples=examples * SCALE, **FUZZ)
    @given(data=st.data())
    def test(seeds, data):
        seed = seeds["seeds"][kind]
        fuzz_one(seeds, kind, data.draw(damages(seed, seed.path.stat().st_size, renames), label="damage"))

    test.__doc__ = f"Damaged {kind} files: exit 0 where the damage is invisible, else one error line."
    return test


test_fuzz_nifti = _fuzz("nifti", 50)
test_fuzz_nifti_gz = _fuzz("nifti-gz", 45)
test_fuzz_nrrd_raw = _fuzz("nrrd", 50)
test_fuzz_nrrd_gz = _fuzz("nrrd-gz", 45)
test_fuzz_labelmap = _fuzz("labelmap", 35)
test_fuzz_seg_nrrd = _fuzz("seg-nrrd", 60)
test_fuzz_dicom_slice = _fuzz("dicom", 40, renames=False)
test_fuzz_torchscript = _fuzz("torchscript", 35, renames=False)
test_fuzz_checkpoint = _fuzz("checkpoint", 35, renames=False)
test_fuzz_model_card = _fuzz("card", 25, renames=False)
KINDS = ("nifti", "nifti-gz", "nrrd", "nrrd-gz", "labelmap", "seg-nrrd", "dicom", "torchscript", "checkpoint", "card")


def test_fuzz_tried_at_least_300_distinct_damaged_files():
    if set(_variants) != set(KINDS):
        pytest.skip("runs after all the fuzz tests of this file")
    counts = {kind: len(found) for kind, found in _variants.items()}
    assert sum(counts.values()) >= 300, counts
