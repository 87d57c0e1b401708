"""Sample data installed with SegTruth's dependencies (no download needed)."""

from __future__ import annotations

from pathlib import Path

from .errors import SegTruthError


def ct_chest_paths() -> tuple[Path, Path]:
    """slicerio's real chest CT (128x128x34) and its 7-segment reference ``Segmentation.seg.nrrd``."""
    try:
        import slicerio
    except ImportError:
        raise SegTruthError("The sample CT comes with the slicerio package: pip install slicerio.") from None
    folder = Path(slicerio.__file__).parent / "data"
    image, segmentation = folder / "CTChest4.nrrd", folder / "Segmentation.seg.nrrd"
    if not image.is_file() or not segmentation.is_file():
        raise SegTruthError(f"{folder}: slicerio's sample CT is missing; reinstall slicerio.")
    return image, segmentation
