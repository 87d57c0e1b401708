"""nnU-Net export of many 256^3 cases: SegTruth against a plain SimpleITK read/write loop doing the same conversion.

Both turn the same manifest (CT-like int16 .nrrd images, 3-label segmentations) into ``imagesTr/`` and
``labelsTr/`` NIfTI files plus ``dataset.json``. The plain loop trusts every header and checks nothing;
SegTruth reads each file completely (truncation checks), loads it with Slicer's readers, refuses labels off
the image's grid, maps values through the label table and writes atomically. Prints figures (cases per
minute, the ratio, whether both wrote the same voxels on the same grids); asserts nothing.

Run: .venv/bin/python benchmarks/bench_dataset.py            # --cases 100 --size 256 --kind both
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from SegTruthLogic import Session
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.core.labels import Label, LabelTable
from SegTruthLogic.dataset.manifest import read_cases
from SegTruthLogic.dataset.nnunet import export_nnunet
from SegTruthLogic.scene.export import export
from SegTruthLogic.scene.segmentation_io import load_segmentation
from SegTruthLogic.scene.volumes import load_volume

TABLE = LabelTable(
    [Label("body", 1, (0.8, 0.6, 0.5)), Label("bone", 2, (0.9, 0.9, 0.8)), Label("lesion", 3, (0.9, 0.2, 0.2))]
)


def make_inputs(folder: Path, size: int, distinct: int, kind: str) -> list[tuple[Path, Path]]:
    """``distinct`` CT-like volumes with a body, a bone and a lesion label; segmentations as NIfTI or .seg.nrrd."""
    rng = np.random.default_rng(0)
    k, j, i = np.ogrid[:size, :size, :size]
    c = size / 2
    pairs = []
    session = Session.new_headless()
    for n in range(distinct):
        body = ((i - c) / (0.42 * size)) ** 2 + ((j - c) / (0.32 * size)) ** 2 <= 1
        body = np.broadcast_to(body, (size, size, size))
        bone = ((i - c - 0.1 * n * size) ** 2 + (j - c) ** 2 + (k - c) ** 2) <= (0.12 * size) ** 2
        lesion = ((i - 0.35 * size) ** 2 + (j - 0.45 * size) ** 2 + (k - (0.3 + 0.1 * n) * size) ** 2) <= (
            0.05 * size
        ) ** 2
        image = np.full((size, size, size), -1000, np.int16)
        image[body] = 40
        image[bone] = 700
        image[lesion & body] = 90
        image += rng.normal(0, 10, image.shape).astype(np.int16)
        labels = np.zeros(image.shape, np.uint8)
        labels[body] = 1
        labels[bone & body] = 2
        labels[lesion & body] = 3
        spacing = (0.7 + 0.05 * n, 0.7 + 0.05 * n, 1.25)
        origin = (-c * spacing[0], -c * spacing[1], -100.0 * n)
        image_path = folder / f"ct{n}.nrrd"
        for array, path in ((image, image_path), (labels, folder / f"ct{n}_labels.nii.gz")):
            out = sitk.GetImageFromArray(array)
            out.SetSpacing(spacing)
            out.SetOrigin(origin)
            sitk.WriteImage(out, str(path), useCompression=True)
        label_path = folder / f"ct{n}_labels.nii.gz"
        if kind == "seg.nrrd":
            volume = load_volume(session, image_path)
            node = load_segmentation(session, label_path, volume, TABLE)
            label_path = export(session, node, volume, folder / f"ct{n}.seg.nrrd", TABLE)
            session.remove(volume, node)
        pairs.append((image_path, label_path))
    return pairs


def plain_loop(manifest: Path, dataset: Path) -> None:
    """What a short script does: read each image and label with SimpleITK, write them as NIfTI, trust them."""
    for sub in ("imagesTr", "labelsTr"):
        (dataset / sub).mkdir(parents=True)
    rows = [line.split(",") for line in manifest.read_text().splitlines()[1:]]
    for case, image, labels in rows:
        sitk.WriteImage(
            sitk.ReadImage(str(manifest.parent / image)), str(dataset / "imagesTr" / f"{case}_0000.nii.gz"), True
        )
        sitk.WriteImage(
            sitk.ReadImage(str(manifest.parent / labels)), str(dataset / "labelsTr" / f"{case}.nii.gz"), True
        )
    content = {
        "channel_names": {"0": "CT"},
        "labels": {"background": 0, **{label.name: label.value for label in TABLE}},
        "numTraining": len(rows),
        "file_ending": ".nii.gz",
    }
    (dataset / "dataset.json").write_text(json.dumps(content, indent=2))


def same_output(ours: Path, plain: Path, cases: list[str]) -> bool:
    for case in cases:
        for name in (f"imagesTr/{case}_0000.nii.gz", f"labelsTr/{case}.nii.gz"):
            a, b = sitk.ReadImage(str(ours / name)), sitk.ReadImage(str(plain / name))
            if not Grid.from_sitk(a).same_as(Grid.from_sitk(b)):
                return False
            if not np.array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b)):
                return False
    return True


def run(kind: str, cases: int, size: int, distinct: int, folder: Path) -> None:
    inputs = folder / f"in-{kind.replace('.', '')}"
    inputs.mkdir()
    start = time.perf_counter()
    pairs = make_inputs(inputs, size, distinct, kind)
    made = time.perf_counter() - start
    manifest = inputs / "manifest.csv"
    lines = ["case,image,segmentation"]
    lines += [f"case{n:03d},{pairs[n % distinct][0].name},{pairs[n % distinct][1].name}" for n in range(cases)]
    manifest.write_text("\n".join(lines) + "\n")

    table = None if kind == "seg.nrrd" else TABLE
    session = Session.new_headless()
    load = os.getloadavg()[0]
    start = time.perf_counter()
    ours = export_nnunet(session, read_cases(manifest), folder / "raw", 1, "Bench", table, ["CT"], overwrite=True)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    plain_loop(manifest, folder / "plain")
    plain_s = time.perf_counter() - start
    equal = same_output(ours, folder / "plain", [f"case{n:03d}" for n in range(min(distinct, cases))])
    print(
        f"{kind:9s} {cases} cases of {size}^3 (inputs made in {made:.0f} s, load {load:.1f} -> {os.getloadavg()[0]:.1f}): "
        f"SegTruth {ours_s:7.1f} s = {cases / ours_s * 60:6.1f} cases/min | plain SimpleITK loop {plain_s:7.1f} s = "
        f"{cases / plain_s * 60:6.1f} cases/min | SegTruth/plain time {ours_s / plain_s:4.2f}x | same voxels and grids: {equal}"
    )
    shutil.rmtree(ours)
    shutil.rmtree(folder / "plain")
    shutil.rmtree(inputs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--distinct", type=int, default=4, help="distinct input volumes the cases cycle through")
    parser.add_argument("--kind", choices=("labelmap", "seg.nrrd", "both"), default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("SEGTRUTH_BENCH_DIR")) as folder:
        for kind in ("labelmap", "seg.nrrd") if args.kind == "both" else (args.kind,):
            run(kind, args.cases, args.size, args.distinct, Path(folder))


if __name__ == "__main__":
    main()
