"""Which cases a batch runs: a manifest (``segtruth dataset``'s format), a folder, or a glob of images.

Unlike a dataset export, a batch does not refuse the whole manifest for one missing file: that case is recorded
as failed with the reason and every other case still runs. Everything else (duplicate or unusable case ids, a
malformed manifest) is still an error before anything runs, because it would make the output folder ambiguous.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, replace
from pathlib import Path

from ..atomic import full_suffix
from ..errors import SegTruthError
from ..volumes import IMAGE_SUFFIXES


@dataclass(frozen=True)
class BatchCase:
    """A case of the batch; ``problem`` is why it cannot run (a missing file), recorded instead of running it.

    A case with a problem still names the files its manifest row gave, found or not.
    """

    case: str
    images: tuple[Path, ...]
    segmentation: Path | None = None
    where: str = ""
    problem: str | None = None

    def describe(self) -> str:
        return f"Case {self.case!r}" + (f" ({self.where})" if self.where else "")


def batch_cases(source: str | Path) -> list[BatchCase]:
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


def _cases(source: str | Path) -> list[BatchCase]:
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        from ..dataset.manifest import MANIFEST_NAMES

        for name in MANIFEST_NAMES:
            if (path / name).is_file():
                return manifest_cases(path / name)
        return image_cases(sorted(p for p in path.iterdir() if p.is_file()), f"{path}", pair=True)
    if path.suffix.lower() in (".csv", ".json"):
        return manifest_cases(path)
    if glob.has_magic(text):
        return image_cases([Path(p) for p in sorted(glob.glob(str(path)))], text)
    if path.is_file() and full_suffix(path) in IMAGE_SUFFIXES:
        return image_cases([path], text)
    raise SegTruthError(
        f"{source}: not found; give a manifest (.csv or .json), a folder of images, or a quoted glob like 'scans/*.nii.gz'."
    )


def manifest_cases(path: str | Path) -> list[BatchCase]:
    """A manifest's cases, with a missing image or segmentation recorded on its case instead of stopping the batch.

    The web editor lists cases the same way, so one missing file does not keep a server from serving the rest.
    """
    from ..dataset import manifest

    path = Path(path)
    if not path.is_file():
        raise SegTruthError(f"{path}: manifest not found.")
    try:
        entries = manifest.read_manifest(path)
        return [BatchCase(e.case, e.images, e.segmentation, e.where) for e in entries]
    except SegTruthError:
        pass  # some row is unusable: read row by row below so that only the rows with missing files fail
    text = path.read_text(encoding="utf-8-sig")
    # TODO(dataset): replace with a public read_manifest(path, require_files=False) once it exists.
    rows = manifest._csv_rows(text, path) if path.suffix.lower() == ".csv" else manifest._json_rows(text, path)
    if not rows:
        raise SegTruthError(f"{path}: lists no cases.")
    cases: list[BatchCase] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        case = row.get("case", "")
        if not manifest.CASE_ID.fullmatch(case or "-"):
            manifest._entries([(where, row)], path.parent)  # raises the manifest's own message for a bad case id
        if case in seen:
            raise SegTruthError(f"{where}: case id {case!r} is used twice (also at {seen[case]}).")
        seen[case] = where
        columns = ["image"] if "image" in row else manifest.channel_columns(list(row))
        if not all(row.get(column) for column in columns):
            manifest._entries([(where, row)], path.parent)  # raises the manifest's own message for a missing image
        missing = _missing(row, path.parent)
        if missing:
            column, file = missing
            images = tuple(_resolve(row[column], path.parent) for column in columns)
            segmentation = _resolve(row["segmentation"], path.parent) if row.get("segmentation") else None
            problem = f"Case {case!r} ({where}): {column} {file} not found."
            cases.append(BatchCase(case, images, segmentation, where, problem))
            continue
        (entry,) = manifest._entries([(where, row)], path.parent)  # the manifest's checks for everything else
        cases.append(BatchCase(entry.case, entry.images, entry.segmentation, entry.where))
    return cases


def _resolve(text: str, folder: Path) -> Path:
    """A manifest's path as the manifest resolves it: relative to the manifest's folder."""
    file = Path(text).expanduser()
    return file if file.is_absolute() else folder / file


def _missing(row: dict[str, str], folder: Path) -> tuple[str, Path] | None:
    """The first column whose file does not exist."""
    from ..dataset.manifest import channel_columns

    columns = ["image"] if "image" in row else channel_columns(list(row))
    for column in [*columns, "segmentation"]:
        text = row.get(column) or ""
        if text and not _resolve(text, folder).exists():
            return column, _resolve(text, folder)
    return None


def image_cases(files: list[Path], where: str, pair: bool = False) -> list[BatchCase]:
    """One case per image file, named after the file; with ``pair``, ``CASE.seg.nrrd`` beside it starts its segmentation.

    A folder pairs (``segtruth dataset``'s folder layout); a glob names exactly the images it wants.
    """
    from ..dataset.manifest import CASE_ID

    images = [p for p in files if full_suffix(p) in IMAGE_SUFFIXES and not p.name.startswith(".")]
    if not images:
        raise SegTruthError(f"{where}: matches no image files ({', '.join(IMAGE_SUFFIXES)}).")
    cases: list[BatchCase] = []
    seen: dict[str, Path] = {}
    for image in images:
        suffix = full_suffix(image)
        case = image.name[: -len(suffix)]
        if not CASE_ID.fullmatch(case):
            raise SegTruthError(
                f"{image}: case id {case!r} may only hold letters, digits, '.', '_' and '-' (it becomes a folder name)."
            )
        if case in seen:
            raise SegTruthError(f"{image}: case id {case!r} is also the name of {seen[case]}; rename one of them.")
        seen[case] = image
        segmentation = image.with_name(case + ".seg.nrrd")
        cases.append(BatchCase(case, (image,), segmentation if pair and segmentation.is_file() else None, image.name))
    return cases
