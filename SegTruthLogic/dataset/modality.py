"""What kind of image each channel is, for nnU-Net's ``channel_names``, which choose its normalisation.

nnU-Net v2 normalises a channel named ``CT`` (any case) with the dataset's Hounsfield-unit statistics and
every other channel with a z-score of each image. A NIfTI or NRRD file does not say what it holds, so the
modality is taken where it is recorded: a DICOM series' Modality tag, or the BIDS sidecar ``CASE.json``
beside ``CASE.nii.gz`` with its ``"Modality"`` key (what dcm2niix writes when it converts a series).
Where nothing records it, the names must be given, or, where a caller allows it, the channel is called
``zscore``: nnU-Net's own name for the normalisation it then uses, so dataset.json says what happens.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..core.atomic import full_suffix
from ..core.errors import SegTruthError
from ..scene.dicom import list_dicom_series
from .manifest import CaseEntry

UNKNOWN_MODALITY = "zscore"


def sidecar(image: str | Path) -> Path:
    """The BIDS/dcm2niix sidecar of an image file: ``CASE.json`` beside ``CASE.nii.gz``."""
    image = Path(image)
    suffix = full_suffix(image)
    return image.with_name((image.name[: -len(suffix)] if suffix else image.name) + ".json")


def image_modality(image: str | Path) -> str | None:
    """The modality an image records (``CT``, ``MR``, ...), or None where it records none."""
    image = Path(image)
    if image.is_dir():
        found = {series.modality for series in list_dicom_series(image) if series.modality}
        return found.pop().upper() if len(found) == 1 else None
    path = sidecar(image)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # not a sidecar SegTruth can read: the image records nothing
    modality = data.get("Modality") if isinstance(data, dict) else None
    return modality.strip().upper() if isinstance(modality, str) and modality.strip() else None


def channel_names_for(entries: Sequence[CaseEntry], given: Sequence[str] | None, required: bool = False) -> list[str]:
    """The channel names to write: ``given``, else the modality the images record, else ``zscore``.

    With ``required``, a channel whose images record no modality is an error asking for the names, so a CT
    never loses nnU-Net's CT normalisation without the user deciding it.
    """
    channels = len(entries[0].images)
    if given:
        names = [name.strip() for name in given]
        if len(names) != channels or not all(names):
            raise SegTruthError(f"{len(names)} channel names given for cases with {channels} channels.")
        return names
    names = []
    for channel in range(channels):
        found: dict[str, Path] = {}
        for entry in entries:
            modality = image_modality(entry.images[channel])
            if modality is not None:
                found.setdefault(modality, entry.images[channel])
        if len(found) > 1:
            (a, path_a), (b, path_b) = list(found.items())[:2]
            raise SegTruthError(
                f"Channel {channel} mixes modalities ({a} in {path_a}, {b} in {path_b}); give the channel names."
            )
        if not found and required:
            image = entries[0].images[channel]
            raise SegTruthError(
                f"{image}: records no modality (no DICOM Modality tag, no {sidecar(image).name} sidecar), which "
                "decides nnU-Net's normalisation; give --channel-names (CT for CT, else e.g. T1 or T1,T2)."
            )
        names.append(next(iter(found)) if found else UNKNOWN_MODALITY)
    return names
