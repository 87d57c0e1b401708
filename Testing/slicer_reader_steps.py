"""A recipe step that reads a ``.seg.nrrd`` with Slicer's own reader, skipping SegTruth's checks.

SegTruth's readers refuse a truncated ``.seg.nrrd`` before Slicer sees it, because Slicer's reader aborts the
whole process on one (SIGABRT in teem's gzip decoder). The batch tests need a case that really kills its worker
that way, so they register this step in ``recipe.TOOLS`` (the documented table of step names), which workers
started by the batch receive with the job.
"""

from __future__ import annotations

from pathlib import Path

from SegTruthLogic.scene.session import Session

STEP = "read_with_slicer"
TARGET = f"{__name__}:read_with_slicer"


def truncated_seg_nrrd(reference: Path, path: Path) -> Path:
    """A copy of ``reference`` (a gzip ``.seg.nrrd``) cut in the middle of its compressed voxels."""
    data = reference.read_bytes()
    start = data.index(b"\n\n") + 2
    path.write_bytes(data[: start + (len(data) - start) // 2])
    return path


def read_with_slicer(session, segmentation_node, volume, folder: str) -> None:
    """Load ``FOLDER/<volume name>.seg.nrrd`` (when there is one) straight with Slicer's reader, then drop it."""
    path = Path(folder) / f"{volume.GetName()}.seg.nrrd"
    if path.is_file():
        node = session.segmentations.LoadSegmentationFromFile(str(path), False)
        if node is not None:
            session.remove(node)


def load_straight(path: str) -> int:
    """``LoadSegmentationFromFile`` on ``path`` in a fresh headless session (for run_isolated); 0 if it returns."""
    session = Session.new_headless()
    session.segmentations.LoadSegmentationFromFile(path, False)
    return 0
