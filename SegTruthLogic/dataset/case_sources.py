"""Cases to run on, labelled or not: a manifest (``segtruth dataset``'s format), a folder, or a glob of images.

Batches and ranking read them. Unlike a dataset export, a listing does not refuse the whole manifest for one
missing file: that case carries the reason (``CaseEntry.problem``) and every other case still runs. Everything
else (duplicate or unusable case ids, a malformed manifest) is an error at once, because it would make the
output ambiguous.
"""

from __future__ import annotations

import glob
from dataclasses import replace
from pathlib import Path

from ..core.atomic import full_suffix
from ..core.errors import SegTruthError
from ..core.formats import IMAGE_SUFFIXES
from .manifest import MANIFEST_NAMES, CaseEntry, check_case_id, list_manifest


def find_cases(source: str | Path) -> list[CaseEntry]:
    """Cases from a ``.csv``/``.json`` manifest, a folder (its manifest, else its images), or a glob of images.

    Paths come back absolute: workers started elsewhere (another folder, a Ray node) read the same files.
    """
    return [
        replace(
            case,
            images=tuple(p.absolute() for p in case.images),
            segmentation=case.segmentation.absolute() if case.segmentation else None,
        )
        for case in _cases(source)
    ]


def _cases(source: str | Path) -> list[CaseEntry]:
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        for name in MANIFEST_NAMES:
            if (path / name).is_file():
                return list_manifest(path / name)
        return image_cases(sorted(p for p in path.iterdir() if p.is_file()), f"{path}", pair=True)
    if path.suffix.lower() in (".csv", ".json"):
        return list_manifest(path)
    if glob.has_magic(text):
        return image_cases([Path(p) for p in sorted(glob.glob(str(path)))], text)
    if path.is_file() and full_suffix(path) in IMAGE_SUFFIXES:
        return image_cases([path], text)
    raise SegTruthError(
        f"{source}: not found; give a manifest (.csv or .json), a folder of images, or a quoted glob like 'scans/*.nii.gz'."
    )


def image_cases(files: list[Path], where: str, pair: bool = False) -> list[CaseEntry]:
    """One case per image file, named after the file; with ``pair``, ``CASE.seg.nrrd`` beside it starts its segmentation.

    A folder pairs (``segtruth dataset``'s folder layout): its images without one are unlabelled cases. A glob
    names exactly the images it wants.
    """
    images = [p for p in files if full_suffix(p) in IMAGE_SUFFIXES and not p.name.startswith(".")]
    if not images:
        raise SegTruthError(f"{where}: matches no image files ({', '.join(IMAGE_SUFFIXES)}).")
    cases: list[CaseEntry] = []
    seen: dict[str, Path] = {}
    for image in images:
        suffix = full_suffix(image)
        case = image.name[: -len(suffix)]
        check_case_id(case, image, "a folder name")
        if case in seen:
            raise SegTruthError(f"{image}: case id {case!r} is also the name of {seen[case]}; rename one of them.")
        seen[case] = image
        segmentation = image.with_name(case + ".seg.nrrd")
        cases.append(CaseEntry(case, (image,), segmentation if pair and segmentation.is_file() else None, image.name))
    return cases
