"""The bad-input corpus: damaged, mismatched and ill-typed inputs for every kind of argument a command takes.

Each kind of argument (an image, a segmentation, a label table, a recipe, a model, a manifest, a file output, a
folder output) has a list of bad variants; a command joins the corpus by naming which argument goes where
(``COMMANDS`` in test_bad_input_corpus.py), and is then tried with every bad variant of every argument it takes.
Every variant is made once per test run in one folder, from a small valid case.
"""

from __future__ import annotations

import gzip
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from SegTruthLogic.cli import main

SHAPE = (10, 14, 12)  # (k, j, i)
SPACING = (1.0, 1.0, 2.0)  # (i, j, k)


@dataclass(frozen=True)
class Variant:
    """One bad value for one kind of argument; ``names`` must appear in the error (the file it is about)."""

    name: str
    make: Callable[[Path], str]  # folder -> the argument's value
    names: str | None = None  # what the error sentence must mention; default: the value's file name
    valid_alone: bool = False  # a good file in itself, bad only for its use (`segtruth info` describes it)


def _image(array: np.ndarray, path: Path, spacing=SPACING, origin=(0.0, 0.0, 0.0), compress=True) -> Path:
    image = sitk.GetImageFromArray(array)
    if image.GetDimension() == 3:
        image.SetSpacing(spacing)
        image.SetOrigin(origin)
    sitk.WriteImage(image, str(path), useCompression=compress)
    return path


def intensities() -> np.ndarray:
    k, j, i = np.indices(SHAPE)
    return (i * 10 + j * 3 + k).astype(np.int16)


def labels() -> np.ndarray:
    array = np.zeros(SHAPE, dtype=np.uint8)
    array[2:8, 3:9, 2:6] = 1
    array[2:8, 3:9, 7:11] = 2
    return array


def make_good_case(folder: Path) -> dict[str, str]:
    """A valid image, labelmap, .seg.nrrd, label table, recipe and manifest: the values every slot starts from."""
    folder.mkdir(parents=True, exist_ok=True)
    image = _image(intensities(), folder / "image.nrrd")
    labelmap = _image(labels(), folder / "labels.nii.gz")
    table = folder / "table.csv"
    table.write_text("name,value,color\na,1,#ff0000\nb,2,#00ff00\n", encoding="utf-8")
    seg = folder / "case.seg.nrrd"
    assert main(["export", str(image), str(labelmap), "--labels", str(table), "-o", str(seg), "-q"]) == 0
    recipe = folder / "recipe.yaml"
    recipe.write_text(
        "steps:\n  - threshold: {segment: a, low: 0, high: 60}\noutputs: [out.nii.gz]\n", encoding="utf-8"
    )
    rtstruct = _rtstruct(folder / "rtstruct.dcm")
    manifest = folder / "cases.csv"
    manifest.write_text(f"case,image,segmentation\none,{image.name},{seg.name}\ntwo,{image.name},{labelmap.name}\n")
    return {
        "IMG": str(image),
        "SEG": str(seg),
        "SEG2": str(labelmap),
        "LAB": str(table),
        "REC": str(recipe),
        "MODEL": "deepbet",
        "MAN": str(manifest),
        "RS": rtstruct,
    }


# -- damage ---------------------------------------------------------------------------------------------------------
def _truncated(source: Path, target: Path, keep: float = 0.6) -> str:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return str(target)


def _crc_damaged(source: Path, target: Path) -> str:
    """Flip bytes inside the gzip stream past the header: the data no longer matches its checksum."""
    data = bytearray(source.read_bytes())
    start = data.find(b"\x1f\x8b")
    assert start >= 0, source
    where = start + (len(data) - start) // 2
    for offset in range(4):
        data[where + offset] ^= 0x5A
    target.write_bytes(bytes(data))
    return str(target)


