"""Whole folders written atomically: built beside the target, renamed into place only when complete.

A dataset is many files; a failure at case 57 of 100 must not leave 56 cases where a trainer would pick
them up as a finished dataset.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import SegTruthError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_folder(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a new empty folder beside ``target`` that becomes ``target`` only if the block succeeds.

    An existing non-empty ``target`` is refused unless ``overwrite``; then it is replaced only after the new
    folder is complete. A missing parent folder is created, and removed again if nothing was written.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise SegTruthError(f"{target}: is a file, not a folder.")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise SegTruthError(f"{target}: already exists and is not empty; refusing to replace it (pass overwrite).")
    parent = target.parent
    created = [p for p in (parent, *parent.parents) if not p.exists()]
    parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=parent))
    try:
        try:
            yield temp
            temp.chmod(0o777 & ~_umask())  # mkdtemp made it private; a dataset is meant to be shared
            if target.exists():
                old = temp.with_name(temp.name + ".old")
                os.replace(target, old)
                try:
                    os.replace(temp, target)
                except OSError:
                    os.replace(old, target)  # put the previous folder back
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(temp, target)
        except OSError as error:  # disk full, permissions
            reason = error.strerror or type(error).__name__
            raise SegTruthError(f"{target}: could not be written ({reason}).") from None
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
        if not target.exists():
            for folder in created:  # innermost first
                try:
                    folder.rmdir()
                except OSError:
                    break
