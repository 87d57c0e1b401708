"""Atomic file writes: a temporary file beside the target, renamed over it only when complete.

A crash, an error or a cancel never leaves a half-written mask where a user expects a good one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import SegTruthError

# Multi-part extensions that writers recognise by their full suffix.
COMPOUND_SUFFIXES = (".seg.nrrd", ".nii.gz")


def full_suffix(path: str | Path) -> str:
    """``.nii.gz`` or ``.seg.nrrd`` where present, else the last suffix, lower-cased."""
    name = Path(path).name.lower()
    for suffix in COMPOUND_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return Path(name).suffix


@contextmanager
def atomic_path(target: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path with the target's extension; rename it onto the target on success."""
    target = Path(target)
    if target.exists() and not overwrite:
        raise SegTruthError(f"{target}: already exists; refusing to overwrite it (pass overwrite to replace it).")
    if target.is_dir():
        raise SegTruthError(f"{target}: is a folder, not a file name.")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise SegTruthError(f"{target}: the folder {parent} does not exist.")
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".part{full_suffix(target)}", dir=parent)
    os.close(handle)
    temp = Path(name)
    try:
        try:
            yield temp
        except (OSError, RuntimeError) as error:  # disk full, permissions, a writer's own failure
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            raise SegTruthError(f"{target}: could not be written ({reason}).") from None
        if not temp.is_file() or temp.stat().st_size == 0:
            raise SegTruthError(f"{target}: the writer produced no data.")
        temp.chmod(target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~_umask())  # mkstemp made it 0600
        os.replace(temp, target)
    finally:
        if temp.exists():
            temp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(target: str | Path, write: Callable[[Path], None], overwrite: bool = True) -> Path:
    """Call ``write(temp_path)`` and move the result onto ``target`` atomically."""
    with atomic_path(target, overwrite) as temp:
        write(temp)
    return Path(target)


def atomic_write_text(target: str | Path, text: str, overwrite: bool = True) -> Path:
    return atomic_write(target, lambda p: p.write_text(text, encoding="utf-8"), overwrite)