def _written(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _good(folder: Path, name: str) -> Path:
    return folder.parent / "good" / name


def _image_variants() -> list[Variant]:
    def nan(fraction: float) -> Callable[[Path], str]:
        def make(folder: Path) -> str:
            array = intensities().astype(np.float32)
            array.reshape(-1)[: max(1, int(array.size * fraction))] = np.nan
            return str(_image(array, folder / f"nan{int(fraction * 100)}.nii.gz"))

        return make

    return [
        Variant("missing image", lambda f: str(f / "nothing.nrrd")),
        Variant("zero-byte .nii.gz", lambda f: _written(f / "empty.nii.gz", b"")),
        Variant("zero-byte .nrrd", lambda f: _written(f / "empty.nrrd", b"")),
        Variant(
            "truncated .nii.gz",
            lambda f: _truncated(_image(intensities(), f / "whole.nii.gz"), f / "cut.nii.gz"),
        ),
        Variant(
            "truncated .nii",
            lambda f: _truncated(_image(intensities(), f / "whole.nii", compress=False), f / "cut.nii"),
        ),
        Variant("truncated .nrrd", lambda f: _truncated(_good(f, "image.nrrd"), f / "cut.nrrd")),
        Variant("checksum-damaged .nrrd", lambda f: _crc_damaged(_good(f, "image.nrrd"), f / "crc.nrrd")),
        Variant("random bytes as .nii", lambda f: _written(f / "noise.nii", os.urandom(4096))),
        Variant("text named .nii.gz", lambda f: _written(f / "text.nii.gz", gzip.compress(b"not an image\n" * 40))),
        Variant("2D image", lambda f: str(_image(intensities()[0], f / "flat.nii.gz"))),
        Variant("4D image", lambda f: str(_image(np.stack([intensities()] * 2), f / "time.nii.gz"))),
        Variant(
            "vector image",
            lambda f: str(_image(np.stack([intensities()] * 3, axis=-1), f / "rgb.nrrd")),
        ),
        Variant("single slice", lambda f: str(_image(intensities()[:1], f / "slice.nii.gz"))),
        Variant("empty folder", lambda f: str((f / "nodicom").mkdir() or f / "nodicom")),
        Variant("unknown extension", lambda f: _written(f / "image.txt", b"hello")),
        Variant("all NaN", nan(1.0), valid_alone=True),
        Variant("some NaN", nan(0.01), valid_alone=True),
    ]


def _segmentation_variants() -> list[Variant]:
    def shifted(folder: Path) -> str:
        return str(_image(labels(), folder / "shifted.nii.gz", origin=(5.0, 0.0, 0.0)))

    def respaced(folder: Path) -> str:
        return str(_image(labels(), folder / "respaced.nii.gz", spacing=(1.0, 1.0, 1.0)))

    def resized(folder: Path) -> str:
        return str(_image(labels()[1:], folder / "resized.nii.gz"))

    return [
        Variant("missing segmentation", lambda f: str(f / "nothing.seg.nrrd")),
        Variant("zero-byte .seg.nrrd", lambda f: _written(f / "empty.seg.nrrd", b"")),
        Variant("truncated .seg.nrrd", lambda f: _truncated(_good(f, "case.seg.nrrd"), f / "cut.seg.nrrd")),
        Variant("checksum-damaged .seg.nrrd", lambda f: _crc_damaged(_good(f, "case.seg.nrrd"), f / "crc.seg.nrrd")),
        Variant(
            "labelmap named .seg.nrrd",
            lambda f: str(_image(labels(), f / "plain.seg.nrrd")),
        ),
        Variant("labelmap shifted 5 mm", shifted, valid_alone=True),
        Variant("labelmap on another spacing", respaced, valid_alone=True),
        Variant("labelmap of another size", resized, valid_alone=True),
        Variant(
            "fractional labels",
            lambda f: str(_image(labels() * np.float32(0.5), f / "halves.nii.gz")),
            valid_alone=True,
        ),
        Variant(
            "negative labels",
            lambda f: str(_image(labels().astype(np.int16) * -1, f / "negative.nii.gz")),
            valid_alone=True,
        ),
        Variant("4D labelmap", lambda f: str(_image(np.stack([labels()] * 2), f / "labels4d.nii.gz"))),
        Variant("unknown extension", lambda f: _written(f / "labels.png", b"\x89PNG")),
        # RT Structure Sets: info lists their names from the header; reading them onto the image fails
        Variant(
            "RTSTRUCT with a two-point contour", lambda f: _rtstruct(f / "twopoint.dcm", points=2), valid_alone=True
        ),
        Variant("RTSTRUCT beyond the image", lambda f: _rtstruct(f / "beyond.dcm", k=60.0), valid_alone=True),
        Variant("truncated RTSTRUCT", lambda f: _truncated(Path(_rtstruct(f / "whole.dcm")), f / "cut.dcm", 0.7)),
    ]


def _rtstruct(path: Path, points: int = 4, k: float = 4.0) -> str:
    """A structure set on the good image (LPS = i, j, 2k mm): one square ROI 'a' on slice ``k``."""
    from types import SimpleNamespace

    from dicom_synthetic import write_rtstruct
    from pydicom.uid import generate_uid

    square = np.array([[2.3, 3.2], [6.4, 3.1], [6.6, 8.7], [2.2, 8.9]])[:points]
    contour = np.c_[square, np.full(points, 2.0 * k)]
    series = SimpleNamespace(datasets=[], study_uid=generate_uid(), frame_uid=generate_uid(), series_uid=generate_uid())
    return str(write_rtstruct(path, series, [("a", (255, 0, 0), [contour])]))  # type: ignore[arg-type]


def _table_variants() -> list[Variant]:
    def table(name: str, text: str) -> Callable[[Path], str]:
        return lambda f: _written(f / name, text.encode())

    return [
        Variant("missing table", lambda f: str(f / "nothing.csv")),
        Variant("duplicate values", table("dupvalues.csv", "name,value\na,1\nb,1\n")),
        Variant("duplicate names", table("dupnames.csv", "name,value\na,1\na,2\n")),
        Variant("fractional value", table("fraction.csv", "name,value\na,1.5\nb,2\n")),
        Variant("value zero", table("zero.csv", "name,value\na,0\nb,2\n")),
        Variant("bad colour", table("colour.csv", "name,value,color\na,1,#zz0000\nb,2,#00ff00\n")),
        Variant("empty table file", table("empty.csv", "")),
        Variant("broken JSON table", table("broken.json", '{"labels": [')),
        Variant("JSON of another shape", table("shape.json", "[1, 2, 3]")),
        Variant("binary table", lambda f: _written(f / "binary.csv", os.urandom(300))),
    ]


def _recipe_variants() -> list[Variant]:
    def recipe(name: str, text: str) -> Callable[[Path], str]:
        return lambda f: _written(f / name, text.encode())

    return [
        Variant("missing recipe", lambda f: str(f / "nothing.yaml")),
        Variant("broken YAML", recipe("broken.yaml", "steps: [{threshold: {segment: a}\n")),
        Variant("broken JSON recipe", recipe("broken.json", '{"steps": [')),
        Variant("wrong parameter type", recipe("type.yaml", "steps:\n  - threshold: {segment: a, low: two hundred}\n")),
        Variant("unknown step", recipe("step.yaml", "steps:\n  - thresold: {segment: a}\noutputs: [o.nii.gz]\n")),
        Variant("unknown key", recipe("key.yaml", "steps: []\nsteps2: []\n")),
        Variant("not a mapping", recipe("list.yaml", "- threshold: {segment: a}\n")),
        Variant("binary recipe", lambda f: _written(f / "binary.yaml", os.urandom(300))),
        Variant(
            "bad options", recipe("options.yaml", "steps:\n  - threshold: {segment: a, options: {overwrite: some}}\n")
        ),
        Variant("missing label file", recipe("labels.yaml", "labels: nothing.csv\nsteps: []\noutputs: [o.nii.gz]\n")),
        Variant("no outputs", recipe("nooutputs.yaml", "steps:\n  - threshold: {segment: a, low: 1}\n")),
    ]


def _model_variants() -> list[Variant]:
    def truncated_zip(folder: Path) -> str:
        path = folder / "cut.pt"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("model/data.pkl", os.urandom(2000))
        return _truncated(path, path, 0.5)

    return [
        Variant("random bytes checkpoint", lambda f: _written(f / "noise.pt", os.urandom(5000))),
        Variant("truncated checkpoint", truncated_zip),
        Variant("missing model file", lambda f: str(f / "nothing.pt")),
        Variant("unknown model name", lambda f: "no-such-model", names="no-such-model"),
        Variant("empty model folder", lambda f: str((f / "nomodel").mkdir() or f / "nomodel")),
    ]


def _manifest_variants() -> list[Variant]:
    def manifest(name: str, text: str) -> Callable[[Path], str]:
        return lambda f: _written(f / name, text.encode())

    return [
        Variant("missing manifest", lambda f: str(f / "nothing.csv")),
        Variant("empty manifest", manifest("empty.csv", "case,image,segmentation\n")),
        Variant("manifest without image column", manifest("noimage.csv", "case,segmentation\none,x.seg.nrrd\n")),
        Variant(
            "manifest naming a missing image",
            manifest("missingimage.csv", "case,image,segmentation\none,gone.nrrd,gone.seg.nrrd\n"),
            names="gone.nrrd",
        ),
        Variant("broken JSON manifest", manifest("broken.json", '[{"case": "one",')),
        Variant("binary manifest", lambda f: _written(f / "binary.csv", os.urandom(300))),
        Variant(
            "manifest naming a damaged image",
            lambda f: _written(
                f / "damaged.csv",
                f"case,image,segmentation\none,{_truncated(_good(f, 'image.nrrd'), f / 'cut-case.nrrd')},"
                f"{_good(f, 'case.seg.nrrd')}\n".encode(),
            ),
            names="cut-case.nrrd",
        ),
    ]


VARIANTS: dict[str, list[Variant]] = {
    "IMG": _image_variants(),
    "SEG": _segmentation_variants(),
    "LAB": _table_variants(),
    "REC": _recipe_variants(),
    "MODEL": _model_variants(),
    "MAN": _manifest_variants(),
}


def make_variants(folder: Path) -> dict[tuple[str, str], str]:
    """(slot, variant name) -> the bad argument, made in ``folder`` (beside the good case in ../good)."""
    folder.mkdir(parents=True, exist_ok=True)
    return {(slot, v.name): v.make(folder) for slot, variants in VARIANTS.items() for v in variants}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file and folder under ``folder`` with its bytes: equal snapshots mean nothing changed."""
    return {
        path.relative_to(folder).as_posix() + ("/" if path.is_dir() else ""): path.read_bytes()
        if path.is_file()
        else b""
        for path in sorted(folder.rglob("*"))
    }
