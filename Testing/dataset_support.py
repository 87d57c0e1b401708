"""Helpers for the dataset tests: the CLI with the dataset commands, synthetic cases, grid checks."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from SegTruthLogic import cli
from SegTruthLogic.core.atomic import FOLDER_MARK
from SegTruthLogic.core.geometry import Grid
from SegTruthLogic.dataset.commands import add_commands


def _wired() -> bool:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return "dataset" in sub.choices


def run(*args) -> int:
    """``segtruth ARGS``: through cli.main once the dataset commands are wired in, else on a parser built the same way."""
    argv = [str(a) for a in args]
    if _wired():
        return cli.main(argv)
    original = cli.build_parser

    def build_parser() -> argparse.ArgumentParser:
        parser = original()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))

        def command(name, help_text, handler):
            p = sub.add_parser(name, help=help_text, description=help_text)
            p.set_defaults(handler=handler)
            return p

        add_commands(sub, command)
        return parser

    cli.build_parser = build_parser
    try:
        return cli.main(argv)
    finally:
        cli.build_parser = original


def write_image(path: Path, array: np.ndarray, grid_like: dict) -> Path:
    """Write a (k, j, i) array with ITK (LPS) spacing/origin/direction keywords."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(grid_like.get("spacing", (1.0, 1.0, 1.0)))
    image.SetOrigin(grid_like.get("origin", (0.0, 0.0, 0.0)))
    image.SetDirection(grid_like.get("direction", (1, 0, 0, 0, 1, 0, 0, 0, 1)))
    sitk.WriteImage(image, str(path), useCompression=True)
    return path


LEFT_HANDED = (-1, 0, 0, 0, 1, 0, 0, 0, 1)


def _rotation(about_x: float, about_z: float) -> tuple[float, ...]:
    cx, sx, cz, sz = np.cos(about_x), np.sin(about_x), np.cos(about_z), np.sin(about_z)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return tuple(float(v) for v in (rx @ rz).ravel())


OBLIQUE = _rotation(0.2, 0.3)


def synthetic_case(folder: Path, case: str, seed: int, geometry: dict | None = None, suffix: str = ".nii.gz"):
    """A 24x28x20 int16 image with two labelled boxes (values 1 and 2); returns (image, labelmap, arrays)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(-200, 400, size=(20, 28, 24), dtype=np.int16)
    labels = np.zeros(image.shape, np.uint8)
    labels[3:9, 4 + seed % 3 : 12, 5:14] = 1
    labels[11:17, 15:24, 10 : 19 + seed % 4] = 2
    geometry = geometry or {"spacing": (0.9, 0.8, 1.5), "origin": (-10.0 + seed, 4.0, 30.0)}
    image_path = write_image(folder / f"{case}{suffix}", image, geometry)
    label_path = write_image(folder / f"{case}_labels{suffix}", labels, geometry)
    return image_path, label_path, image, labels


def header_grid(path: Path) -> Grid:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    return Grid.from_sitk(reader)


def nnunet_grid_problems(dataset: Path) -> list[str]:
    """Labels whose header grid is not their image's (nnU-Net's own checker only warns about origin shifts)."""
    problems = []
    for label in sorted((dataset / "labelsTr").glob("*.nii.gz")):
        case = label.name[: -len(".nii.gz")]
        for image in sorted((dataset / "imagesTr").glob(f"{case}_[0-9][0-9][0-9][0-9].nii.gz")):
            if not header_grid(label).same_as(header_grid(image)):
                problems.append(f"{label.name} vs {image.name}")
    return problems


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary files or folders an interrupted write would leave (not the mark of a finished folder)."""
    return sorted(p.name for p in folder.rglob(".*") if p.name != FOLDER_MARK) if folder.exists() else []
