"""Where a model's files come from: an installed pip package, a local folder, or a URL with its sha256.

Downloads stream to a temporary file beside the cache entry, are checked against the sha256 the catalog
states, and only then renamed into place; a later run finds them there and needs no network. Zip archives
(e.g. an exported nnU-Net results folder) are unpacked once into the cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

from ..core.errors import SegTruthError
from ..core.progress import CancelToken, ProgressCallback, report

CHUNK = 1 << 20


def cache_dir() -> Path:
    """``$SEGTRUTH_CACHE`` or ``~/.cache/segtruth``; model downloads go to its ``models`` folder."""
    return Path(os.environ.get("SEGTRUTH_CACHE") or Path.home() / ".cache" / "segtruth") / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def resolve(source: dict[str, Any], name: str, base: Path | None = None, progress=None, cancel=None) -> Path:
    """The local file or folder holding a catalog entry's weights, fetching them first if needed."""
    if "pip" in source:
        return _from_package(source, name)
    if "folder" in source or "file" in source:
        path = Path(os.path.expanduser(str(source.get("folder") or source.get("file"))))
        path = path if path.is_absolute() or base is None else base / path
        if not path.exists():
            raise SegTruthError(f"{path}: the weights of model {name!r} are not there (missing weights).")
        return path
    if "url" in source:
        return download(str(source["url"]), str(source.get("sha256", "")), name, progress, cancel)
    raise SegTruthError(f"Model {name!r}: its catalog entry says neither pip, folder, file nor url for the weights.")


def _from_package(source: dict[str, Any], name: str) -> Path:
    package = str(source["pip"])
    try:
        distribution = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        hint = source.get("install") or f"pip install {package}"
        raise SegTruthError(
            f"Model {name!r} needs the pip package {package!r}, which is not installed ({hint})."
        ) from None
    path = Path(str(distribution.locate_file(str(source.get("path", "")))))
    if not path.exists():
        raise SegTruthError(f"{path}: the package {package!r} is installed but lacks the weights of model {name!r}.")
    return path


def download(
    url: str,
    sha256: str,
    name: str,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Fetch ``url`` into the cache (once) and check its sha256; zip archives are unpacked to a folder."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower()):
        raise SegTruthError(f"Model {name!r}: a download needs the file's sha256 (64 hex digits) in the catalog.")
    sha256 = sha256.lower()
    filename = Path(urllib.request.url2pathname(url.split("?")[0].rstrip("/").rsplit("/", 1)[-1])).name or "weights"
    entry = cache_dir() / sha256[:16]
    target = entry / filename
    unpacked = entry / "unpacked"
    if unpacked.is_dir():
        return unpacked
    if target.is_file():
        return _unpack(target, unpacked)
    entry.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=entry)
    os.close(handle)
    temp = Path(temp_name)
    try:
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(temp, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0)
                done = 0
                while chunk := response.read(CHUNK):
                    if cancel is not None:
                        cancel.raise_if_cancelled("download")
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    report(progress, done / total if total else 0.0, f"downloading {name}: {done >> 20} MiB")
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", None) or error
            raise SegTruthError(f"{url}: the weights of model {name!r} could not be downloaded ({reason}).") from None
        if digest.hexdigest() != sha256:
            raise SegTruthError(
                f"{url}: checksum mismatch for model {name!r} (sha256 {digest.hexdigest()}, catalog says {sha256}); "
                "the file was discarded."
            )
        os.replace(temp, target)
    finally:
        if temp.exists():
            temp.unlink()
    return _unpack(target, unpacked)


def _unpack(path: Path, folder: Path) -> Path:
    """A zip archive's contents (unpacked once, atomically), else the file itself."""
    if not zipfile.is_zipfile(path):
        return path
    staging = Path(tempfile.mkdtemp(prefix=".unpack.", dir=path.parent))
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if member.startswith(("/", "\\")) or ".." in Path(member).parts:
                    raise SegTruthError(f"{path}: the archive holds an unsafe path {member!r}.")
            archive.extractall(staging)
        os.replace(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder
