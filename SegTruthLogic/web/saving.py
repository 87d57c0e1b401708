"""Save: the case's ``.seg.nrrd`` and its labelmap on the source image's grid, both or neither.

A person's annotation is never overwritten by surprise: a file that exists is replaced only when it is the
one this server opened or wrote itself and nobody changed it since (same size and modification time). The
labelmap beside a ``.seg.nrrd`` this app saved counts as its own when it is not newer than that file.
"""

from __future__ import annotations

import os
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path

from ..core.atomic import atomic_path
from ..core.errors import SegTruthError
from ..core.labels import LabelTable
from ..scene.export import write_labelmap, write_seg_nrrd
from ..scene.session import Session


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


@dataclass
class OverwriteGuard:
    """The files this server read or wrote, as they were then; others are never replaced."""

    known: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def remember(self, path: Path) -> None:
        stamp = _stamp(path)
        if stamp is not None:
            self.known[path.resolve()] = stamp

    def remember_export(self, export: Path, source: Path) -> None:
        """A labelmap Save wrote with ``source`` (not changed after it) is this app's own file too."""
        export_stamp, source_stamp = _stamp(export), _stamp(source)
        if export_stamp is not None and source_stamp is not None and export_stamp[0] <= source_stamp[0]:
            self.known[export.resolve()] = export_stamp

    def check(self, path: Path) -> None:
        stamp = _stamp(path)
        if stamp is None:
            return
        if self.known.get(path.resolve()) != stamp:
            raise SegTruthError(
                f"{path}: already exists and is not the file this server opened or saved (or it changed since); "
                "refusing to overwrite it, so move it away first."
            )


def save_both(
    session: Session,
    segmentation,
    volume,
    table: LabelTable,
    seg_path: Path,
    labelmap_path: Path,
    guard: OverwriteGuard,
) -> list[Path]:
    """Write ``seg_path`` (.seg.nrrd) and ``labelmap_path`` on the source grid; on any error neither changes."""
    for path in (seg_path, labelmap_path):
        guard.check(path)
    created = not labelmap_path.parent.exists()
    try:
        labelmap_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SegTruthError(f"{labelmap_path.parent}: cannot create this folder ({error.strerror}).") from None
    try:
        with ExitStack() as stack:
            seg_temp = stack.enter_context(atomic_path(seg_path))
            labelmap_temp = stack.enter_context(atomic_path(labelmap_path))
            # The labelmap first: it refuses overlapping segments and segments missing from the table.
            write_labelmap(session, segmentation, volume, labelmap_temp, table)
            write_seg_nrrd(session, segmentation, volume, seg_temp, table)
    except BaseException:
        if created:
            with suppress(OSError):
                os.rmdir(labelmap_path.parent)
        raise
    for path in (seg_path, labelmap_path):
        guard.remember(path)
    return [seg_path, labelmap_path]
